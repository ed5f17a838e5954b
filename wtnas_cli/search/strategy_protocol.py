"""What strategy and selector plugins provide (protocols) and the proposal they exchange."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from ..model.space import ArchSeq


@dataclass(frozen=True)
class Proposal:
    """A candidate to evaluate; `parent_id` when the strategy derived it from an evaluated one."""

    arch_seq: ArchSeq
    parent_id: int | None = None


@dataclass(frozen=True)
class Promotion:
    """Train candidate `candidate_id` on, from its own checkpoint, to rung `rung` (a promoting
    strategy's `promote()`): its weights continue, nothing is transferred."""

    candidate_id: int
    rung: int


class Strategy(Protocol):
    """ask/tell. Its state must follow from the told results in order (runs resume by replay).
    The selector used when the user leaves `--selector auto` is the registration trait
    `default_selector` (e.g. `traits={"default_selector": "parent"}`). A `tell` that takes a
    `parent_id` keyword is also told the candidate's proposed parent (see `teller`)."""

    def ask(self) -> Proposal: ...

    def tell(self, candidate_id: int, arch_seq: ArchSeq, score: float | None) -> None:
        """`score` is None for a failed candidate."""


class Selector(Protocol):
    def observe(self, candidate_id: int, arch_seq: Sequence[int], score: float | None,
                has_checkpoint: bool) -> None: ...

    def select(self, proposal: Proposal) -> int | None:
        """The provider's candidate id, or None to train from scratch."""


class PromotingStrategy(Strategy, Protocol):
    """A strategy that also trains candidates on (successive halving: `asha`). The scheduler asks
    `promote()` first whenever a worker is free and only then `ask()`s for a new candidate (not
    past --max-evals; promotions go on until none is left). `rung_epochs[k]` is how many epochs
    in all a candidate at rung k has trained; new candidates train `rung_epochs[0]`. A promotion's
    result is told through `tell_promotion` (score None: it failed), and a resumed run re-issues
    the promotions left in flight after `replay_promotion`."""

    rung_epochs: Sequence[int]

    def promote(self) -> Promotion | None: ...

    def tell_promotion(self, candidate_id: int, rung: int, score: float | None) -> None: ...

    def replay_promotion(self, candidate_id: int, rung: int) -> None: ...


def promotes(strategy) -> bool:
    """Whether `strategy` is a promoting one (it has `promote`)."""
    return callable(getattr(strategy, "promote", None))


Tell = Callable[[int, ArchSeq, "float | None", "int | None"], None]


def teller(strategy: Strategy) -> Tell:
    """`strategy.tell` as the scheduler calls it: (candidate_id, arch_seq, score, parent_id).
    The parent is passed only to a `tell` that declares a `parent_id` parameter (e.g. island
    evolution, which puts a child on its parent's island), so strategies written against the
    three-argument `tell` keep working. Inspected once per run, not per candidate."""
    try:
        takes_parent = "parent_id" in inspect.signature(strategy.tell).parameters
    except (TypeError, ValueError):   # a builtin or C callable without a signature
        takes_parent = False
    if takes_parent:
        tell_parent: Callable[..., None] = strategy.tell   # the protocol's tell has no parent_id
        return lambda cid, seq, score, parent_id: tell_parent(cid, seq, score, parent_id=parent_id)
    return lambda cid, seq, score, parent_id: strategy.tell(cid, seq, score)
