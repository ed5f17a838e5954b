"""Workers evaluate with exactly the scheduler's plugin set, on every executor: a matcher, a
problem and a backend that exist only in `fresh_plugins(worker_plugin_module)` (not installed)
work end to end with local workers, Ray tasks and MPI ranks. Also the executor contract's
conformance helpers (`check_executor`, `check_problem`) on the built-in components."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")

import harness  # noqa: E402
import worker_plugin_module  # noqa: E402
from wtnas_cli.errors import PluginError  # noqa: E402
from wtnas_cli.plugins.hookspecs import hookimpl  # noqa: E402
from wtnas_cli.run.job import Result  # noqa: E402
from wtnas_cli.plugins.manager import PluginSet, load_plugins, plugins_for  # noqa: E402
from wtnas_cli.testing import check_executor, check_problem, fresh_plugins, tiny_search  # noqa: E402

TESTS = str(Path(__file__).resolve().parent)
MINE = dict(problem="worker-blobs", backend="worker-torch", matcher="worker-lcs")


def _check(summary, run_dir, n=6):
    assert summary.ok == n and summary.failed == 0
    assert summary.with_transfer > 0   # the generator matcher ran in the workers and transferred
    harness.check_run(run_dir, n)


@pytest.mark.parametrize("workers", [1, 2])
def test_local_workers_use_the_schedulers_plugin_set(tmp_path, workers):
    summary = tiny_search(tmp_path / "r", plugins=fresh_plugins(worker_plugin_module), workers=workers, **MINE)
    _check(summary, tmp_path / "r")


def test_a_generator_matcher_alone_through_local_workers(tmp_path):
    """The installed problem and backend, the test module's generator matcher only."""
    summary = tiny_search(tmp_path / "r", plugins=fresh_plugins(worker_plugin_module), matcher="worker-lcs")
    _check(summary, tmp_path / "r")


def test_the_plugin_set_is_plain_data_and_rebuilt_once_per_spec(monkeypatch):
    monkeypatch.setenv("WTNAS_DISABLE_PLUGINS", "keras")
    plugins = fresh_plugins(worker_plugin_module)
    spec = plugins.spec
    assert spec.modules == ("worker_plugin_module",) and spec.disable == ("keras",) and spec.load is None
    assert PluginSet.from_dict(spec.to_dict()) == spec
    monkeypatch.setenv("WTNAS_DISABLE_PLUGINS", "")   # a worker's own environment does not change the set
    rebuilt = plugins_for(spec)
    assert rebuilt is plugins_for(PluginSet.from_dict(spec.to_dict()))
    assert "worker-lcs" in rebuilt.registry.names("matcher") and "keras" not in rebuilt.registry.names("backend")


def test_a_plugin_that_is_no_module_is_refused_when_the_search_starts(tmp_path):
    class InMemory:
        @staticmethod
        @hookimpl
        def wtnas_register_matchers(register):
            register("in-memory", lambda: worker_plugin_module.generator_lcs)

    with pytest.raises(PluginError) as err:
        tiny_search(tmp_path / "r", plugins=load_plugins(plugins=[InMemory]), matcher="in-memory")
    message = str(err.value)
    assert "\n" not in message and "'InMemory'" in message and "must be importable modules" in message
    assert not (tmp_path / "r").exists()


def test_a_module_workers_cannot_import_fails_its_candidates_in_one_line(tmp_path):
    from wtnas_cli.search.evaluator import Evaluator
    from wtnas_cli.run.job import Job

    spec = PluginSet(modules=("no_such_wtnas_plugin_module",)).to_dict()
    result = Evaluator(threads=1).run(Job(0, [0] * 11, "digits", "torch", "lcs", 1, 0, str(tmp_path / "c.h5"),
                                          plugins=spec))
    assert result.status == "failed" and "'no_such_wtnas_plugin_module' cannot be imported" in result.error




def test_ray_workers_use_the_schedulers_plugin_set(ray_env, tmp_path):
    summary = tiny_search(tmp_path / "r", plugins=fresh_plugins(worker_plugin_module), executor="ray",
                          matcher="worker-lcs", problem="worker-blobs")
    _check(summary, tmp_path / "r")


def test_mpi_ranks_use_the_schedulers_plugin_set(tmp_path):
    pytest.importorskip("mpi4py")
    if subprocess.run(["which", "mpiexec"], capture_output=True).returncode:
        pytest.skip("no mpiexec")
    script = tmp_path / "search.py"
    script.write_text(textwrap.dedent(f"""
        import worker_plugin_module
        from wtnas_cli.testing import fresh_plugins, tiny_search

        if __name__ == "__main__":   # the ranks' worker processes are spawned: they import this file
            summary = tiny_search({str(tmp_path / "r")!r}, plugins=fresh_plugins(worker_plugin_module),
                                  executor="mpi", **{MINE!r})
            if summary is not None:   # rank 0
                print("RESULT", summary.ok, summary.failed, summary.with_transfer)
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run(["mpiexec", "-n", "2", sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    (line,) = [x for x in out.stdout.splitlines() if x.startswith("RESULT")]
    ok, failed, with_transfer = map(int, line.split()[1:])
    assert ok == 6 and failed == 0 and with_transfer > 0
    harness.check_run(tmp_path / "r", 6)


# -- conformance helpers ------------------------------------------------------------------------

def test_check_executor_on_the_local_executor():
    from wtnas_builtins.executors import LocalExecutor

    check_executor(lambda: LocalExecutor(workers=2, threads_per_worker=1))


class _InProcess:
    """The smallest executor: evaluates in this process, one job at a time."""

    capacity = 1

    def __init__(self, duplicate: bool = False):
        self.duplicate = duplicate
        self.done: list[Result] = []

    def start(self):
        from wtnas_cli.search.evaluator import Evaluator

        self.evaluator = Evaluator(threads=1)

    def submit(self, job):
        self.done.append(self.evaluator.run(job))

    def poll(self, timeout):
        out, self.done = self.done + (self.done[:1] if self.duplicate else []), []
        return out

    def shutdown(self):
        pass


def test_check_executor_passes_a_minimal_executor_and_catches_a_duplicate_result():
    check_executor(_InProcess, jobs=2)
    with pytest.raises(AssertionError, match="a result for candidate 0, which is not in flight .a second result"):
        check_executor(_InProcess(duplicate=True), jobs=2)


@pytest.mark.parametrize("name, options", [("digits", {}), ("mnist", {"synthetic": True}),
                                           ("uno", {"synthetic": True})])
def test_check_problem_on_built_in_problems(plugins, name, options):
    check_problem(plugins.registry.create("problem", name, **options))


def test_check_problem_on_the_example_and_test_module_problems():
    sys.path.insert(0, str(Path(TESTS).parent / "plugins" / "wtnas-example"))
    try:
        import wtnas_example
    finally:
        sys.path.pop(0)
    check_problem(wtnas_example.spirals_problem())
    check_problem(worker_plugin_module.blobs_problem())


def test_check_problem_catches_data_that_does_not_fit_the_space():
    import numpy as np

    from wtnas_cli.model.problem import Dataset, Problem

    good = worker_plugin_module.blobs_problem()
    bad = Problem("bad", good.space, lambda: Dataset(np.zeros((10, 5), np.float32), np.zeros(10, np.int64),
                                                     np.zeros((4, 5), np.float32), np.zeros(4, np.int64)))
    with pytest.raises(AssertionError, match="input 'x' has samples of shape .5,., the space says .4,."):
        check_problem(bad)
