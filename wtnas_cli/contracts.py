"""The contracts a plugin implements, in one module: `from wtnas_cli.contracts import ...`.

Each component kind has a typed Protocol (plugins duck-type them: nothing is subclassed, and a
type checker tells a plugin author what is missing); the hook marker `hookimpl`, the `register`
callable registration hooks receive (`Register`), the `Option`s a component declares and the
plain data exchanged with workers (`Job`, `Result`) are here too. The conformance helpers that
check a component at run time are in `wtnas_cli.testing`.

| kind      | contract                           | registered with                   |
|-----------|------------------------------------|-----------------------------------|
| backend   | `Backend` building `CandidateModel`| `wtnas_register_backends`         |
| strategy  | `Strategy` (ask/tell `Proposal`)   | `wtnas_register_strategies`       |
| selector  | `Selector`                         | `wtnas_register_selectors`        |
| matcher   | `Matcher` (or `SpecMatcher`)       | `wtnas_register_matchers`         |
| executor  | `Executor` (`ServingExecutor`)     | `wtnas_register_executors`        |
| problem   | `Problem` (a dataclass to fill in) | `wtnas_register_problems`         |
| format    | `Exporter`                         | `wtnas_register_export_formats`   |
"""

from __future__ import annotations

from typing import Hashable, Iterable, Protocol, Sequence

from .backend import Backend, CandidateModel, Exporter
from .executor import Executor, ServingExecutor
from .hookspecs import hookimpl
from .job import Job, Result
from .options import Option
from .problem import Dataset, Problem
from .registry import Register
from .shapes import TensorSpec
from .space import Architecture, ArchSeq, SearchSpace
from .strategy import Proposal, Selector, Strategy


class Matcher(Protocol):
    """The paper's matcher: two shape sequences (tuples) in, (provider index, receiver index)
    pairs out, increasing in both coordinates, equal shapes, each receiver tensor once. Any
    iterable of pairs is accepted (the evaluator lists it once)."""

    def __call__(self, provider: Sequence[Hashable], receiver: Sequence[Hashable]) -> Iterable[tuple[int, int]]: ...


class SpecMatcher(Protocol):
    """A matcher decorated with `wtnas_cli.matching.takes_specs`: it receives `TensorSpec` lists
    (layer, op, role, shape, trainable), so it can respect tensor roles."""

    def __call__(self, provider: Sequence[TensorSpec], receiver: Sequence[TensorSpec]) -> Iterable[tuple[int, int]]: ...


__all__ = ["Architecture", "ArchSeq", "Backend", "CandidateModel", "Dataset", "Executor", "Exporter", "Job",
           "Matcher", "Option", "Problem", "Proposal", "Register", "Result", "SearchSpace", "Selector",
           "ServingExecutor", "SpecMatcher", "Strategy", "TensorSpec", "hookimpl"]
