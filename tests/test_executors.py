"""The ray and mpi executors on real engines: a local Ray cluster, a simulated multi-node Ray
cluster, and a real `mpiexec` with 3 ranks. Same evaluator, same store, same checks."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

import harness  # noqa: E402
from conftest import run_cli  # noqa: E402
from wtnas_cli.run.config import RunConfig  # noqa: E402
from wtnas_cli.run.job import Job  # noqa: E402
from wtnas_cli.search.scheduler import run_search  # noqa: E402
from wtnas_cli.run.store import RunStore  # noqa: E402


def _rows(run_dir):
    store = RunStore(Path(run_dir) / "wtnas.sqlite")
    try:
        return store.candidates()
    finally:
        store.close()




def test_ray_local_cluster_search(ray_env, tmp_path):
    cfg = RunConfig(executor="ray", max_evals=10, population=4, sample=2, controls=0.5, run_dir=str(tmp_path / "r"))
    summary = run_search(cfg)
    rows = _rows(cfg.run_dir)
    assert summary.ok == 10 and all(r["status"] == "ok" for r in rows)
    assert all(r["worker"].startswith("ray:") for r in rows)
    assert any(r["n_transferred"] for r in rows)
    harness.check_run(cfg.run_dir, 10)
    controls = harness.check_controls(cfg.run_dir, 0, 0.5)   # lineage-bias controls run on Ray workers too
    assert all(c["worker"].startswith("ray:") for c in controls)


def test_ray_multi_node_cluster(ray_env, tmp_path):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    try:
        ray_env.init(address=cluster.address, log_to_driver=False)
        cfg = RunConfig(executor="ray", max_evals=12, population=4, sample=2, run_dir=str(tmp_path / "r"))
        summary = run_search(cfg)
        rows = _rows(cfg.run_dir)
        assert summary.ok == 12
        nodes = {r["worker"].split(":")[1] for r in rows}
        assert len(nodes) == 2, f"tasks ran on {nodes}"
    finally:
        ray_env.shutdown()
        cluster.shutdown()


def _pids_running(title: str) -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if title in (p / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(p.name))
            except OSError:
                pass
    return pids


def test_ray_worker_killed_mid_candidate(ray_env, tmp_path):
    from wtnas_ray.executor import RayExecutor

    ex = RayExecutor(workers=1)
    ex.start()
    try:
        seq = [11, 0, 0, 5, 0, 0, 4, 0, 3, 0, 0]
        ex.submit(Job(0, seq, "digits", "torch", "lcs", epochs=500, seed=0, checkpoint_path=str(tmp_path / "a.h5")))
        assert harness.wait_until(lambda: _pids_running("ray::_evaluate"), timeout=60)
        time.sleep(2)
        for pid in _pids_running("ray::_evaluate"):
            os.kill(pid, signal.SIGKILL)
        results = []
        assert harness.wait_until(lambda: results.extend(ex.poll(0.5)) or results, timeout=60)
        assert results[0].status == "failed" and "Ray task failed" in results[0].error
        ex.submit(Job(1, seq, "digits", "torch", "lcs", epochs=1, seed=0, checkpoint_path=str(tmp_path / "b.h5")))
        results = []
        assert harness.wait_until(lambda: results.extend(ex.poll(0.5)) or results, timeout=120)
        assert results[0].status == "ok"
    finally:
        ex.shutdown()


def _mpiexec(n, *args, timeout=300):
    return subprocess.run(["mpiexec", "-n", str(n), "wtnas", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, COLUMNS="160"))


@pytest.fixture
def mpi():
    pytest.importorskip("mpi4py")
    if subprocess.run(["which", "mpiexec"], capture_output=True).returncode:
        pytest.skip("no mpiexec")


def test_mpi_search_and_topk_with_3_ranks(mpi, tmp_path):
    run_dir = tmp_path / "r"
    out = _mpiexec(3, "run", "--executor", "mpi", "--max-evals", 14, "--population", 4, "--sample", 2,
                   "--controls", 0.5, "--run-dir", run_dir)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("top candidates") == 1  # only rank 0 reports
    rows = _rows(run_dir)
    assert {r["worker"].split(":")[2] for r in rows} == {"1", "2"}  # mpi:host:rank:child
    harness.check_run(run_dir, 14)
    controls = harness.check_controls(run_dir, 0, 0.5)
    assert all(c["worker"].startswith("mpi:") for c in controls) and "Inheritance lift" in out.stdout
    out = _mpiexec(3, "topk", run_dir, "--k", 3, "--max-epochs", 4, "--verify", "all")   # checks run on the ranks too
    assert out.returncode == 0, out.stderr
    store = RunStore(run_dir / "wtnas.sqlite")
    (key,) = [k for (k,) in store.db.execute("SELECT key FROM meta WHERE key LIKE 'topk_selection:%'")]
    selection = store.get_meta(key)
    assert selection["verified"] and 1 <= len(selection["topk"]) <= 3
    assert sorted(t["candidate_id"] for t in store.trained() if t["status"] == "ok") == selection["topk"]
    store.close()


def _promotion_workers(run_dir) -> list[str]:
    store = RunStore(Path(run_dir) / "wtnas.sqlite")
    try:
        return [r["worker"] for r in store.rungs() if r["rung"] > 0]
    finally:
        store.close()


def test_ray_and_mpi_run_asha_promotions(ray_env, mpi, tmp_path):
    """Promotions are ordinary jobs to an executor: successive halving on a local Ray cluster and
    on 3 MPI ranks gives finished rungs whose promotions ran on that executor's workers."""
    cfg = RunConfig(executor="ray", strategy="asha", max_evals=9, options={"asha": {"max_epochs": 3}},
                    run_dir=str(tmp_path / "ray"))
    assert run_search(cfg).promotions >= 3
    harness.check_run(cfg.run_dir, 9)
    harness.check_rungs(cfg.run_dir, [1, 3], 3)
    assert all(w.startswith("ray:") for w in _promotion_workers(cfg.run_dir))
    out = _mpiexec(3, "run", "--executor", "mpi", "--strategy", "asha", "-o", "asha.max_epochs=3", "--max-evals", 9,
                   "--run-dir", tmp_path / "mpi")
    assert out.returncode == 0, out.stderr
    harness.check_run(tmp_path / "mpi", 9)
    harness.check_rungs(tmp_path / "mpi", [1, 3], 3)
    workers = _promotion_workers(tmp_path / "mpi")
    assert len(workers) >= 3 and all(w.startswith("mpi:") for w in workers)


def test_mpi_needs_two_ranks(mpi, tmp_path):
    out = _mpiexec(1, "run", "--executor", "mpi", "--run-dir", tmp_path / "r")
    assert out.returncode == 1 and "needs at least 2 ranks" in out.stderr
    assert not (tmp_path / "r").exists()


def test_explicit_devices_without_gpus_is_refused(tmp_path):
    from wtnas_cli.util.devices import visible_gpus

    if visible_gpus():
        pytest.skip("this machine has GPUs")
    out = run_cli("run", "--devices", "0,1", "--run-dir", tmp_path / "r")
    assert out.returncode == 1 and "not visible (visible: none)" in out.stderr
    out = run_cli("run", "--devices", "auto", "--max-evals", "4", "--population", "2", "--sample", "1",
                  "--run-dir", tmp_path / "r2")
    assert out.returncode == 0, out.stderr


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def test_mpi_candidate_process_killed_mid_candidate(mpi, tmp_path):
    """The rank survives: its candidate is failed with the signal and the search goes on."""
    run_dir = tmp_path / "r"
    proc = subprocess.Popen(["mpiexec", "-n", "3", "wtnas", "run", "--executor", "mpi", "--max-evals", "4",
                             "--epochs", "40", "--population", "3", "--sample", "2", "--run-dir", str(run_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = None

    def find_victim():
        nonlocal victim
        ranks = [p for p in _pids_running("--executor") if "wtnas" in Path(f"/proc/{p}/cmdline").read_bytes().decode()]
        for rank in ranks:
            for child in _children(rank):
                if "spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace"):
                    victim = child
                    return True
        return False

    assert harness.wait_until(find_victim, timeout=60, proc=proc)
    pending = "SELECT COUNT(*) FROM candidates WHERE status='pending'"
    assert harness.wait_until(lambda: harness.count(run_dir / "wtnas.sqlite", pending) > 0, timeout=60)
    time.sleep(3)  # the worker started (torch imported) and is training its first candidate
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    rows = _rows(run_dir)
    assert len(rows) == 4
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 1 and "signal 9" in failed[0]["error"]
