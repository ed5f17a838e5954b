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
        self.rungs: list[dict[int, float]] = [{} for _ in self.rung_epochs]   # id -> score at that rung
        self.promoted: list[set[int]] = [set() for _ in self.rung_epochs]     # promoted out of rung k
        self.seqs: dict[int, ArchSeq] = {}

    @property
    def top(self) -> int:
        return len(self.rung_epochs) - 1

    def _best_share(self, k: int) -> list[int]:
        """The ids of rung k's top 1/reduction (at least none: floor), best first (ties: older)."""
        rung = self.rungs[k]
        n = len(rung) // self.reduction
        return sorted(rung, key=lambda c: (-rung[c], c))[:n]

    def promote(self) -> Promotion | None:
        for k in range(self.top - 1, -1, -1):
            for cid in self._best_share(k):
                if cid not in self.promoted[k]:
                    self.promoted[k].add(cid)
                    return Promotion(cid, k + 1)
        return None

    def ask(self) -> Proposal:
        if self.mutate and self.rng.random() < self.mutate:
            for k in range(self.top, -1, -1):
                share = self._best_share(k)
                if share:
                    parent = share[int(self.rng.integers(len(share)))]
                    return Proposal(self.space.mutate(self.seqs[parent], self.rng), parent)
        return Proposal(self.space.sample(self.rng))

    def tell(self, candidate_id: int, arch_seq: ArchSeq, score: float | None) -> None:
        if score is not None:   # a failed candidate never enters a rung
            self.rungs[0][candidate_id] = float(score)
            self.seqs[candidate_id] = tuple(arch_seq)

    def tell_promotion(self, candidate_id: int, rung: int, score: float | None) -> None:
        self.promoted[rung - 1].add(candidate_id)
        if score is not None:
            self.rungs[rung][candidate_id] = float(score)

    def replay_promotion(self, candidate_id: int, rung: int) -> None:
        self.promoted[rung - 1].add(candidate_id)

    def checkpoints_needed(self) -> set[int]:
        """Every candidate that may still be promoted (a member of a rung below the top not yet
        promoted from it: as its rung fills, its top share grows), and with `mutate` the parents
        it may draw."""
        needed = {cid for k in range(self.top) for cid in self.rungs[k] if cid not in self.promoted[k]}
        if self.mutate:
            needed.update(cid for k in range(self.top + 1) for cid in self._best_share(k))
        return needed


ASHA_OPTIONS = (
    Option("min_epochs", int, 1, "r: the epochs a new candidate trains (rung 0); replaces --epochs", min=1),
    Option("reduction", int, 3, "eta: the top 1/eta of a rung is promoted, to eta times the epochs", min=2),
    Option("max_epochs", int, 9, "R: the epochs of the top rung (rungs r, r*eta, ... up to R)", min=1),
    Option("mutate", float, 0.0, "share of new candidates that mutate a member of the best rung's top instead "
                                 "of a random sample (0: the paper's random sampling)", min=0.0),
)

