"""What strategy and selector plugins provide (protocols) and the proposal they exchange."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from .space import ArchSeq


@dataclass(frozen=True)
class Proposal:
    """A candidate to evaluate; `parent_id` when the strategy derived it from an evaluated one."""

    arch_seq: ArchSeq
    parent_id: int | None = None


class Strategy(Protocol):
    """ask/tell. Its state must follow from the told results in order (runs resume by replay).
    The selector used when the user leaves `--selector auto` is the registration trait
    `default_selector` (e.g. `traits={"default_selector": "parent"}`)."""

    def ask(self) -> Proposal: ...

    def tell(self, candidate_id: int, arch_seq: ArchSeq, score: float | None) -> None:
        """`score` is None for a failed candidate."""


class Selector(Protocol):
    def observe(self, candidate_id: int, arch_seq: Sequence[int], score: float | None,
                has_checkpoint: bool) -> None: ...

    def select(self, proposal: Proposal) -> int | None:
        """The provider's candidate id, or None to train from scratch."""
