"""Small statistics used by top-K training and reports (numpy only, no scipy import)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def early_stop_epoch(curve: Sequence[float], patience: int, min_delta: float,
                     start: float | None = None) -> int | None:
    """Epochs trained when Keras' EarlyStopping (mode max) would stop, or None.

    An epoch improves when it beats the best by more than `min_delta`; training stops after
    `patience` epochs in a row without improvement. The reference is `start` (the model's score
    before training, Keras' `baseline`): a warm start must beat its checkpoint, and stops after
    `patience` epochs if it never does. Without `start` the first epoch sets the reference (Keras'
    default), so at least patience + 1 epochs are trained.
    """
    best, wait = (-math.inf if start is None else start), 0
    for epoch, value in enumerate(curve):
        wait += 1
        if value - min_delta > best:
            best, wait = value, 0
        elif wait >= patience:
            return epoch + 1
    return None


def kept_epoch(epochs_to_converge: int, converged: bool, patience: int) -> int:
    """The epoch whose objective early stopping keeps: the stop epoch minus `patience` (the
    last improving epoch; 0: no epoch beat the start, the model keeps its starting weights).
    Unlike the stop epoch it has no floor of patience + 1, so speed-ups of models that converge
    almost at once are not capped. A model that hit the epoch cap: the cap."""
    return max(0, epochs_to_converge - patience) if converged else epochs_to_converge


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (as scipy.stats.kendalltau); equals the paper's 2(Nc - Nd)/(n(n-1)) without ties.
    NaN when fewer than two pairs or a vector is constant."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"kendall_tau needs vectors of equal length, got {a.shape} and {b.shape}")
    n = len(a)
    if n < 2:
        return float("nan")
    iu = np.triu_indices(n, 1)
    dx = np.sign(a[:, None] - a[None, :])[iu]
    dy = np.sign(b[:, None] - b[None, :])[iu]
    untied_x, untied_y = np.count_nonzero(dx), np.count_nonzero(dy)
    if untied_x == 0 or untied_y == 0:
        return float("nan")
    return float((dx * dy).sum() / math.sqrt(untied_x * untied_y))


def geometric_mean(values: Sequence[float]) -> float:
    v = np.asarray(values, dtype=float)
    if len(v) == 0 or np.any(v <= 0):
        return float("nan")
    return float(np.exp(np.log(v).mean()))


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of a normal-approximation 95% confidence interval (0 for n < 2)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan")
    if len(v) < 2:
        return float(v.mean()), 0.0
    return float(v.mean()), float(1.96 * v.std(ddof=1) / math.sqrt(len(v)))


def time_slots(times: Sequence[float], values: Sequence[float], slot_s: float) -> list[tuple[float, float, float, int]]:
    """Group (t, value) into slots as the paper's Fig. 7: point t goes to slot * ceil(t / slot).
    Returns (slot end time, mean, 95% CI half-width, count) per non-empty slot."""
    groups: dict[float, list[float]] = {}
    for t, v in zip(times, values):
        key = slot_s * max(1, math.ceil(t / slot_s))
        groups.setdefault(key, []).append(v)
    return [(k, *mean_ci95(vs), len(vs)) for k, vs in sorted(groups.items())]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for n < 2): the spread over seeds we report."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def permutation_pvalue(a: Sequence[float], b: Sequence[float], *, statistic: str = "mean", resamples: int = 10000,
                       seed: int = 0) -> float:
    """Two-sided p-value that `a` and `b` come from one distribution, by label permutation of the
    difference of means (statistic="mean") or of geometric means ("gmean", for epochs and ratios).
    Exact over all relabelings when they are fewer than `resamples`; no normality assumed."""
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if len(x) == 0 or len(y) == 0:
        return float("nan")
    if statistic == "gmean":
        x, y = np.log(x), np.log(y)
    pooled = np.concatenate([x, y])
    n, total = len(x), len(x) + len(y)
    observed = abs(x.mean() - y.mean())
    if math.comb(total, n) <= resamples:
        from itertools import combinations

        diffs = []
        for idx in combinations(range(total), n):
            mask = np.zeros(total, bool)
            mask[list(idx)] = True
            diffs.append(abs(pooled[mask].mean() - pooled[~mask].mean()))
        return float(np.mean(np.asarray(diffs) >= observed - 1e-12))
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(resamples):
        perm = rng.permutation(pooled)
        hits += abs(perm[:n].mean() - perm[n:].mean()) >= observed - 1e-12
    return float((hits + 1) / (resamples + 1))


def paired_pvalue(a: Sequence[float], b: Sequence[float], *, resamples: int = 10000, seed: int = 0) -> float:
    """Two-sided p-value that paired differences `a[i] - b[i]` (one pair per seed) are centred on
    0, by flipping each difference's sign: exact over all 2^n flips for n <= 13, else sampled."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(d) == 0:
        return float("nan")
    observed = abs(d.mean())
    if len(d) <= 13:
        from itertools import product

        signs = np.array(list(product((1.0, -1.0), repeat=len(d))))
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(resamples, len(d)))
    return float(np.mean(np.abs((signs * d).mean(axis=1)) >= observed - 1e-12))


def bootstrap_ratio_ci(numerator: Sequence[float], denominator: Sequence[float], *, resamples: int = 5000,
                       seed: int = 0, geometric: bool = True) -> tuple[float, float, float]:
    """Ratio of geometric means (e.g. baseline epochs / LCS epochs) with a 95% percentile
    bootstrap interval, resampling each group independently: (ratio, low, high). With
    `geometric=False`, of arithmetic means (for values that can be 0, such as kept epochs)."""
    x, y = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    if len(x) == 0 or len(y) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    if geometric:
        x, y = np.log(x), np.log(y)
    bx = x[rng.integers(len(x), size=(resamples, len(x)))].mean(axis=1)
    by = y[rng.integers(len(y), size=(resamples, len(y)))].mean(axis=1)
    if geometric:
        low, high = np.percentile(np.exp(bx - by), [2.5, 97.5])
        return float(np.exp(x.mean() - y.mean())), float(low), float(high)
    ratios = np.divide(bx, by, out=np.full_like(bx, np.inf), where=by > 0)   # a resample of all 0s: inf
    low, high = np.percentile(ratios, [2.5, 97.5], method="nearest")
    return float(x.mean() / y.mean()) if y.mean() else float("inf"), float(low), float(high)
