import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from wtnas_cli.weights.matching import lp_length, match_lcs, match_lp, match_none

shapes = st.sampled_from([(3,), (4,), (3, 3), (2, 3), (3, 3, 1, 8)])
seqs = st.lists(shapes, max_size=30)


def brute_force_lcs_length(a, b):
    """Reference: the longest subsequence of `a` that is also a subsequence of `b`."""
    def is_subseq(sub, seq):
        it = iter(seq)
        return all(any(x == y for y in it) for x in sub)
    for k in range(min(len(a), len(b)), -1, -1):
        for idx in itertools.combinations(range(len(a)), k):
            if is_subseq([a[i] for i in idx], b):
                return k
    return 0


def _valid(pairs, a, b):
    for (i1, j1), (i2, j2) in zip(pairs, pairs[1:]):
        assert i1 < i2 and j1 < j2
    for i, j in pairs:
        assert a[i] == b[j]


@settings(max_examples=300, deadline=None)
@given(seqs, seqs)
def test_lp_pairs_are_a_subset_of_lcs_pairs(a, b):
    lp, lcs = match_lp(a, b), match_lcs(a, b)
    assert set(lp) <= set(lcs)
    _valid(lp, a, b)
    _valid(lcs, a, b)


@settings(max_examples=150, deadline=None)
@given(st.lists(shapes, max_size=9), st.lists(shapes, max_size=9))
def test_lcs_length_equals_brute_force(a, b):
    pairs = match_lcs(a, b)
    _valid(pairs, a, b)
    assert len(pairs) == brute_force_lcs_length(a, b)


def test_paper_figure_3_example():
    # receiver has an extra conv layer: LP stops there, LCS also recovers the last dense layer
    provider = [(3, 3, 1, 8), (8,), (128, 10), (10,)]
    receiver = [(3, 3, 1, 8), (8,), (3, 3, 8, 8), (8,), (128, 10), (10,)]
    assert match_lp(provider, receiver) == [(0, 0), (1, 1)]
    assert match_lcs(provider, receiver) == [(0, 0), (1, 1), (2, 4), (3, 5)]


def test_identical_sequences_match_fully():
    a = [(3, 3, 1, 8), (8,), (8,), (72, 10), (10,)]
    assert match_lp(a, a) == match_lcs(a, a) == [(i, i) for i in range(len(a))]
    assert lp_length(a, a) == len(a)


def test_none_and_empty():
    assert match_none([(1,)], [(1,)]) == []
    assert match_lcs([], [(1,)]) == [] and match_lp([(1,)], []) == []
