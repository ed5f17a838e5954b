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
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np

KEEP_POLICIES = ("needed", "all")


def component_needs(component) -> set[int] | None:
    """What a strategy or selector can still use as a provider; None: anything."""
    needed = getattr(component, "checkpoints_needed", None)
    return None if needed is None else set(needed())


class Retention:
    def __init__(self, keep: str = "needed", keep_top: int = 50, tau_reserve: int = 30, seed: int = 0,
                 max_checkpoints: int | None = None):
        self.enabled = keep == "needed"
        self.keep_top = keep_top
        self.tau_reserve = tau_reserve
        self.max_checkpoints = max_checkpoints
        self._rng = np.random.default_rng([seed, 0x7E7A])
        self.reservoir: list[int] = []
        self._seen = 0
        self.kept: dict[int, float] = {}      # candidates whose checkpoint is on disk: their score
        self.in_use: Counter[int] = Counter()  # providers of jobs in flight

    def observe(self, candidate_id: int, score: float | None, has_checkpoint: bool) -> None:
        """A finished candidate, in finish order (live or replayed)."""
        if score is None:
            return
        if len(self.reservoir) < self.tau_reserve:
            self.reservoir.append(candidate_id)
        elif self.tau_reserve:
            j = int(self._rng.integers(0, self._seen + 1))
            if j < self.tau_reserve:
                self.reservoir[j] = candidate_id
        self._seen += 1
        if has_checkpoint:
            self.kept[candidate_id] = score

    def deletable(self, components: Iterable) -> list[int]:
        """Kept checkpoints that nothing can need any more (none unless `--keep needed`). When a
        component may need any checkpoint (it declares no `checkpoints_needed`, like `nearest`),
        nothing is deleted, unless `max_checkpoints` caps the count: then the lowest-scoring
        checkpoints outside the protected ones go first (the component must `forget` them)."""
        if not self.enabled:
            return []
        protected = set(self.reservoir) | {c for c, n in self.in_use.items() if n > 0}
        open_ended = False
        for component in components:
            needs = component_needs(component)
            if needs is None:
                open_ended = True
            else:
                protected |= needs
        top = sorted(self.kept, key=lambda c: (-self.kept[c], c))[:self.keep_top]
        protected.update(top)
        free = [c for c in self.kept if c not in protected]
        if not open_ended:
            return sorted(free)
        if self.max_checkpoints is None or len(self.kept) <= self.max_checkpoints:
            return []
        free.sort(key=lambda c: (self.kept[c], -c))        # worst first; among equals the oldest
        return sorted(free[:len(self.kept) - self.max_checkpoints])

    def dropped(self, candidate_id: int) -> None:
        self.kept.pop(candidate_id, None)
