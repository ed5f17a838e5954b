"""Bounded disk: a checkpoint is deleted once nothing can need it (`--keep needed`, the default).

A finished candidate's checkpoint is kept while any of these may still read it:
- the strategy or the selector: each may say which candidates it can still hand out as
  providers (`checkpoints_needed()`: regularized evolution, its population; a selector that only
  follows the strategy's parents, nothing of its own). A component that does not say, like
  `nearest` which may pick any checkpoint, keeps every checkpoint, unless `--max-checkpoints N`
  caps their number: then the lowest-scoring ones go first and the selector `forget`s them;
- a job in flight whose provider it is;
- `wtnas topk`: the best `keep_top` candidates by score;
- `wtnas topk --tau-sample`: a uniform random sample of `tau_reserve` finished candidates,
  drawn as they finish (reservoir sampling with the run's seed).

Everything here follows from the finished candidates in finish order, so a resumed run rebuilds
the same state by replay. Deletion is recorded in the store before the file goes (store.py), so
after a crash a file is at worst left over, never referenced while missing; resume removes it.
The next job's worker removes the files once their marks are committed (Job.remove_checkpoints).
"""

from __future__ import annotations

import bisect
from collections import Counter
from typing import AbstractSet, Iterable

import numpy as np

KEEP_POLICIES = ("needed", "all")


def component_needs(component) -> AbstractSet[int] | None:
    """What a strategy or selector can still use as a provider; None: anything. A set it returns
    is used as it is (read, never changed): copying a large one per candidate would cost O(n)."""
    needed = getattr(component, "checkpoints_needed", None)
    if needed is None:
        return None
    ids = needed()
    return ids if isinstance(ids, (set, frozenset)) else set(ids)


class Retention:
    def __init__(self, keep: str = "needed", keep_top: int = 50, tau_reserve: int = 30, seed: int = 0,
                 max_checkpoints: int | None = None):
        self.enabled = keep == "needed"
        self.keep_top = keep_top
        self.tau_reserve = tau_reserve
        self.max_checkpoints = max_checkpoints
        self._rng = np.random.default_rng([seed, 0x7E7A])
        self.reservoir: list[int] = []
        self._reserved: set[int] = set()      # the same, as a set
        self._seen = 0
        self.kept: dict[int, float] = {}      # candidates whose checkpoint is on disk: their score
        self._ranked: list[tuple[float, int]] = []   # the same, as (-score, id), best first
        self._top: set[int] = set()           # the ids of _ranked[:keep_top], kept as it changes
        self.in_use: Counter[int] = Counter()  # providers of jobs in flight (only counts above 0)

    def observe(self, candidate_id: int, score: float | None, has_checkpoint: bool) -> None:
        """A finished candidate, in finish order (live or replayed)."""
        if score is None:
            return
        if len(self.reservoir) < self.tau_reserve:
            self.reservoir.append(candidate_id)
            self._reserved.add(candidate_id)
        elif self.tau_reserve:
            j = int(self._rng.integers(0, self._seen + 1))
            if j < self.tau_reserve:
                self._reserved.discard(self.reservoir[j])
                self.reservoir[j] = candidate_id
                self._reserved.add(candidate_id)
        self._seen += 1
        if has_checkpoint:
            self._rank(candidate_id, score)

    def _rank(self, candidate_id: int, score: float) -> None:
        self.kept[candidate_id] = score
        entry = (-score, candidate_id)
        position = bisect.bisect(self._ranked, entry)
        self._ranked.insert(position, entry)
        if position < self.keep_top:      # it enters the top; the one pushed to keep_top leaves it
            self._top.add(candidate_id)
            if len(self._ranked) > self.keep_top:
                self._top.discard(self._ranked[self.keep_top][1])

    def rescore(self, candidate_id: int, score: float) -> None:
        """A kept candidate's score changed (a promotion trained it on): rank it by the new one."""
        if candidate_id in self.kept:
            self.dropped(candidate_id)
            self._rank(candidate_id, score)

    def hold(self, provider_id: int) -> None:
        """A job in flight (or waiting to be re-queued) reads this provider."""
        self.in_use[provider_id] += 1

    def release(self, provider_id: int) -> None:
        self.in_use[provider_id] -= 1
        if self.in_use[provider_id] <= 0:
            del self.in_use[provider_id]    # the counter stays as small as the jobs in flight

    def deletable(self, components: Iterable) -> list[int]:
        """Kept checkpoints that nothing can need any more (none unless `--keep needed`). When a
        component may need any checkpoint (it declares no `checkpoints_needed`, like `nearest`),
        nothing is deleted, unless `max_checkpoints` caps the count: then the lowest-scoring
        checkpoints outside the protected ones go first (the component must `forget` them)."""
        if not self.enabled:
            return []
        components = list(components)
        open_ended = any(getattr(c, "checkpoints_needed", None) is None for c in components)
        if open_ended and (self.max_checkpoints is None or len(self.kept) <= self.max_checkpoints):
            return []    # called after every candidate: nothing below is worth computing
        needs = [component_needs(component) for component in components]
        free = self.kept.keys() - self._reserved - self._top - self.in_use.keys()   # set operations: called per candidate
        for need in needs:
            if need is not None:
                free -= need
        if not open_ended:
            return sorted(free)
        worst_first = sorted(free, key=lambda c: (self.kept[c], -c))        # among equals the oldest
        assert self.max_checkpoints is not None   # open-ended without a cap returned above
        return sorted(worst_first[:len(self.kept) - self.max_checkpoints])

    def dropped(self, candidate_id: int) -> None:
        score = self.kept.pop(candidate_id, None)
        if score is not None:
            position = bisect.bisect_left(self._ranked, (-score, candidate_id))
            del self._ranked[position]
            if position < self.keep_top:      # it left the top; the next best enters it
                self._top.discard(candidate_id)
                if len(self._ranked) >= self.keep_top:
                    self._top.add(self._ranked[self.keep_top - 1][1])
