"""Provider selectors: which already checkpointed candidate a new one starts from."""

from __future__ import annotations

import numpy as np

from wtnas_cli.hookspecs import hookimpl
from wtnas_cli.space import SearchSpace


class _Known:
    """Candidates that finished with a checkpoint (only those can provide weights)."""

    def __init__(self, space: SearchSpace):
        self.space = space
        self.ids: list[int] = []
        self.scores: list[float] = []
        self._seqs: list[tuple[int, ...]] = []
        self._matrix = np.zeros((0, len(space.variable_nodes)), dtype=np.int32)
        self.index: dict[int, int] = {}

    def observe(self, candidate_id: int, arch_seq, score: float | None, has_checkpoint: bool) -> None:
        if score is None or not has_checkpoint:
            return
        self.index[candidate_id] = len(self.ids)
        self.ids.append(candidate_id)
        self.scores.append(float(score))
        self._seqs.append(tuple(arch_seq))

    def forget(self, candidate_id: int) -> None:
        """Its checkpoint was deleted (`--keep needed --max-checkpoints`): never a provider again."""
        at = self.index.pop(candidate_id, None)
        if at is None:
            return
        for seq in (self.ids, self.scores, self._seqs):
            del seq[at]
        self.index = {cid: i for i, cid in enumerate(self.ids)}
        self._matrix = np.zeros((0, len(self.space.variable_nodes)), dtype=np.int32)

    def matrix(self) -> np.ndarray:
        if len(self._matrix) != len(self._seqs):
            self._matrix = np.array(self._seqs, dtype=np.int32).reshape(len(self._seqs), -1)
        return self._matrix


class ParentSelector(_Known):
    """Regularized evolution's provider: the parent (d = 1 by construction)."""

    def select(self, proposal) -> int | None:
        pid = proposal.parent_id
        return pid if pid is not None and pid in self.index else None

    def checkpoints_needed(self) -> set[int]:
        return set()   # only the strategy's parents, which the strategy keeps


class NearestSelector(_Known):
    """Smallest distance d among checkpointed candidates; ties go to the higher score, then the
    older candidate. Vectorized over all candidates: O(candidates x nodes) per selection. Any
    checkpoint may be the nearest, so it declares no `checkpoints_needed`: all are kept."""

    def select(self, proposal) -> int | None:
        if not self.ids:
            return None
        seq = np.asarray(proposal.arch_seq, dtype=np.int32)
        dist = (self.matrix() != seq).sum(axis=1)
        best = np.flatnonzero(dist == dist.min())
        scores = np.asarray(self.scores)[best]
        return self.ids[int(best[int(np.argmax(scores))])]


class NoSelector(_Known):
    """The baseline: never a provider, every candidate trains from scratch."""

    def select(self, proposal) -> int | None:
        return None

    def checkpoints_needed(self) -> set[int]:
        return set()


@hookimpl
def wtnas_register_selectors(register):
    register("parent", ParentSelector, description="the parent proposed by the strategy (evolution: d = 1)",
             options={"needs_parent": True})
    register("nearest", NearestSelector,
             description="closest checkpointed candidate by distance d, ties by score; any strategy")
    register("none", NoSelector, description="no provider: train from scratch (baseline)",
             options={"baseline": True})
