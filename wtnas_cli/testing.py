"""Helpers for testing wtnas plugins (ours and third-party ones).

    from wtnas_cli.testing import (fresh_plugins, check_matcher, check_backend, check_problem,
                                   check_executor, tiny_search)

Each helper raises AssertionError with a message that says what the plugin got wrong.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .plugins.manager import Plugins, default_plugins, load_plugins
from .run.config import RunConfig


def fresh_plugins(*extra: object, entry_points: bool = True) -> Plugins:
    """A new plugin manager with the installed plugins plus `extra` (no global state)."""
    return load_plugins(entry_points=entry_points, plugins=extra)


def check_matcher(match: Callable, trials: int = 200, seed: int = 0) -> None:
    """Pairs must index both sequences, increase in both coordinates, use each receiver tensor
    once and pair equal shapes (same rank for a `partial` matcher). Works for shape matchers and
    for `@takes_specs` matchers (which get sequences of weight tensors with roles)."""
    from .model.shapes import TensorSpec
    from .weights.matching import MatchError, apply_matcher

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


def check_problem(problem: Any, samples: int = 20, seed: int = 0, deterministic: bool = True) -> None:
    """The space samples architectures that validate and resolve (one output shape for all), the
    data fits the space's inputs and output, the objective is finite on sensible predictions and
    scores perfect ones above constant ones (larger is better), and loading the data twice gives
    the same arrays (every worker loads its own copy; `deterministic=False` skips that)."""
    from .errors import InvalidArchitecture
    from .model.problem import Dataset, Problem, as_inputs, objective_value
    from .model.space import SearchSpace

    assert isinstance(problem, Problem), (f"a problem factory must return wtnas_cli.contracts.Problem, "
                                          f"got {type(problem).__name__}")
    space = problem.space
    assert isinstance(space, SearchSpace), f"problem {problem.name!r}: space is {type(space).__name__}, not a SearchSpace"
    assert isinstance(problem.batch_size, int) and problem.batch_size >= 1, \
        f"batch_size {problem.batch_size!r} must be an int >= 1"
    assert problem.min_delta >= 0, f"min_delta {problem.min_delta!r} must be >= 0"
    rng = np.random.default_rng(seed)
    outputs = set()
    for _ in range(samples):
        seq = space.sample(rng)
        assert space.validate(seq) == seq, f"sample {seq} does not validate as itself"
        try:
            arch = space.resolve(seq)
        except InvalidArchitecture as exc:
            raise AssertionError(f"space {space.name!r}: sampled arch_seq {list(seq)} does not resolve: {exc}") from None
        assert arch.arch_seq == seq
        outputs.add(next(layer.output_shape for layer in arch.layers if layer.name == arch.output))
        if any(n > 1 for n in space.num_choices):
            assert space.distance(seq, space.mutate(seq, rng)) == 1, "mutate must change exactly one node"
    assert len(outputs) == 1, f"space {space.name!r}: the output shape depends on the architecture: {sorted(outputs)}"
    (out_shape,) = outputs
    data = problem.data()
    assert isinstance(data, Dataset), f"load_data must return wtnas_cli.model.problem.Dataset, got {type(data).__name__}"
    for split_name, x, y in (("train", data.x_train, data.y_train), ("val", data.x_val, data.y_val)):
        xs = as_inputs(x)
        assert len(xs) == len(space.inputs), (f"x_{split_name} has {len(xs)} inputs, the space {len(space.inputs)} "
                                              f"({[i.name for i in space.inputs]})")
        assert len(y) > 0, f"y_{split_name} is empty"
        for arr, inp in zip(xs, space.inputs):
            arr = np.asarray(arr)
            assert tuple(arr.shape[1:]) == tuple(inp.shape), (f"x_{split_name} for input {inp.name!r} has samples of "
                                                              f"shape {tuple(arr.shape[1:])}, the space says {inp.shape}")
            assert len(arr) == len(y), f"x_{split_name} has {len(arr)} samples, y_{split_name} {len(y)}"
            assert np.issubdtype(arr.dtype, np.floating) and np.isfinite(arr).all(), \
                f"x_{split_name} for input {inp.name!r} must be finite floats"
        y = np.asarray(y)
        if problem.loss == "categorical_crossentropy":
            assert np.issubdtype(y.dtype, np.integer), f"y_{split_name} must hold class indices (integers), got {y.dtype}"
            assert y.size == len(y) and 0 <= y.min() and y.max() < out_shape[-1], \
                f"y_{split_name} must be class indices in 0..{out_shape[-1] - 1} (the output layer's units)"
        else:
            assert y.size == len(y) * math.prod(out_shape), \
                f"y_{split_name} has shape {y.shape}, the output layer {out_shape} per sample"
    y = np.asarray(data.y_val)
    if problem.loss == "categorical_crossentropy":
        perfect = np.eye(out_shape[-1], dtype=np.float32)[y.reshape(-1)]
        constant = np.full_like(perfect, 1.0 / out_shape[-1])
    else:
        perfect = y.reshape((len(y), *out_shape)).astype(np.float32)
        mean = np.asarray(data.y_train, dtype=np.float32).reshape((-1, *out_shape)).mean(axis=0)
        constant = np.broadcast_to(mean, perfect.shape).copy()
    best = objective_value(problem.objective, perfect, y)
    base = objective_value(problem.objective, constant, y)
    assert best >= base, (f"objective scores perfect predictions ({best}) below constant ones ({base}): "
                          f"objectives are maximized")
    if deterministic:
        again = problem.load_data()
        for name in ("x_train", "y_train", "x_val", "y_val"):
            assert all(np.array_equal(a, b) for a, b in zip(as_inputs(getattr(data, name)), as_inputs(getattr(again, name)))), \
                f"load_data returned different {name} on a second call: every worker loads its own data, it must be the same"


def check_executor(executor: Any, *, jobs: int | None = None, plugins: Plugins | None = None,
                   problem: str = "digits", backend: str = "torch", workdir: str | Path | None = None,
                   timeout: float = 300.0) -> None:
    """Run real jobs (`problem` with `backend`, 1 epoch each) through start/submit/poll/shutdown
    as the scheduler does: `capacity` jobs in flight at once, exactly one Result per job with its
    candidate_id and role, an evaluation that raises gives a failed Result, poll with nothing in
    flight returns at once, shutdown is clean (twice too). `executor` is an executor or a
    zero-argument factory (a class, a lambda); a factory's executor must also shut down cleanly
    without having started. Jobs carry `plugins`' set, as the scheduler's do."""
    from .run.job import Job, Result
    from .search.controls import control_job
    from .search.executor_protocol import Executor

    plugins = plugins or default_plugins()
    spec = plugins.worker_spec([("problem", problem), ("backend", backend)])
    space = plugins.registry.create("problem", problem).space
    workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="wtnas-check-executor-"))
    if isinstance(executor, type) or not hasattr(executor, "submit"):
        factory = executor
        unstarted = factory()
        unstarted.shutdown()   # the search does this when it cannot take the run directory
        executor = factory()
    assert isinstance(executor, Executor), (f"{type(executor).__name__} lacks part of wtnas_cli.contracts.Executor "
                                            f"(capacity, start, submit, poll, shutdown)")
    rng = np.random.default_rng(0)
    executor.start()
    try:
        capacity = executor.capacity
        assert isinstance(capacity, int) and capacity >= 1, f"capacity after start() is {capacity!r}, not an int >= 1"
        n = jobs or capacity + 2
        todo = [Job(i, list(space.sample(rng)), problem, backend, "none", epochs=1, seed=i,
                    checkpoint_path=str(workdir / f"c{i}.h5"), plugins=spec) for i in range(n)]
        todo[1 % n] = control_job(todo[1 % n])            # role "control" must come back as such
        todo.append(Job(n, [-1], problem, backend, "none", 1, 0, str(workdir / f"c{n}.h5"), plugins=spec))  # raises
        expected = {job.candidate_id: job for job in todo}
        in_flight: dict[int, Job] = {}
        results: dict[int, Result] = {}
        deadline = time.time() + timeout
        while todo or in_flight:
            while todo and len(in_flight) < capacity:
                job = todo.pop(0)
                executor.submit(job)
                in_flight[job.candidate_id] = job
            assert time.time() < deadline, f"no result for candidates {sorted(in_flight)} within {timeout:g} s"
            for result in executor.poll(1.0):
                assert isinstance(result, Result), f"poll returned {type(result).__name__}, not wtnas_cli.run.job.Result"
                cid = result.candidate_id
                assert cid in in_flight, (f"a result for candidate {cid}, which is not in flight "
                                          f"({'a second result' if cid in results else 'never submitted'})")
                job = in_flight.pop(cid)
                assert result.role == job.role, f"candidate {cid}: result role {result.role!r}, job role {job.role!r}"
                results[cid] = result
        t = time.time()
        assert executor.poll(0.5) == [] and time.time() - t < 5, "poll with nothing in flight must return [] at once"
    finally:
        t = time.time()
        executor.shutdown()
        executor.shutdown()
    assert time.time() - t < 60, f"shutdown took {time.time() - t:.0f} s"
    bad = results.pop(n)
    assert bad.status == "failed" and bad.error, f"a job whose evaluation raises must give a failed Result, got {bad}"
    for cid, result in results.items():
        assert result.status == "ok", f"candidate {cid} failed: {result.error}"
        assert result.score is not None and math.isfinite(result.score), f"candidate {cid}: score {result.score!r}"
        if expected[cid].write_checkpoint:
            assert Path(expected[cid].checkpoint_path).is_file(), f"candidate {cid}: no checkpoint written"


def tiny_search(run_dir: str | Path, plugins: Plugins | None = None, **options: Any):
    """A few-candidate search for plugin tests; `options` are RunConfig fields."""
    from .plugins.manager import default_plugins
    from .search.scheduler import run_search

    plugins = plugins or default_plugins()
    strategy = plugins.registry.get("strategy", options.get("strategy", RunConfig.strategy))
    small = {"population": 3, "sample": 2}   # a small evolution, for the strategies that take these
    defaults = dict(max_evals=6, workers=1, **{k: v for k, v in small.items() if k in {o.name for o in strategy.options}})
    cfg = RunConfig(**{**defaults, **options, "run_dir": str(run_dir)})
    return run_search(cfg, plugins=plugins)


__all__: Sequence[str] = ["fresh_plugins", "check_matcher", "check_backend", "check_problem", "check_executor",
                          "tiny_search"]
