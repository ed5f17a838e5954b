import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wtnas_cli.util.stats import (bootstrap_ratio_ci, early_stop_epoch, geometric_mean, kendall_tau, kept_epoch,
                                  mean_std, paired_pvalue, permutation_pvalue, time_slots)


def test_early_stopping_follows_keras():
    # no improvement after the first epoch: stops after patience further epochs (floor patience + 1)
    assert early_stop_epoch([0.5, 0.5, 0.5, 0.9], patience=2, min_delta=0.001) == 3
    # improvements by less than min_delta do not count
    assert early_stop_epoch([0.5, 0.5005, 0.501], patience=2, min_delta=0.001) == 3
    # an improvement resets the wait
    assert early_stop_epoch([0.5, 0.6, 0.6, 0.7, 0.7, 0.7], patience=2, min_delta=0.001) == 6
    assert early_stop_epoch([0.1, 0.2, 0.3], patience=2, min_delta=0.0) is None
    assert early_stop_epoch([0.5, 0.4, 0.3, 0.2], patience=1, min_delta=0.0) == 2


def test_early_stopping_from_the_start_score():
    """With the score before training as the reference (Keras' `baseline`), a warm start that
    never beats its checkpoint stops after `patience` epochs: kept epoch 0, the start."""
    assert early_stop_epoch([0.955, 0.972, 0.981], patience=2, min_delta=0.001, start=0.981) == 2
    assert kept_epoch(2, True, patience=2) == 0
    assert early_stop_epoch([0.955, 0.972, 0.981], patience=2, min_delta=0.001) is None   # Keras' default
    # one that beats its start goes on as before; patience 1 can stop after one epoch
    assert early_stop_epoch([0.99, 0.99, 0.99], patience=2, min_delta=0.001, start=0.98) == 3
    assert early_stop_epoch([0.5], patience=1, min_delta=0.0, start=0.5) == 1
    assert kept_epoch(3, True, patience=2) == 1 and kept_epoch(8, False, patience=2) == 8


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


def test_permutation_pvalue_equals_scipy_exact_test():
    from scipy import stats as sps

    a, b = [5.0, 6, 7, 9, 4], [3.0, 4, 2, 5]
    ours = permutation_pvalue(a, b)
    ref = sps.permutation_test((a, b), lambda x, y: np.mean(x) - np.mean(y), permutation_type="independent",
                               alternative="two-sided", n_resamples=np.inf).pvalue
    assert ours == pytest.approx(ref)
    assert permutation_pvalue([1.0, 2, 3], [1.0, 2, 3]) == 1.0
    # random relabelings once there are too many for the exact test; clearly separated groups
    rng = np.random.default_rng(0)
    assert permutation_pvalue(rng.normal(0, 1, 40), rng.normal(2, 1, 40), resamples=2000) < 0.01
    assert permutation_pvalue([2.0, 4, 8], [1.0, 2, 4], statistic="gmean") == pytest.approx(
        permutation_pvalue(np.log([2.0, 4, 8]), np.log([1.0, 2, 4])))


def test_bootstrap_ratio_of_arithmetic_means_takes_zeros():
    """Kept epochs can be 0 (a model that kept its start): their ratio is of means."""
    ratio, low, high = bootstrap_ratio_ci([4, 4, 6], [0, 2, 4], geometric=False)
    assert ratio == pytest.approx(14 / 6) and low <= ratio <= high
    assert bootstrap_ratio_ci([4, 6], [0, 0], geometric=False) == (float("inf"), float("inf"), float("inf"))


def test_bootstrap_ratio_ci_brackets_the_ratio_of_geometric_means():
    ratio, low, high = bootstrap_ratio_ci([6, 5, 7, 6, 5, 8], [4, 3, 4, 5, 3, 4])
    assert ratio == pytest.approx(geometric_mean([6, 5, 7, 6, 5, 8]) / geometric_mean([4, 3, 4, 5, 3, 4]))
    assert 1.0 < low < ratio < high
    assert bootstrap_ratio_ci([3, 3, 3], [3, 3, 3]) == (1.0, 1.0, 1.0)
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_std([4.0, None, float("nan")]) == (4.0, 0.0)


def test_paired_pvalue_flips_signs_of_the_differences():
    # 5 pairs, all differences positive: only the two all-same-sign flips are as extreme (2 of 32)
    assert paired_pvalue([2, 3, 4, 5, 6], [1, 1, 1, 1, 1]) == pytest.approx(2 / 32)
    assert paired_pvalue([1, 2, 3], [1, 2, 3]) == 1.0   # no difference at all
    # a difference that pairs cancel (+1, -1) is no evidence, whatever the groups' means
    assert paired_pvalue([0.9, 0.7], [0.8, 0.8]) == 1.0
    assert math.isnan(paired_pvalue([], []))
    sampled = paired_pvalue([1.0] * 20, [0.0] * 20)   # 2^20 flips: sampled, still tiny
    assert sampled < 0.001
