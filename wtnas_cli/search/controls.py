"""Lineage-bias controls: a fraction of the candidates that inherit weights also train from scratch.

A candidate's score after a short training mixes its architecture's quality with what it
inherited (Sciuto et al. 2020 saw the same with weight sharing). A control is the same
architecture, seed and budget trained from random weights, on the same executor; it is stored
beside its candidate, never as a candidate of the search. Over the controls:
- the *inheritance lift* (warm − scratch score): how much inherited weights add;
- Kendall tau between warm and scratch scores: whether inheritance keeps the ranking.
Which candidates get a control is a function of the run seed and the candidate id, so a resumed
run draws the same ones.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace

import numpy as np

from ..run.job import Job
from ..util.stats import kendall_tau, mean_ci95


def gets_control(run_seed: int, candidate_id: int, fraction: float) -> bool:
    """Deterministic draw with probability `fraction` (only candidates with a provider ask)."""
    if fraction <= 0:
        return False
    digest = hashlib.blake2b(f"{run_seed}:{candidate_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2 ** 64 < fraction


def control_job(job: Job) -> Job:
    """The candidate's job from random weights: same architecture, seed, epochs; no checkpoint."""
    return replace(job, provider_id=None, provider_checkpoint=None, role="control",   # no provider: no transfer
                   write_checkpoint=False, checkpoint_path=job.checkpoint_path + ".control")


@dataclass
class ControlStats:
    n: int
    lift: float          # mean of warm − scratch
    lift_ci: float       # half-width of its 95% interval
    tau: float           # Kendall tau between warm and scratch scores (nan for n < 2)

    def line(self) -> str:
        """Short form for the live progress line."""
        if not self.n:
            return "-"
        tau = f" τ {self.tau:.2f}" if self.n >= 3 and self.tau == self.tau else ""
        return f"{self.lift:+.3f}±{self.lift_ci:.3f}{tau} (n={self.n})"


def control_stats(pairs: list[tuple[float, float]]) -> ControlStats:
    """Lift and tau over (warm score, scratch score) pairs."""
    if not pairs:
        return ControlStats(0, float("nan"), float("nan"), float("nan"))
    lift, ci = mean_ci95([w - s for w, s in pairs])
    tau = kendall_tau([w for w, _ in pairs], [s for _, s in pairs]) if len(pairs) >= 2 else float("nan")
    return ControlStats(len(pairs), lift, ci, tau)


class ControlTally:
    """The (warm, scratch) pairs of a live search, kept so that the progress line can ask for lift
    and tau after every candidate: a pair is added in O(n) (numpy), the statistics are read in
    O(1). `control_stats` over the same pairs gives the same numbers; recomputing it (O(n²) for
    tau) after each of 100,000 candidates would dominate the scheduler's time."""

    def __init__(self) -> None:
        self.pairs: list[tuple[float, float]] = []
        self._keys: set = set()
        self._warm = np.empty(64)
        self._scratch = np.empty(64)
        self._mean = self._m2 = 0.0          # Welford's running mean and sum of squared deviations
        self._concordance = self._untied_warm = self._untied_scratch = 0

    def add(self, key, warm: float, scratch: float) -> None:
        """One candidate's pair (a key seen before is ignored: a control re-run on resume)."""
        if key in self._keys:
            return
        self._keys.add(key)
        warm, scratch = float(warm), float(scratch)
        n = len(self.pairs)
        if n == len(self._warm):
            self._warm = np.concatenate([self._warm, np.empty(n)])
            self._scratch = np.concatenate([self._scratch, np.empty(n)])
        dw, ds = np.sign(warm - self._warm[:n]), np.sign(scratch - self._scratch[:n])
        self._concordance += int((dw * ds).sum())
        self._untied_warm += int(np.count_nonzero(dw))
        self._untied_scratch += int(np.count_nonzero(ds))
        self._warm[n], self._scratch[n] = warm, scratch
        self.pairs.append((warm, scratch))
        lift = warm - scratch
        delta = lift - self._mean
        self._mean += delta / (n + 1)
        self._m2 += delta * (lift - self._mean)

    def stats(self) -> ControlStats:
        n = len(self.pairs)
        if not n:
            return control_stats([])
        ci = 1.96 * math.sqrt(self._m2 / (n - 1)) / math.sqrt(n) if n > 1 else 0.0
        untied = self._untied_warm * self._untied_scratch
        tau = self._concordance / math.sqrt(untied) if n > 1 and untied else float("nan")
        return ControlStats(n, self._mean, ci, tau)


def control_pairs(candidates: list[dict], controls: list[dict]) -> list[tuple[float, float]]:
    """(warm, scratch) for every control whose candidate finished ok with inherited weights."""
    by_id = {c["id"]: c for c in candidates}
    out = []
    for ctl in controls:
        if (ctl.get("origin") or "search") != "search":   # top-K checks are not a random sample
            continue
        cand = by_id.get(ctl["candidate_id"])
        if (ctl["status"] == "ok" and cand and cand["status"] == "ok" and cand.get("n_transferred")
                and ctl["score"] is not None):
            out.append((cand["score"], ctl["score"]))
    return out
