"""A backend that trains nothing, for measuring the scheduler (benchmarks/bench_scheduler.py).

Not offered to users: it is not an entry point of wtnas. The benchmark installs it into a
throwaway directory as its own distribution (`install(dir)`: a dist-info with a `wtnas` entry
point) and puts that directory on PYTHONPATH, so the scheduler and its spawned workers discover
it exactly as they discover a third-party plugin.

A model has the real shape sequence of its architecture (zeros, so checkpoints are real HDF5
files of the right layout and transfers really read and match them). Its score is a fixed,
deterministic function of the architecture (a random table of per-choice values, plus a small
bonus for inherited weights), so evolution has a landscape to climb and every run with the same
seed makes the same choices. With WTNAS_NULLTRAIN_MS set, an epoch sleeps that long, as a
worker waiting on its GPU would: the scheduler then has its CPU core to itself, as on a cluster.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from wtnas_cli.plugins.hookspecs import hookimpl

DIST_NAME = "wtnas_nulltrain_bench"
# seconds an epoch "takes" (WTNAS_NULLTRAIN_MS): the worker sleeps, as it would wait on a GPU
TRAIN_S = float(os.environ.get("WTNAS_NULLTRAIN_MS", "0")) / 1000


class NullModel:
    def __init__(self, arch, table: np.ndarray):
        self.specs = arch.tensor_specs()
        self.num_params = arch.num_params
        self._tensors = [np.zeros(s.shape, dtype=np.float32) for s in self.specs]
        self._base = float(np.mean([table[i, c] for i, c in enumerate(arch.arch_seq)])) if arch.arch_seq else 0.5
        self._inherited = 0

    def get_tensors(self) -> list[np.ndarray]:
        return list(self._tensors)

    def set_tensors(self, tensors: dict) -> None:
        for i, array in tensors.items():
            self._tensors[i] = np.asarray(array, dtype=np.float32)
        self._inherited = len(tensors)

    def optimizer_state(self) -> tuple[dict, list]:
        return {"kind": "null"}, []   # nothing to continue, but a promotion finds a state

    def load_optimizer_state(self, state: dict, arrays: list) -> None:
        pass

    def train_epoch(self, data, seed: int) -> float:
        if TRAIN_S:
            time.sleep(TRAIN_S)   # a GPU busy elsewhere: the worker's CPU stays free
        return 0.0

    def evaluate(self, data) -> float:
        return self._base + 0.01 * min(self._inherited, 10)


class NullBackend:
    name = "null"

    def configure(self, *, threads: int | None = None, device: str = "cpu") -> None:
        cpus = os.environ.get("WTNAS_NULLTRAIN_CPUS")
        if cpus:   # workers on their own cores, away from the scheduler's (as on a cluster node)
            os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})

    def build(self, problem, arch, seed: int) -> NullModel:
        space = problem.space
        sizes = [len(node.choices) for node in space.variable_nodes]
        table = np.random.default_rng(12345).random((len(sizes), max(sizes, default=1)))
        return NullModel(arch, table)


@hookimpl
def wtnas_register_backends(register):
    register("null", NullBackend, description="benchmark only: trains nothing (bench_scheduler.py)")


def install(directory: Path) -> Path:
    """Make this module discoverable as a `wtnas` plugin from `directory` (add it to PYTHONPATH)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "wtnas_nulltrain_bench.py").write_text(Path(__file__).read_text())
    info = directory / f"{DIST_NAME}-0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DIST_NAME}\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[wtnas]\nnulltrain = wtnas_nulltrain_bench\n")
    return directory
