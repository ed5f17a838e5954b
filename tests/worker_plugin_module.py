"""A plugin defined in a test module, not installed: a matcher, a problem and a backend that only
exist in the plugin set a test hands to the search (`fresh_plugins(worker_plugin_module)`).
Workers must rebuild that set (tests/test_worker_plugins.py); they import this module by name,
so tests/ must be on their Python path."""

from __future__ import annotations

import numpy as np

from wtnas_cli.model import ops as O
from wtnas_cli.model.data import split
from wtnas_cli.plugins.option import Option
from wtnas_cli.plugins.hookspecs import hookimpl
from wtnas_cli.weights.matching import match_lcs_roles, takes_specs
from wtnas_cli.model.problem import Problem
from wtnas_cli.model.space import ConstantNode, Input, SearchSpace, VariableNode


@takes_specs
def generator_lcs(provider, receiver):
    """Role-aware LCS, yielded pair by pair: a generator matcher (any iterable is accepted)."""
    yield from match_lcs_roles(provider, receiver)


def blobs_data(test_fraction: float = 0.0):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    x = rng.normal(0, 0.6, (300, 4)) + np.eye(3, 4)[y] * 2
    return split([x.astype(np.float32)], y.astype(np.int64), test_fraction=test_fraction)


def blobs_problem(**_) -> Problem:
    dense = (O.Identity(),) + tuple(O.Dense(u, activation="relu") for u in (8, 16))
    space = SearchSpace("blobs", (Input("x", (4,)),), (
        VariableNode("h1", dense), VariableNode("h2", dense),
        ConstantNode("out", O.Dense(3, activation="softmax")),
    ))
    return Problem("worker-blobs", space, blobs_data, batch_size=32, description="three Gaussian blobs (test module)")


def held_out_blobs_problem(permute_test: bool = False, **_) -> Problem:
    """Blobs with a test split; `permute_test` shuffles only the test labels (a test split that
    leaks into selection would change what the search and top-K choose)."""
    def load():
        data = blobs_data(test_fraction=0.2)
        if permute_test:
            data.y_test = np.random.default_rng(1).permutation(data.y_test)
        return data

    return Problem("worker-blobs-test", blobs_problem().space, load, batch_size=32,
                   description="blobs with a held-out test split (test module)")


def _backend():
    from wtnas_torch.backend import TorchBackend

    class MineBackend(TorchBackend):
        """The torch backend under another name."""

    return MineBackend()


def _oom_backend():
    """The torch backend on fake GPU ids (CUDA_VISIBLE_DEVICES, training on the CPU): every model
    built in a worker given GPU "1" runs out of device memory when it trains."""
    import os

    import torch
    from wtnas_torch.backend import TorchBackend

    def out_of_memory(data, seed):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 80 GiB total)")

    class SmallGpuBackend(TorchBackend):
        def configure(self, *, threads=None, device="cpu", precision="fp32"):
            super().configure(threads=threads, device="cpu", precision=precision)   # "cuda" on a fake GPU id

        def build(self, problem, arch, seed):
            model = super().build(problem, arch, seed)
            if os.environ.get("CUDA_VISIBLE_DEVICES") == "1":
                model.train_epoch = out_of_memory
            return model

    return SmallGpuBackend()


@hookimpl
def wtnas_register_matchers(register):
    register("worker-lcs", lambda: generator_lcs, description="generator LCS (test module)")


@hookimpl
def wtnas_register_problems(register):
    register("worker-blobs", blobs_problem, description="three Gaussian blobs (test module)")
    register("worker-blobs-test", held_out_blobs_problem, description="blobs with a test split (test module)",
             options=[Option("permute_test", bool, False, "shuffle the test labels")])


@hookimpl
def wtnas_register_backends(register):
    register("worker-torch", _backend, requires=("torch",), description="torch under another name (test module)")
    register("worker-oom-torch", _oom_backend, requires=("torch",),
             description="torch whose models on GPU 1 run out of memory (test module)")
