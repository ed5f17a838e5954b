"""Safe transfer: no non-finite model is ever `ok`, role-aware matching, partial (sliced) copies,
and schemes that can never transfer are refused."""

import importlib.util
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wtnas_cli.errors import ConfigError, NonFiniteModel
from wtnas_cli.weights.matching import (MatchError, apply_matcher, match_lcs, match_lcs_roles, match_lcs_slice,
                                        match_lp_roles, role_class, takes_specs)
from wtnas_cli.model.problem import objective_value
from wtnas_cli.model.shapes import TensorSpec
from wtnas_cli.weights.transfer import assemble, block_slices, plan_stats, spatial_axes

# the reproduction: LCS on shapes fills the receiver's b3_bn2.moving_variance from the provider's dense1.bias
CIFAR_PROVIDER = [2, 0, 0, 2, 3, 0, 2, 0, 1, 10, 0, 1, 3, 1, 1, 5, 3, 0, 3, 6, 2]
CIFAR_RECEIVER = [4, 1, 1, 7, 0, 1, 10, 1, 0, 11, 0, 1, 9, 1, 0, 7, 0, 1, 6, 8, 1]
CIFAR = {"synthetic": True, "samples": 120}


# -- no non-finite model is ever ok ---------------------------------------------------------------
def _accuracy_like(pred, y):
    return float((pred.argmax(axis=-1) == y).mean())


@pytest.mark.parametrize("objective, pred, y", [
    ("accuracy", np.full((5, 3), np.nan), np.zeros(5, dtype=int)),
    ("r2", np.full((5, 1), np.nan), np.arange(5.0)),
    ("neg_mse", np.full((5, 1), np.inf), np.arange(5.0)),
    (_accuracy_like, np.full((5, 3), np.nan), np.zeros(5, dtype=int)),
])
def test_all_nan_predictions_fail_every_objective(objective, pred, y):
    with pytest.raises(NonFiniteModel, match="predictions are not finite \\(5 of 5 validation samples"):
        objective_value(objective, pred, y)


def test_one_nan_row_is_enough_and_finite_predictions_score():
    pred = np.eye(3)[[0, 1, 2, 0]].astype(np.float32)
    assert objective_value("accuracy", pred, np.array([0, 1, 2, 1])) == 0.75
    pred[2, 1] = np.nan
    with pytest.raises(NonFiniteModel, match="1 of 4"):
        objective_value("accuracy", pred, np.array([0, 1, 2, 1]))


def test_a_non_finite_user_objective_fails():
    with pytest.raises(NonFiniteModel, match="objective broken is nan"):
        def broken(pred, y):
            return float("nan")
        objective_value(broken, np.zeros((3, 2)), np.zeros(3))


def _cifar_problem(plugins):
    return plugins.registry.create("problem", "cifar10", **CIFAR)


def _negative_variance_provider(tmp_path, plugins, backend_name):
    """A provider checkpoint whose tensors that `lcs-shape` maps onto the receiver's BatchNorm
    moving_variance are negative (as a trained dense bias or BN beta often is)."""
    from wtnas_cli.weights.checkpoint import CheckpointMeta, write_checkpoint
    from wtnas_cli.search.evaluator import Evaluator

    problem = _cifar_problem(plugins)
    p_arch, r_arch = problem.space.resolve(CIFAR_PROVIDER), problem.space.resolve(CIFAR_RECEIVER)
    p_specs, r_specs = p_arch.tensor_specs(), r_arch.tensor_specs()
    crossing = [i for i, j in match_lcs(p_arch.shape_sequence(), r_arch.shape_sequence())
                if r_specs[j].role == "moving_variance" and p_specs[i].role != "moving_variance"]
    assert crossing, "the reproduction pair must contain a role-crossing copy into a moving_variance"
    model = Evaluator(threads=1).backend(backend_name, "cpu").build(problem, p_arch, seed=0)
    tensors = model.get_tensors()
    for i in crossing:
        tensors[i] = np.full_like(tensors[i], -0.5)
    path = tmp_path / "c0.h5"
    write_checkpoint(path, CheckpointMeta(tuple(CIFAR_PROVIDER), "cifar10", backend_name, p_specs, 0.1, 1, 0), tensors)
    return path, crossing


def _cifar_job(tmp_path, provider, matcher, backend="torch", **extra):
    from wtnas_cli.run.job import Job

    options = {"epochs": 1, **extra}
    return Job(candidate_id=1, arch_seq=list(CIFAR_RECEIVER), problem="cifar10", backend=backend, matcher=matcher,
               seed=1, checkpoint_path=str(tmp_path / f"c1-{matcher}.h5"), provider_id=0,
               provider_checkpoint=str(provider), problem_options=dict(CIFAR), **options)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_role_blind_copy_into_a_variance_fails_the_candidate(tmp_path, plugins, backend):
    """The issue's reproduction: with the paper's shape-only LCS the receiver's variance turns
    negative, predictions are NaN, and the candidate fails without a checkpoint (search and
    top-K jobs alike); the role-aware default copies no such tensor and trains fine."""
    if backend == "keras" and importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed")
    from wtnas_cli.search.evaluator import Evaluator

    provider, _ = _negative_variance_provider(tmp_path, plugins, backend)
    ev = Evaluator(threads=2)
    for extra in ({}, {"patience": 2, "epochs": 2}):   # a search job, then a top-K job (early stopping)
        shape_only = ev.run(_cifar_job(tmp_path, provider, "lcs-shape", backend, **extra))
        assert shape_only.status == "failed", shape_only
        assert "predictions are not finite" in shape_only.error and shape_only.n_role_crossed > 0
        assert not (tmp_path / "c1-lcs-shape.h5").exists()
    safe = ev.run(_cifar_job(tmp_path, provider, "lcs", backend))
    assert safe.status == "ok", safe.error
    assert safe.n_transferred > 0 and safe.n_role_crossed == 0


@pytest.mark.slow
def test_nan_candidate_is_never_a_provider(tmp_path, plugins):
    """In a real search store, the failed candidate has no checkpoint and the selector skips it."""
    from wtnas_cli.run.retention import Retention
    from wtnas_cli.search.scheduler import RunSummary, absorb
    from wtnas_builtins.selectors import NearestSelector

    selector = NearestSelector(_cifar_problem(plugins).space)
    record = {"id": 1, "arch_seq": CIFAR_RECEIVER, "status": "failed", "score": None, "checkpoint": None}
    retention = Retention()
    absorb(record, lambda *a: None, selector, RunSummary(tmp_path, 1), {}, {}, retention)
    assert selector.ids == [] and retention.kept == {}


def test_non_finite_weights_fail_before_the_checkpoint(tmp_path, plugins, monkeypatch):
    from wtnas_torch import backend as tb

    from wtnas_cli.search.evaluator import Evaluator
    from wtnas_cli.run.job import Job

    original = tb.TorchModel.get_tensors
    monkeypatch.setattr(tb.TorchModel, "get_tensors", lambda self: [t * np.inf for t in original(self)])
    seq = plugins.registry.create("problem", "digits").space.sample(np.random.default_rng(0))
    result = Evaluator(threads=1).run(Job(1, list(seq), "digits", "torch", "none", 1, 1, str(tmp_path / "c1.h5")))
    assert result.status == "failed" and "weights are not finite" in result.error
    assert not (tmp_path / "c1.h5").exists()


# -- role-aware matching --------------------------------------------------------------------------
ROLES = ["kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance"]
specs = st.lists(st.builds(lambda role, n, rank: TensorSpec("l", "Op", role, (n,) * rank),
                           st.sampled_from(ROLES), st.sampled_from([2, 3, 4]), st.sampled_from([1, 2])), max_size=25)


@settings(max_examples=200, deadline=None)
@given(specs, specs)
def test_default_matchers_never_cross_roles_and_slice_keeps_the_exact_pairs(a, b):
    for match in (match_lcs_roles, match_lp_roles, match_lcs_slice):
        pairs = apply_matcher(match, a, b)
        assert plan_stats(pairs, a, b).role_crossings == 0
        for (i1, j1), (i2, j2) in zip(pairs, pairs[1:]):
            assert i1 < i2 and j1 < j2
    exact = match_lcs_roles(a, b)
    sliced = match_lcs_slice(a, b)
    assert set(exact) <= set(sliced)
    assert set(match_lp_roles(a, b)) <= set(exact)
    assert all(len(a[i].shape) == len(b[j].shape) for i, j in sliced)
    assert plan_stats(sliced, a, b).elements >= plan_stats(exact, a, b).elements


def test_role_classes_keep_batchnorm_statistics_apart():
    dense = [TensorSpec("d", "Dense", "kernel", (8, 4)), TensorSpec("d", "Dense", "bias", (4,))]
    bn = [TensorSpec("n", "BatchNorm", r, (4,), r.startswith("moving") is False) for r in ROLES[2:]]
    assert apply_matcher(match_lcs, dense, bn) == [(1, 3)]   # the paper's rule: bias -> moving_variance
    assert apply_matcher(match_lcs_roles, dense, bn) == []
    assert len({role_class(r) for r in ROLES}) == len(ROLES)
    assert role_class("my_custom_role") == "my_custom_role"


def test_apply_matcher_refuses_bad_pairs_with_one_line():
    a = [TensorSpec("d", "Dense", "kernel", (8, 4))]
    b = [TensorSpec("d", "Dense", "kernel", (8, 6))]
    with pytest.raises(MatchError, match="pairs need equal shapes"):
        apply_matcher(lambda p, r: [(0, 0)], a, b, "mine")
    with pytest.raises(MatchError, match="outside the sequences"):
        apply_matcher(lambda p, r: [(0, 3)], a, b, "mine")
    with pytest.raises(MatchError, match="two provider tensors onto receiver tensor 0"):
        apply_matcher(lambda p, r: [(0, 0), (0, 0)], a, a, "mine")
    assert apply_matcher(takes_specs(lambda p, r: iter([(0, 0)]), partial=True), a, b) == [(0, 0)]


# -- partial copies -------------------------------------------------------------------------------
def test_block_slices_centre_spatial_axes_and_keep_leading_units():
    src, dst = block_slices((3, 3, 4, 8), (5, 5, 2, 16), spatial=2)
    assert src == (slice(0, 3), slice(0, 3), slice(0, 2), slice(0, 8))
    assert dst == (slice(1, 4), slice(1, 4), slice(0, 2), slice(0, 8))
    src, dst = block_slices((64,), (128,), spatial=0)
    assert src == (slice(0, 64),) and dst == (slice(0, 64),)


def test_assemble_copies_the_block_and_keeps_the_fresh_rest():
    p = [TensorSpec("a", "Dense", "kernel", (3, 2)), TensorSpec("a", "Dense", "bias", (2,))]
    r = [TensorSpec("a", "Dense", "kernel", (4, 3)), TensorSpec("a", "Dense", "bias", (2,))]
    provider = {0: np.arange(6, dtype=np.float32).reshape(3, 2), 1: np.array([5.0, 6.0], np.float32)}
    fresh = [np.full((4, 3), -1.0, np.float32), np.zeros(2, np.float32)]
    pairs = match_lcs_slice(p, r)
    assert pairs == [(0, 0), (1, 1)]
    out = assemble(pairs, p, r, provider, lambda: fresh)
    assert np.array_equal(out[0][:3, :2], provider[0]) and (out[0][3:] == -1).all() and (out[0][:, 2] == -1).all()
    assert out[1] is provider[1]
    stats = plan_stats(pairs, p, r)
    assert (stats.tensors, stats.partial, stats.elements, stats.receiver_elements) == (2, 1, 8, 14)


def _digits_pair(plugins, rng, want):
    """A real provider/receiver pair of the digits space for which `want(pairs)` holds."""
    space = plugins.registry.create("problem", "digits").space
    for _ in range(500):
        a = space.sample(rng)
        b = space.mutate(space.mutate(a, rng), rng)
        sa, sb = space.resolve(a).tensor_specs(), space.resolve(b).tensor_specs()
        if want(sa, sb):
            return a, b
    raise AssertionError("no such pair found")


@pytest.mark.parametrize("matcher", ["lcs", "lcs-slice"])
def test_evaluator_copy_is_byte_exact_on_a_mutated_pair(tmp_path, plugins, matcher):
    """The evaluator's own copy (not the test's) on a real pair whose matched indices differ:
    whole tensors byte-equal, partial ones equal on the block and fresh elsewhere."""
    from wtnas_cli.weights.checkpoint import read_checkpoint
    from wtnas_cli.search.evaluator import Evaluator
    from wtnas_cli.run.job import Job
    from wtnas_cli.weights.matching import match_lcs_roles

    def interesting(sa, sb):
        pairs = apply_matcher(match_lcs_slice if matcher == "lcs-slice" else match_lcs_roles, sa, sb)
        shifted = any(i != j for i, j in pairs)
        return shifted and (matcher == "lcs" or plan_stats(pairs, sa, sb).partial > 0)

    provider_seq, receiver_seq = _digits_pair(plugins, np.random.default_rng(5), interesting)
    ev = Evaluator(threads=1)
    parent = ev.run(Job(0, list(provider_seq), "digits", "torch", "none", 1, 3, str(tmp_path / "c0.h5")))
    assert parent.status == "ok"
    p_meta, p_tensors = read_checkpoint(parent.checkpoint_path)
    problem = ev.problem("digits", {})
    model = ev.backend("torch", "cpu").build(problem, problem.space.resolve(receiver_seq), seed=4)
    fresh = model.get_tensors()
    job = Job(1, list(receiver_seq), "digits", "torch", matcher, 1, 4, str(tmp_path / "c1.h5"), provider_id=0,
              provider_checkpoint=parent.checkpoint_path)
    from wtnas_cli.run.job import Result

    result = Result(1, "failed")
    moved = ev._transfer(job, ev.matcher(matcher), model, result, {})
    pairs = apply_matcher(ev.matcher(matcher), p_meta.specs, model.specs)
    assert moved == len(pairs) > 0 and any(i != j for i, j in pairs)
    got = model.get_tensors()
    for i, j in pairs:
        if p_tensors[i].shape == got[j].shape:
            assert got[j].tobytes() == p_tensors[i].tobytes()
        else:
            s_idx, d_idx = block_slices(p_tensors[i].shape, got[j].shape, spatial_axes(model.specs[j]))
            assert got[j][d_idx].tobytes() == p_tensors[i][s_idx].tobytes()
            rest = np.ones(got[j].shape, bool)
            rest[d_idx] = False
            assert np.array_equal(got[j][rest], fresh[j][rest])
    untouched = set(range(len(got))) - {j for _, j in pairs}
    assert all(np.array_equal(got[j], fresh[j]) for j in untouched)
    assert result.n_partial == plan_stats(pairs, p_meta.specs, model.specs).partial
    assert (result.n_partial > 0) == (matcher == "lcs-slice") and 0 < result.transfer_share <= 1


# -- schemes that can never transfer ----------------------------------------------------------------
@pytest.mark.parametrize("options, message", [
    ({"strategy": "random", "selector": "parent"}, "--strategy random proposes none"),
    ({"selector": "none", "matcher": "lcs"}, "--selector none never picks a provider"),
    ({"selector": "nearest", "matcher": "none"}, "--matcher none transfers nothing"),
])
def test_schemes_that_cannot_transfer_are_refused(plugins, options, message):
    from wtnas_cli.run.config import RunConfig
    from wtnas_cli.search.scheduler import resolve_run

    with pytest.raises(ConfigError, match=message):
        resolve_run(RunConfig(**options).validate(), plugins)


@pytest.mark.parametrize("options, warning", [
    ({"max_evals": 20, "population": 20}, "none of --max-evals 20 can receive weights"),
    ({"max_evals": 30, "population": 20}, "only the last 10 of 30 candidates can receive weights"),
    ({"max_evals": 200}, None),
    ({"max_evals": 20, "selector": "nearest"}, None),
    ({"max_evals": 20, "matcher": "none"}, None),
])
def test_budgets_that_leave_no_room_for_transfer_are_warned(plugins, options, warning):
    """With the population given; left unset it follows the budget (the next test)."""
    from wtnas_cli.run.config import RunConfig
    from wtnas_cli.search.scheduler import resolve_run

    cfg = RunConfig(**{"population": 20, **options}).validate()
    warnings = resolve_run(cfg, plugins)["warnings"]
    assert (warning in warnings[0]) if warning else warnings == []


@pytest.mark.parametrize("options, fitted", [
    ({"max_evals": 20}, {"population": 4, "sample": 2, "islands": 1}),
    ({"max_evals": 50}, {"population": 10, "sample": 5, "islands": 1}),
    ({"max_evals": 8}, {"population": 4, "sample": 2, "islands": 1}),
    ({"max_evals": 100}, {"population": 20, "sample": 10, "islands": 1}),   # the defaults from 100 on
    ({"max_evals": 20, "population": 20}, {"population": 20, "sample": 10, "islands": 1}),   # given: kept
    ({"max_evals": 20, "sample": 6}, {"population": 6, "sample": 6, "islands": 1}),   # a given S raises N
    ({"max_evals": 20, "options": {"evolution": {"islands": 3}}}, {"population": 4, "sample": 2, "islands": 3}),
    ({"max_evals": 20, "matcher": "none"}, {"population": 4, "sample": 2, "islands": 1}),   # the baseline alike
])
def test_the_random_start_follows_a_small_budget(plugins, options, fitted):
    """A first try with a small --max-evals transfers: evolution's population (its random start)
    is min(20, max(4, max_evals // 5)) unless given, sample shrinks with it, and the values are
    stored with the run's options (run.toml)."""
    from wtnas_cli.run.config import RunConfig
    from wtnas_cli.search.scheduler import resolve_run

    cfg = RunConfig(**options).validate()
    parts = resolve_run(cfg, plugins)
    got = cfg.options_of("strategy", "evolution")
    assert {k: got[k] for k in fitted} == fitted
    said = [w for w in parts["warnings"] if "so that" in w]
    if fitted["population"] == 20 or "matcher" in options:
        assert not said
    else:
        assert said == [f"population {fitted['population']}, sample {fitted['sample']} for --max-evals "
                        f"{options['max_evals']} (a random start of {fitted['population']}, so that "
                        f"{options['max_evals'] - fitted['population']} candidates can receive weights; "
                        f"-o evolution.population=N sets it)"] or "sample" in options or "options" in options


def test_a_space_smaller_than_the_budget_is_warned_about(plugins, tmp_path):
    """A space file of a few architectures searched with the default 200 candidates: one line says
    most would repeat an architecture."""
    from wtnas_cli.run.config import RunConfig
    from wtnas_cli.search.scheduler import resolve_run

    space, data = _tiny_space_file(tmp_path)
    warnings = resolve_run(RunConfig(problem="file", space=str(space), data=str(data)).validate(), plugins)["warnings"]
    assert [w for w in warnings if "the search space has only 4 architectures and --max-evals is 200" in w]
    roomy = resolve_run(RunConfig(problem="file", space=str(space), data=str(data), max_evals=4).validate(), plugins)
    assert not [w for w in roomy["warnings"] if "search space has only" in w]


def _tiny_space_file(tmp_path):
    """A 2 x 2 = 4-architecture space file and a small labelled data file."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 0] > 0).astype(np.int64))
    (tmp_path / "s.toml").write_text("""
name = "tiny"
[[inputs]]
name = "x"
shape = [4]
[[nodes]]
name = "a"
choices = [{op = "Dense", units = 4, activation = "relu"}, {op = "Dense", units = 8, activation = "relu"}]
[[nodes]]
name = "b"
choices = [{op = "Identity"}, {op = "Dropout", rate = 0.1}]
[[nodes]]
name = "out"
op = {op = "Dense", units = 2, activation = "softmax"}
""")
    return tmp_path / "s.toml", tmp_path / "d.npz"


def test_a_first_try_keras_run_of_20_candidates_transfers(tmp_path):
    """The mission's headline command with a first-try budget: most candidates receive weights."""
    from wtnas_cli.run.config import RunConfig
    from wtnas_cli.search.scheduler import run_search

    summary = run_search(RunConfig(backend="keras", matcher="lcs", max_evals=20, workers=2, seed=3,
                                   run_dir=str(tmp_path / "r")))
    assert summary is not None and summary.ok == 20 and summary.with_transfer >= 10


def test_cli_refuses_a_scheme_in_one_line(cli, tmp_path):
    proc = cli("run", "--strategy", "random", "--selector", "parent", "--run-dir", tmp_path / "r")
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "use --selector nearest" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_an_older_run_store_gains_the_new_columns(tmp_path):
    import sqlite3

    from wtnas_cli.run.store import RunStore

    con = sqlite3.connect(tmp_path / "wtnas.sqlite")
    con.execute("CREATE TABLE candidates (id INTEGER PRIMARY KEY, arch_seq TEXT NOT NULL, status TEXT NOT NULL,"
                " n_transferred INTEGER)")
    con.execute("INSERT INTO candidates VALUES (0, '[1, 2]', 'ok', 3)")
    con.commit()
    con.close()
    store = RunStore(tmp_path / "wtnas.sqlite")
    row = store.candidate(0)
    store.close()
    assert row["n_transferred"] == 3 and row["n_partial"] is None and "transfer_share" in row
