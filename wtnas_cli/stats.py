"""Small statistics used by top-K training and reports (numpy only, no scipy import)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def early_stop_epoch(curve: Sequence[float], patience: int, min_delta: float) -> int | None:
    """Epochs trained when Keras' EarlyStopping (mode max, no baseline) would stop, or None.

    As in Keras: the first epoch sets the reference; an epoch improves when it beats the best by
    more than `min_delta`; training stops after `patience` epochs in a row without improvement.
    The result counts epochs trained, so it is at least patience + 1.
    """
    best, wait = -math.inf, 0
    for epoch, value in enumerate(curve):
        wait += 1
        if value - min_delta > best:
            best, wait = value, 0
        elif wait >= patience and epoch > 0:
            return epoch + 1
    return None


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
