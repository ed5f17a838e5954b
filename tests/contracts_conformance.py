"""Checked by mypy, not run by pytest: every built-in component (and the example plugin's)
satisfies its contract in `wtnas_cli.contracts`. A change that breaks a Protocol, or a
component that drifts from it, fails CI's `mypy` step (pyproject.toml [tool.mypy] files)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wtnas_builtins.executors import LocalExecutor
    from wtnas_builtins.selectors import NearestSelector, NoSelector, ParentSelector
    from wtnas_builtins.strategies import RandomSearch, RegularizedEvolution
    from wtnas_cli.contracts import (Backend, CandidateModel, Executor, Exporter, Matcher, Selector, ServingExecutor,
                                     SpecMatcher, Strategy)
    from wtnas_cli.weights.matching import (match_lcs, match_lcs_roles, match_lcs_slice, match_lp, match_lp_roles,
                                            match_none)
    from wtnas_cli.model.space import SearchSpace
    from wtnas_example import BestNearbySelector
    from wtnas_mpi.executor import MPIExecutor
    from wtnas_ray.executor import RayExecutor
    from wtnas_keras.backend import KerasBackend, KerasModel
    from wtnas_keras.exporter import KerasExporter
    from wtnas_torch.backend import TorchBackend, TorchModel
    from wtnas_torch.exporter import OnnxExporter, TorchExporter

    def conformance(space: SearchSpace) -> None:
        backends: list[Backend] = [TorchBackend(), KerasBackend("torch", "keras")]
        models: list[type[CandidateModel]] = [TorchModel, KerasModel]
        strategies: list[Strategy] = [RegularizedEvolution(space, 0), RandomSearch(space, 0)]
        selectors: list[Selector] = [ParentSelector(space), NearestSelector(space), NoSelector(space),
                                     BestNearbySelector(space)]
        shape_matchers: list[Matcher] = [match_lp, match_lcs, match_none]
        spec_matchers: list[SpecMatcher] = [match_lp_roles, match_lcs_roles, match_lcs_slice]
        exporters: list[Exporter] = [TorchExporter(), OnnxExporter(), KerasExporter()]
        executors: list[Executor] = [LocalExecutor(), RayExecutor()]
        serving: list[ServingExecutor] = [MPIExecutor()]
