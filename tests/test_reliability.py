"""Crash safety with real processes: SIGKILL at random points, Ctrl-C, a full disk."""

import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

import harness  # noqa: E402
from wtnas_cli.run.config import RunConfig  # noqa: E402
from wtnas_cli.plugins.hookspecs import hookimpl  # noqa: E402
from wtnas_cli.plugins.manager import load_plugins  # noqa: E402
from wtnas_cli.search.scheduler import run_search  # noqa: E402
from wtnas_builtins.strategies import EVOLUTION_OPTIONS, RegularizedEvolution  # noqa: E402

RUN = ("run", "--population", "6", "--sample", "3", "--workers", "2", "--seed", "3")


def test_sigkill_at_random_points_then_resume(tmp_path):
    run_dir, total = tmp_path / "run", 24
    points = sorted(random.Random(7).sample(range(2, total - 2), 3))
    proc = harness.start(*RUN, "--max-evals", total, "--run-dir", run_dir)
    for point in points:
        assert harness.wait_until(lambda: harness.finished(run_dir) >= point, proc=proc), proc.communicate()
        harness.kill_group(proc)
        proc = harness.start("run", "--resume", run_dir)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    facts = harness.check_run(run_dir, total)
    assert facts["ok"] == total


def test_killed_scheduler_takes_its_workers_down(tmp_path):
    run_dir = tmp_path / "run"
    proc = harness.start(*RUN, "--max-evals", 200, "--run-dir", run_dir)
    assert harness.wait_until(lambda: harness.finished(run_dir) >= 2, proc=proc)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert len(children) >= 2  # the workers (and multiprocessing's resource tracker)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)

    def gone(pid):
        try:
            return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] in ("Z", "X")
        except (FileNotFoundError, IndexError):
            return True

    assert harness.wait_until(lambda: all(gone(p) for p in children), timeout=10), "workers outlived the scheduler"


def test_ctrl_c_once_finishes_in_flight_and_resumes(tmp_path):
    run_dir = tmp_path / "run"
    proc = harness.start(*RUN, "--max-evals", 500, "--run-dir", run_dir)
    assert harness.wait_until(lambda: harness.finished(run_dir) >= 3, proc=proc)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "finishing the" in err and f"wtnas run --resume {run_dir}" in out
    assert "stopped at once" not in err   # workers leave SIGINT to the scheduler: one Ctrl-C is one
    pending = harness.count(run_dir / "wtnas.sqlite", "SELECT COUNT(*) FROM candidates WHERE status='pending'")
    assert pending == 0
    done = harness.finished(run_dir)
    assert (run_dir / "results.csv").read_text().count("\n") == done + 1
    resumed = subprocess.run(["wtnas", "run", "--resume", run_dir, "--max-evals", str(done + 4)],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed: {done} of {done + 4} candidates were done" in resumed.stderr   # it says from where
    harness.check_run(run_dir, done + 4)


def test_ctrl_c_twice_stops_at_once(tmp_path):
    run_dir = tmp_path / "run"
    proc = harness.start(*RUN, "--epochs", "30", "--max-evals", 500, "--run-dir", run_dir)
    assert harness.wait_until(lambda: harness.finished(run_dir) >= 2, proc=proc)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.3)
    t = time.time()
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.time() - t < 15, err
    assert "stopped at once" in err
    done = harness.finished(run_dir)
    resumed = subprocess.run(["wtnas", "run", "--resume", run_dir, "--max-evals", str(done + 3), "--epochs", "1",
                              "--force-change"],   # finish quickly; recorded as a segment of the run
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    harness.check_run(run_dir, done + 3)


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def test_disk_full_stops_cleanly_and_resumes(small_disk, tmp_path):
    """Deterministic: one worker and a fixed seed make the run write the same files every time,
    so the disk is sized from a reference run to hold about half of them."""
    total = 40
    args = ["wtnas", *RUN, "--workers", "1", "--max-evals", str(total)]
    reference = tmp_path / "reference"
    assert subprocess.run([*args, "--run-dir", str(reference)], capture_output=True, timeout=300).returncode == 0
    needed = _dir_bytes(reference)
    subprocess.run(["mount", "-o", f"remount,size={needed // 2 // 4096 * 4096}", str(small_disk)], check=True)
    run_dir = small_disk / "run"
    out = subprocess.run([*args, "--run-dir", str(run_dir)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, (needed, out.stdout, out.stderr)
    error_lines = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and "disk full" in error_lines[0] and "--resume" in error_lines[0]
    rows = harness.count(run_dir / "wtnas.sqlite", "SELECT COUNT(*) FROM candidates WHERE error LIKE '%space%'")
    assert rows == 0, "a disk-full write was blamed on a candidate"
    subprocess.run(["mount", "-o", "remount,size=256m", str(small_disk)], check=True)
    resumed = subprocess.run(["wtnas", "run", "--resume", str(run_dir)], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert harness.check_run(run_dir, total)["ok"] == total


class _Recording(RegularizedEvolution):
    snapshots: list = []

    def ask(self):
        _Recording.snapshots.append(list(self.population))
        return super().ask()


class _RecordingPlugin:
    @staticmethod
    @hookimpl
    def wtnas_register_strategies(register):
        register("recording-evolution", _Recording, options=EVOLUTION_OPTIONS, traits={"default_selector": "parent"})


class _InterruptAfter:
    n = 9

    @staticmethod
    @hookimpl
    def wtnas_candidate_evaluated(run_dir, record):
        _InterruptAfter.n -= 1
        if _InterruptAfter.n == 0:
            raise KeyboardInterrupt


def test_population_is_the_same_after_resume(tmp_path):
    run_dir = tmp_path / "run"
    cfg = RunConfig(strategy="recording-evolution", population=4, sample=2, workers=1, max_evals=14,
                    run_dir=str(run_dir))
    summary = run_search(cfg, plugins=load_plugins(plugins=[_RecordingPlugin, _InterruptAfter]))
    assert summary.interrupted and summary.done == 9
    con = __import__("sqlite3").connect(run_dir / "wtnas.sqlite")
    last4 = [r[0] for r in con.execute("SELECT id FROM candidates WHERE status='ok' ORDER BY finish_seq DESC LIMIT 4")]
    con.close()
    _Recording.snapshots.clear()
    run_search(resume=run_dir, plugins=load_plugins(plugins=[_RecordingPlugin]))
    population_at_resume = _Recording.snapshots[0]
    assert [m[0] for m in population_at_resume] == sorted(last4, key=last4.index)[::-1]
    harness.check_run(run_dir, 14)


def test_topk_killed_then_rerun_trains_only_the_rest(tmp_path):
    run_dir = tmp_path / "run"
    subprocess.run(["wtnas", *RUN, "--max-evals", "12", "--run-dir", str(run_dir)], check=True, capture_output=True)
    proc = harness.start("topk", run_dir, "--k", "6", "--max-epochs", "6", "--workers", "2", "--no-verify",
                         "--min-distance", "1", "--max-per-lineage", "0")
    db = run_dir / "wtnas.sqlite"
    assert harness.wait_until(lambda: harness.count(db, "SELECT COUNT(*) FROM trained WHERE status='ok'") >= 2,
                              proc=proc)
    harness.kill_group(proc)
    before = harness.count(db, "SELECT COUNT(*) FROM trained WHERE status='ok'")
    out = subprocess.run(["wtnas", "topk", str(run_dir), "--k", "6", "--max-epochs", "6", "--no-verify",
                          "--min-distance", "1", "--max-per-lineage", "0"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"{before} of 6 models already trained" in out.stderr
    assert harness.count(db, "SELECT COUNT(*) FROM trained WHERE status='ok'") == 6


def test_nothing_we_load_executes_code():
    root = Path(__file__).resolve().parents[1]
    sources = list((root / "wtnas_cli").rglob("*.py")) + list((root / "plugins").rglob("*.py"))
    banned = re.compile(r"import pickle|pickle\.load|torch\.load\(|(?<![\w.])eval\(|(?<![\w.])exec\(|yaml\.load\("
                        r"|allow_pickle=True|__import__\(|import_module\(")
    # the one import by name: a worker imports the plugin modules of the scheduler's own plugin set
    # (plugins.PluginSet, named by the scheduler process, never read from a file), as entry points do;
    # and contracts imports its own submodules lazily, by the constant names of its _SOURCES table
    allowed = {("wtnas_cli/plugins/manager.py", "import_module("), ("wtnas_cli/contracts.py", "import_module(")}
    for path in sources:
        rel = path.relative_to(root).as_posix()
        for found in banned.finditer(path.read_text()):
            assert (rel, found.group(0)) in allowed, f"{rel} uses {found.group(0)}"


def test_report_on_a_live_run_does_not_block_it(tmp_path):
    """Reports read a run that is still writing; the run goes on. The run has no budget to
    finish within the reports' time (it stops on Ctrl-C), so nothing here depends on timing."""
    run_dir = tmp_path / "run"
    proc = harness.start(*RUN, "--max-evals", 100_000, "--run-dir", run_dir)
    assert harness.wait_until(lambda: harness.finished(run_dir) >= 5, proc=proc)
    reports = [subprocess.run(["wtnas", "report", str(run_dir)], capture_output=True, text=True, timeout=120)
               for _ in range(3)]
    assert all(r.returncode == 0 for r in reports), reports[-1].stderr
    after_reports = harness.finished(run_dir)
    assert harness.wait_until(lambda: harness.finished(run_dir) >= after_reports + 3, proc=proc), "the run stalled"
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    harness.check_run(run_dir, harness.finished(run_dir))


def test_a_worker_killed_while_idle_is_replaced_not_fatal():
    """A local worker that dies between jobs (OOM killer, an admin's kill) is replaced: its next
    job goes to a fresh worker instead of failing the scheduler with a broken pipe."""
    from wtnas_builtins.executors import LocalExecutor
    from wtnas_cli.run.job import Job

    executor = LocalExecutor(workers=2)
    executor.start()
    try:
        for w in executor._workers:
            os.kill(w.process.pid, signal.SIGKILL)
            w.process.join(timeout=10)
        jobs = [Job(i, [0], "no-such-problem", "torch", "lcs", 1, 0, f"/nonexistent/{i}.h5") for i in range(4)]
        results = []
        for job in jobs[:2]:
            executor.submit(job)
        while len(results) < 2:
            results += executor.poll(timeout=30)
        for job in jobs[2:]:
            executor.submit(job)
        while len(results) < 4:
            results += executor.poll(timeout=30)
    finally:
        executor.shutdown()
    assert executor.replaced == 2
    assert sorted(r.candidate_id for r in results) == [0, 1, 2, 3]
    assert all(r.status == "failed" and "no-such-problem" in r.error for r in results)   # run by a live worker
