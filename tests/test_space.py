import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wtnas_cli.errors import ArchSeqError, InvalidArchitecture
from wtnas_cli.model import ops as O
from wtnas_cli.model.space import Input, SearchSpace, VariableNode, parse_arch_seq
from wtnas_builtins.problems.digits import digits_space


def test_size_and_nodes():
    space = digits_space()
    assert len(space.variable_nodes) == 11
    assert space.size == 12 * 3 * 2 * 6 * 3 * 2 * 5 * 3 * 4 * 3 * 4


@pytest.mark.parametrize("seq, message", [
    ([0] * 10, "has 10 values but search space 'digits' has 11 variable nodes"),
    ([0] * 12, "has 12 values"),
    ([12] + [0] * 10, "arch_seq[0] = 12 is out of range: node 'conv1' has 12 choices (0..11)"),
    ([0, -1] + [0] * 9, "arch_seq[1] = -1 is out of range"),
    (["a"] + [0] * 10, "is not an integer"),
])
def test_validate_errors(seq, message):
    with pytest.raises(ArchSeqError) as err:
        digits_space().validate(seq)
    assert message in str(err.value)


def test_parse_arch_seq():
    assert parse_arch_seq("1,2, 3") == (1, 2, 3)
    assert parse_arch_seq("[1, 2, 3]") == (1, 2, 3)
    assert parse_arch_seq("4 5") == (4, 5)
    for bad in ("1,a", "1;2", "[[1]]", "1.5"):
        with pytest.raises(ArchSeqError):
            parse_arch_seq(bad)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2 ** 32 - 1))
def test_mutate_changes_exactly_one_node(seed):
    space = digits_space()
    rng = np.random.default_rng(seed)
    parent = space.sample(rng)
    child = space.mutate(parent, rng)
    assert space.validate(child) == child
    assert space.distance(parent, child) == 1


def test_distance():
    assert SearchSpace.distance([1, 2, 3], [0, 2, 3]) == 1
    assert SearchSpace.distance([1, 2, 3], [1, 2, 3]) == 0
    with pytest.raises(ArchSeqError):
        SearchSpace.distance([1], [1, 2])


def test_every_digits_architecture_resolves(rng):
    space = digits_space()
    for _ in range(500):
        arch = space.resolve(space.sample(rng))
        assert arch.layers[-1].output_shape == (10,)


def test_resolved_layers_are_reused_without_changing_any_architecture(rng):
    """resolve() memoizes layers by (node, choice, input shapes): the same architectures as a
    fresh space resolves, and an invalid choice is still refused after valid ones were cached."""
    space, fresh = digits_space(), digits_space()
    seqs = [space.sample(rng) for _ in range(200)]
    for seq in seqs:
        space.resolve(seq)
    for seq in seqs[::-1]:
        assert space.resolve(seq) == fresh.resolve(seq)
    tiny = SearchSpace("tiny", (Input("x", (4, 4, 1)),), (VariableNode("c", (O.Conv2D(4, 3), O.Conv2D(4, 5))),))
    assert tiny.is_valid([0]) and not tiny.is_valid([1]) and tiny.is_valid([0])


def test_resolve_shapes_canonical_layout():
    space = digits_space()
    # conv1 = Conv2D(16, 5x5, valid), relu, maxpool, conv2 = Conv2D(8, 3x3 same), ...
    arch = space.resolve([7, 0, 1, 1, 0, 0, 2, 0, 0, 0, 0])
    shapes = arch.shape_sequence()
    assert shapes[0] == (5, 5, 1, 16) and shapes[1] == (16,)   # (kh, kw, in, out)
    assert shapes[2] == (3, 3, 16, 8)
    assert shapes[4] == (2 * 2 * 8, 32)                            # Dense kernel (in, out)
    assert shapes[-2:] == [(32, 10), (10,)]


def test_invalid_architecture_is_reported():
    space = SearchSpace("tiny", (Input("x", (4, 4, 1)),), (VariableNode("c", (O.Conv2D(4, 5),)),))
    with pytest.raises(InvalidArchitecture, match="node 'c'"):
        space.resolve([0])


def test_an_op_name_that_is_not_a_string_is_refused_in_one_line(tmp_path):
    """Found by the space-file fuzzer: `op = []` raised TypeError (unhashable) instead of a clear error."""
    from wtnas_cli.errors import WtnasError
    from wtnas_cli.model.ops import op_from_dict
    from wtnas_cli.model.spacefile import parse_space

    path = tmp_path / "s.toml"
    path.write_text('[[inputs]]\nname = "in"\nshape = [1]\n[[nodes]]\nname = "a"\nchoices = [{op = []}]\n')
    with pytest.raises(WtnasError, match="unknown op \\[\\]"):
        parse_space(path)
    with pytest.raises(WtnasError, match="unknown op \\[\\]"):
        op_from_dict({"op": []})
