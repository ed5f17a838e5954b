"""Asynchronous successive halving (ASHA; Li et al., MLSys 2020) as a promoting strategy.

Rung k trains a candidate to `min_epochs * reduction**k` epochs in all (the top rung to
`max_epochs`). Whenever a worker is free, the best candidate of the highest rung that has one in
its top 1/reduction and was not promoted from there yet is promoted (trained on from its own
checkpoint: weights and optimizer state continue); only when there is none does a new candidate
start at rung 0. Nothing waits for a rung to fill, so workers never idle.

New candidates are uniform random samples of the space, as in the paper: its promotion rule
compares candidates drawn independently, and weight transfer still reaches them through the
run's selector (`nearest` by default: the closest checkpoint, whatever rung it reached). With
`mutate` p > 0 a new candidate is, with probability p, a one-node mutation of a random member of
the best rung's top 1/reduction instead (its parent: at d = 1 a transfer copies almost all of
it); that trades the independent sample for exploitation and is off by default.

Its state follows from the told results in order (a resumed run replays them), plus the
promotions left in flight, which are re-issued (`replay_promotion`).
"""

from __future__ import annotations

import bisect

import numpy as np

from wtnas_cli.model.space import ArchSeq, SearchSpace
from wtnas_cli.plugins.option import Option
from wtnas_cli.search.strategy_protocol import Promotion, Proposal


def rung_epochs(min_epochs: int, reduction: int, max_epochs: int) -> list[int]:
    """Epochs in all at each rung: r, r*eta, r*eta^2, ... while below R, then R."""
    epochs = [min_epochs]
    while epochs[-1] * reduction < max_epochs:
        epochs.append(epochs[-1] * reduction)
    if epochs[-1] < max_epochs:
        epochs.append(max_epochs)
    return epochs


class _Rung:
    """One rung's members, best first, and those not yet promoted out of it: the best of them
    is promotable when fewer than n // reduction members rank above it, found by bisection, so
    a decision costs O(log n), not a sort of the rung."""

    def __init__(self) -> None:
        self.score: dict[int, float] = {}
        self.ranked: list[tuple[float, int]] = []     # (-score, id): best first, ties to the older
        self.waiting: list[tuple[float, int]] = []    # the same, for members not promoted out of it
        self.promoted: set[int] = set()

    def add(self, cid: int, score: float) -> None:
        self.score[cid] = score
        bisect.insort(self.ranked, (-score, cid))
        if cid not in self.promoted:
            bisect.insort(self.waiting, (-score, cid))

    def mark_promoted(self, cid: int) -> None:
        if cid in self.promoted:
            return
        self.promoted.add(cid)
        if cid in self.score:
            entry = (-self.score[cid], cid)
            del self.waiting[bisect.bisect_left(self.waiting, entry)]

    def promotable(self, reduction: int) -> int | None:
        """The best member not promoted yet, if it is in the rung's top 1/reduction."""
        if not self.waiting:
            return None
        best = self.waiting[0]
        return best[1] if bisect.bisect_left(self.ranked, best) < len(self.ranked) // reduction else None

    def best_share(self, reduction: int) -> list[int]:
        return [cid for _, cid in self.ranked[:len(self.ranked) // reduction]]


class SuccessiveHalving:
    def __init__(self, space: SearchSpace, seed: int = 0, min_epochs: int = 1, reduction: int = 3,
                 max_epochs: int = 9, mutate: float = 0.0, **_):
        if not 1 <= min_epochs <= max_epochs:
            raise ValueError(f"min_epochs ({min_epochs}) must be between 1 and max_epochs ({max_epochs})")
        if reduction < 2:
            raise ValueError(f"reduction ({reduction}) must be at least 2")
        if not 0.0 <= mutate <= 1.0:
            raise ValueError(f"mutate ({mutate}) must be between 0 and 1")
        self.space, self.reduction, self.mutate = space, reduction, mutate
        self.rng = np.random.default_rng(seed)
        self.rung_epochs = rung_epochs(min_epochs, reduction, max_epochs)
        self.rungs = [_Rung() for _ in self.rung_epochs]
        self.seqs: dict[int, ArchSeq] = {}
        # candidates that may still be promoted: members of a rung below the top not promoted out
        # of it (kept as they change; handed to retention as it is, never copied)
        self._needed: set[int] = set()

    @property
    def top(self) -> int:
        return len(self.rung_epochs) - 1

    def promote(self) -> Promotion | None:
        for k in range(self.top - 1, -1, -1):
            cid = self.rungs[k].promotable(self.reduction)
            if cid is not None:
                self.rungs[k].mark_promoted(cid)
                self._needed.discard(cid)   # (held by retention while the promotion runs)
                return Promotion(cid, k + 1)
        return None

    def ask(self) -> Proposal:
        if self.mutate and self.rng.random() < self.mutate:
            for k in range(self.top, -1, -1):
                share = self.rungs[k].best_share(self.reduction)
                if share:
                    parent = share[int(self.rng.integers(len(share)))]
                    return Proposal(self.space.mutate(self.seqs[parent], self.rng), parent)
        return Proposal(self.space.sample(self.rng))

    def _enter(self, cid: int, k: int, score: float) -> None:
        self.rungs[k].add(cid, score)
        if k < self.top and cid not in self.rungs[k].promoted:
            self._needed.add(cid)

    def tell(self, candidate_id: int, arch_seq: ArchSeq, score: float | None) -> None:
        if score is not None:   # a failed candidate never enters a rung
            self.seqs[candidate_id] = tuple(arch_seq)
            self._enter(candidate_id, 0, float(score))

    def tell_promotion(self, candidate_id: int, rung: int, score: float | None) -> None:
        self.rungs[rung - 1].mark_promoted(candidate_id)
        self._needed.discard(candidate_id)
        if score is not None:
            self._enter(candidate_id, rung, float(score))

    def replay_promotion(self, candidate_id: int, rung: int) -> None:
        self.rungs[rung - 1].mark_promoted(candidate_id)
        self._needed.discard(candidate_id)

    def checkpoints_needed(self) -> set[int]:
        """Every candidate that may still be promoted (a member of a rung below the top not yet
        promoted from it: as its rung fills, its top share grows), and with `mutate` the parents
        it may draw. The set is this strategy's own: read it, do not change it."""
        if not self.mutate:
            return self._needed
        return self._needed | {cid for k in range(self.top + 1) for cid in self.rungs[k].best_share(self.reduction)}


ASHA_OPTIONS = (
    Option("min_epochs", int, 1, "r: the epochs a new candidate trains (rung 0); replaces --epochs", min=1),
    Option("reduction", int, 3, "eta: the top 1/eta of a rung is promoted, to eta times the epochs", min=2),
    Option("max_epochs", int, 9, "R: the epochs of the top rung (rungs r, r*eta, ... up to R)", min=1),
    Option("mutate", float, 0.0, "share of new candidates that mutate a member of the best rung's top instead "
                                 "of a random sample (0: the paper's random sampling)", min=0.0),
)

