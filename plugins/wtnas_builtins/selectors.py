"""Provider selectors: which already checkpointed candidate a new one starts from."""

from __future__ import annotations

import numpy as np

from wtnas_cli.plugins.hookspecs import hookimpl
from wtnas_cli.model.space import SearchSpace


class _Known:
    """Candidates that finished with a checkpoint (only those can provide weights)."""

    def __init__(self, space: SearchSpace):
        self.space = space
        self.index: set[int] = set()

    def observe(self, candidate_id: int, arch_seq, score: float | None, has_checkpoint: bool) -> None:
        if score is not None and has_checkpoint:
            self.index.add(candidate_id)

    def forget(self, candidate_id: int) -> None:
        """Its checkpoint was deleted (`--keep needed`): never a provider again."""
        self.index.discard(candidate_id)


class _Indexed:   # not a _Known: its index maps id -> column (a dict, not _Known's set)
    """Known candidates with their arch_seqs (one row per variable node, one column per
    candidate) and scores in numpy buffers that grow by doubling, so observing a candidate costs
    O(1) and a nearest query over 100,000 of them is one vectorized comparison per node (under 1 ms)."""

    def __init__(self, space: SearchSpace):
        self.space = space
        self.ids: list[int] = []
        self.index: dict[int, int] = {}
        dtype = np.uint8 if max(space.num_choices, default=0) <= 256 else np.int32
        self._nodes = np.zeros((len(space.variable_nodes), 64), dtype=dtype)
        self._scores = np.zeros(64)

    def observe(self, candidate_id: int, arch_seq, score: float | None, has_checkpoint: bool) -> None:
        if score is None or not has_checkpoint:
            return
        n = len(self.ids)
        if n == len(self._scores):
            self._nodes = np.concatenate([self._nodes, np.zeros_like(self._nodes)], axis=1)
            self._scores = np.concatenate([self._scores, np.zeros_like(self._scores)])
        self._nodes[:, n] = arch_seq
        self._scores[n] = float(score)
        self.index[candidate_id] = n
        self.ids.append(candidate_id)

    def forget(self, candidate_id: int) -> None:
        """Its checkpoint was deleted (`--keep needed --max-checkpoints`): never a provider again."""
        at = self.index.pop(candidate_id, None)
        if at is None:
            return
        n = len(self.ids)
        self._nodes[:, at:n - 1] = self._nodes[:, at + 1:n]
        self._scores[at:n - 1] = self._scores[at + 1:n]
        del self.ids[at]
        for cid in self.ids[at:]:
            self.index[cid] -= 1

    @property
    def scores(self) -> np.ndarray:
        return self._scores[:len(self.ids)]

    def matrix(self) -> np.ndarray:
        """One row per candidate (a view)."""
        return self._nodes[:, :len(self.ids)].T

    def distances(self, arch_seq) -> np.ndarray:
        """d from `arch_seq` to every known candidate, in `ids` order."""
        n = len(self.ids)
        dist = np.zeros(n, dtype=np.int32)
        for node, choice in enumerate(arch_seq):
            dist += self._nodes[node, :n] != choice
        return dist


class ParentSelector(_Known):
    """Regularized evolution's provider: the parent (d = 1 by construction)."""

    def select(self, proposal) -> int | None:
        pid = proposal.parent_id
        return pid if pid is not None and pid in self.index else None

    def checkpoints_needed(self) -> set[int]:
        return set()   # only the strategy's parents, which the strategy keeps


class NearestSelector(_Indexed):
    """Smallest distance d among checkpointed candidates; ties go to the higher score, then the
    older candidate. Vectorized over all candidates: O(candidates x nodes) per selection. Any
    checkpoint may be the nearest, so it declares no `checkpoints_needed`: all are kept."""

    def select(self, proposal) -> int | None:
        if not self.ids:
            return None
        dist = self.distances(proposal.arch_seq)
        best = np.flatnonzero(dist == dist.min())
        return self.ids[int(best[int(np.argmax(self.scores[best]))])]


class NoSelector(_Known):
    """The baseline: never a provider, every candidate trains from scratch."""

    def select(self, proposal) -> int | None:
        return None

    def checkpoints_needed(self) -> set[int]:
        return set()


@hookimpl
def wtnas_register_selectors(register):
    register("parent", ParentSelector, description="the parent proposed by the strategy (evolution: d = 1)",
             traits={"needs_parent": True})
    register("nearest", NearestSelector,
             description="closest checkpointed candidate by distance d, ties by score; any strategy")
    register("none", NoSelector, description="no provider: train from scratch (baseline)",
             traits={"baseline": True})
