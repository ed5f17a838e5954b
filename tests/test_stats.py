import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wtnas_cli.stats import early_stop_epoch, geometric_mean, kendall_tau, time_slots


def test_early_stopping_follows_keras():
    # no improvement after the first epoch: stops after patience further epochs (floor patience + 1)
    assert early_stop_epoch([0.5, 0.5, 0.5, 0.9], patience=2, min_delta=0.001) == 3
    # improvements by less than min_delta do not count
    assert early_stop_epoch([0.5, 0.5005, 0.501], patience=2, min_delta=0.001) == 3
    # an improvement resets the wait
    assert early_stop_epoch([0.5, 0.6, 0.6, 0.7, 0.7, 0.7], patience=2, min_delta=0.001) == 6
    assert early_stop_epoch([0.1, 0.2, 0.3], patience=2, min_delta=0.0) is None
    assert early_stop_epoch([0.5, 0.4, 0.3, 0.2], patience=1, min_delta=0.0) == 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=2, max_size=25), st.randoms(use_true_random=False))
def test_kendall_tau_equals_scipy(xs, rnd):
    from scipy.stats import kendalltau

    ys = [rnd.randint(0, 4) for _ in xs]
    ours, theirs = kendall_tau(xs, ys), kendalltau(xs, ys).statistic
    if math.isnan(theirs):
        assert math.isnan(ours)
    else:
        assert ours == pytest.approx(theirs, abs=1e-12) and -1 <= ours <= 1


def test_kendall_tau_matches_paper_formula_without_ties():
    rng = np.random.default_rng(0)
    x, y = rng.permutation(12), rng.permutation(12)
    nc = nd = 0
    for i in range(12):
        for j in range(i + 1, 12):
            s = np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])
            nc += s > 0
            nd += s < 0
    assert kendall_tau(x, y) == pytest.approx(2 * (nc - nd) / (12 * 11))


def test_geometric_mean_and_slots():
    assert geometric_mean([2, 8]) == pytest.approx(4)
    assert math.isnan(geometric_mean([]))
    slots = time_slots([1, 49, 50, 51, 120], [1, 2, 3, 4, 5], 50)
    assert [(s[0], s[1], s[3]) for s in slots] == [(50, 2, 3), (100, 4, 1), (150, 5, 1)]
