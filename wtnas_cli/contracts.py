"""The public surface for plugin authors, in one module: `from wtnas_cli.contracts import ...`.

Stability: every name listed in `__all__` keeps its meaning and signature within a minor version
of wtnas (0.x: a breaking change is named in CHANGELOG.md); everything else in `wtnas_cli` is
internal and may move. A plugin package needs nothing else from wtnas except `wtnas_cli.api`
(running, reading and exporting runs from Python) and `wtnas_cli.testing` (checking a component
in its tests); the built-in plugins may use internals, published ones must not.

Each component kind has a typed Protocol (plugins duck-type them: nothing is subclassed, and a
type checker tells a plugin author what is missing); the hook marker `hookimpl`, the `register`
callable registration hooks receive (`Register`), the `Option`s a component declares and the
plain data exchanged with workers (`Job`, `Result`) are here too, with what a problem or an
executor is built from: the op vocabulary (`ops`), the search-space nodes, the data helpers and
core's pool of local workers.

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

import importlib
from typing import TYPE_CHECKING, Any, Hashable, Iterable, Protocol, Sequence

if TYPE_CHECKING:   # what type checkers see; at run time each name is imported on first use (below)
    from .errors import ConfigError, WtnasError
    from .model import ops
    from .model.backend_protocol import Backend, CandidateModel, Exporter
    from .model.data import (first_existing, need, read_idx, split, synthetic_images, synthetic_options,
                             synthetic_vectors)
    from .model.problem import Dataset, Problem, as_inputs, extra_metrics, objective_value
    from .model.shapes import TensorSpec
    from .model.space import Architecture, ArchSeq, ConstantNode, Input, Layer, Node, SearchSpace, VariableNode
    from .plugins.hookspecs import hookimpl
    from .plugins.option import Option
    from .plugins.registry import Register
    from .run.job import Job, Result
    from .search.evaluator import Evaluator
    from .weights.matching import role_class, takes_specs
    from .search.executor_protocol import Executor, ServingExecutor
    from .search.strategy_protocol import Promotion, PromotingStrategy, Proposal, Selector, Strategy
    from .search.workers import WorkerPool, default_workers

# where each name lives. Imported lazily: a plugin that only needs `hookimpl` (every installed
# plugin is loaded when `wtnas --help` asks for commands) must not pay for numpy and the workers
_SOURCES = {
    ".errors": ("ConfigError", "WtnasError"),
    ".model": ("ops",),
    ".model.backend_protocol": ("Backend", "CandidateModel", "Exporter"),
    ".model.data": ("first_existing", "need", "read_idx", "split", "synthetic_images", "synthetic_options",
                    "synthetic_vectors"),
    ".model.problem": ("Dataset", "Problem", "as_inputs", "extra_metrics", "objective_value"),
    ".model.shapes": ("TensorSpec",),
    ".model.space": ("Architecture", "ArchSeq", "ConstantNode", "Input", "Layer", "Node", "SearchSpace",
                     "VariableNode"),
    ".plugins.hookspecs": ("hookimpl",),
    ".plugins.option": ("Option",),
    ".plugins.registry": ("Register",),
    ".run.job": ("Job", "Result"),
    ".search.evaluator": ("Evaluator",),
    ".search.executor_protocol": ("Executor", "ServingExecutor"),
    ".search.strategy_protocol": ("Promotion", "PromotingStrategy", "Proposal", "Selector", "Strategy"),
    ".search.workers": ("WorkerPool", "default_workers"),
    ".weights.matching": ("role_class", "takes_specs"),
}
_WHERE = {name: module for module, names in _SOURCES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    source = importlib.import_module(module, __package__)
    # a submodule (`ops`) is an attribute of its package only once something imported it
    value = getattr(source, name) if hasattr(source, name) else importlib.import_module(f"{module}.{name}", __package__)
    globals()[name] = value   # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class Matcher(Protocol):
    """The paper's matcher: two shape sequences (tuples) in, (provider index, receiver index)
    pairs out, increasing in both coordinates, equal shapes, each receiver tensor once. Any
    iterable of pairs is accepted (the evaluator lists it once)."""

    def __call__(self, provider: Sequence[Hashable], receiver: Sequence[Hashable]) -> Iterable[tuple[int, int]]: ...


class SpecMatcher(Protocol):
    """A matcher decorated with `takes_specs`: it receives `TensorSpec` lists
    (layer, op, role, shape, trainable), so it can respect tensor roles."""

    def __call__(self, provider: Sequence[TensorSpec], receiver: Sequence[TensorSpec]) -> Iterable[tuple[int, int]]: ...


__all__ = [
    # registering components
    "hookimpl", "Register", "Option",
    # the component protocols
    "Backend", "CandidateModel", "Exporter", "Executor", "ServingExecutor", "Matcher", "SpecMatcher", "Selector",
    "Strategy", "Proposal", "PromotingStrategy", "Promotion", "takes_specs", "role_class",
    # search spaces and problems
    "ops", "SearchSpace", "Node", "Input", "ConstantNode", "VariableNode", "Architecture", "ArchSeq", "Layer",
    "TensorSpec", "Problem", "Dataset", "as_inputs", "objective_value", "extra_metrics",
    # data helpers (nothing is downloaded: files come from a path the user gives)
    "split", "need", "first_existing", "read_idx", "synthetic_images", "synthetic_vectors", "synthetic_options",
    # what executors exchange and run
    "Job", "Result", "Evaluator", "WorkerPool", "default_workers",
    # errors a plugin raises (one line, naming the file or field and the fix)
    "WtnasError", "ConfigError",
]
