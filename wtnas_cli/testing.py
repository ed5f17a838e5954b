"""Helpers for testing wtnas plugins (ours and third-party ones).

    from wtnas_cli.testing import fresh_plugins, check_matcher, check_backend, tiny_search

Each helper raises AssertionError with a message that says what the plugin got wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .config import RunConfig
from .plugins import Plugins, load_plugins


def fresh_plugins(*extra: object, entry_points: bool = True) -> Plugins:
    """A new plugin manager with the installed plugins plus `extra` (no global state)."""
    return load_plugins(entry_points=entry_points, plugins=extra)


def check_matcher(match: Callable, trials: int = 200, seed: int = 0) -> None:
    """Pairs must index both sequences, increase in both coordinates, use each receiver tensor
    once and pair equal shapes (same rank for a `partial` matcher). Works for shape matchers and
    for `@takes_specs` matchers (which get sequences of weight tensors with roles)."""
    from .matching import MatchError, apply_matcher
    from .shapes import TensorSpec

    rng = np.random.default_rng(seed)
    alphabet = [TensorSpec("d", "Dense", "kernel", (16, 10)), TensorSpec("d", "Dense", "bias", (3,)),
                TensorSpec("d", "Dense", "bias", (4,)), TensorSpec("c", "Conv2D", "kernel", (3, 3, 1, 8)),
                TensorSpec("c", "Conv2D", "kernel", (3, 3, 2, 8)), TensorSpec("n", "BatchNorm", "gamma", (3,)),
                TensorSpec("n", "BatchNorm", "moving_variance", (3,), trainable=False),
                TensorSpec("x", "Custom", "kernel", (3, 3))]
    for _ in range(trials):
        a = [alphabet[i] for i in rng.integers(len(alphabet), size=rng.integers(0, 20))]
        b = [alphabet[i] for i in rng.integers(len(alphabet), size=rng.integers(0, 20))]
        try:
            pairs = apply_matcher(match, a, b)
        except MatchError as exc:
            raise AssertionError(str(exc)) from None
        for (i1, j1), (i2, j2) in zip(pairs, pairs[1:]):
            assert i1 < i2 and j1 < j2, f"pairs not increasing: {pairs}"


def check_backend(backend: Any, problem: Any, samples: int = 10, seed: int = 0) -> None:
    """Built models follow the space's canonical shape sequence and round-trip their tensors."""
    rng = np.random.default_rng(seed)
    for _ in range(samples):
        arch = problem.space.resolve(problem.space.sample(rng))
        model = backend.build(problem, arch, seed=0)
        tensors = model.get_tensors()
        assert [tuple(t.shape) for t in tensors] == arch.shape_sequence(), \
            f"backend shape sequence differs from the space's for arch_seq {list(arch.arch_seq)}"
        replaced = {i: np.full(t.shape, 0.25, dtype=np.float32) for i, t in enumerate(tensors)}
        model.set_tensors(replaced)
        assert all(np.array_equal(x, replaced[i]) for i, x in enumerate(model.get_tensors())), \
            "set_tensors/get_tensors do not round-trip"


def tiny_search(run_dir: str | Path, plugins: Plugins | None = None, **options: Any):
    """A few-candidate search for plugin tests; `options` are RunConfig fields."""
    from .search import run_search

    from .plugins import default_plugins

    plugins = plugins or default_plugins()
    strategy = plugins.registry.get("strategy", options.get("strategy", RunConfig.strategy))
    small = {"population": 3, "sample": 2}   # a small evolution, for the strategies that take these
    defaults = dict(max_evals=6, workers=1, **{k: v for k, v in small.items() if k in {o.name for o in strategy.options}})
    cfg = RunConfig(**{**defaults, **options, "run_dir": str(run_dir)})
    return run_search(cfg, plugins=plugins)


__all__: Sequence[str] = ["fresh_plugins", "check_matcher", "check_backend", "tiny_search"]
