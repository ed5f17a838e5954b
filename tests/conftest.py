import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wtnas_cli.model import ops as O
from wtnas_cli.plugins.manager import load_plugins
from wtnas_cli.model.space import ConstantNode, Input, SearchSpace, VariableNode


@pytest.fixture
def plugins():
    """A fresh plugin set per test (no global state)."""
    return load_plugins()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def small_space():
    """A tiny dense space with repeated shapes, handy for transfer tests."""
    dense = (O.Identity(), O.Dense(8), O.Dense(16))
    return SearchSpace("small", inputs=(Input("x", (6,)),), nodes=(
        VariableNode("d1", dense), VariableNode("a1", (O.Activation("relu"), O.Activation("tanh"))),
        VariableNode("d2", dense), VariableNode("d3", dense),
        ConstantNode("out", O.Dense(3, activation="softmax")),
    ))


def run_cli(*args, env=None, cwd=None, timeout=300):
    """Run the real `wtnas` entry point in a subprocess."""
    full_env = dict(os.environ, **(env or {}))
    full_env.setdefault("COLUMNS", "200")
    return subprocess.run([sys.executable, "-m", "wtnas_cli", *map(str, args)], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ray_env(monkeypatch):
    """A local Ray cluster's environment: short socket paths, no dashboard or auth, and the tests
    directory on Ray workers' path (test modules that define plugins are imported there)."""
    import shutil
    import tempfile

    ray = pytest.importorskip("ray")
    short = tempfile.mkdtemp(prefix="r", dir="/tmp")  # Ray's socket paths must stay short
    monkeypatch.setenv("RAY_TMPDIR", short)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_DASHBOARD_ENABLED", "0")
    tests = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")]))
    yield ray
    if ray.is_initialized():
        ray.shutdown()
    shutil.rmtree(short, ignore_errors=True)
