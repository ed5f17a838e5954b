"""One scheduler per run directory (lease.py) and resumes that cannot silently change a run."""

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

import harness
from wtnas_cli.run.resolver import resume_config
from wtnas_cli.errors import ConfigError, RunDirError
from wtnas_cli.run.lease import LEASE_NAME, RunLease, read_lease


def _write_lease(run_dir, **fields):
    record = {"host": socket.gethostname(), "pid": 1, "pid_start": None, "command": "wtnas run",
              "since": time.time(), "heartbeat": time.time(), "token": "someone-else"}
    record.update(fields)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / LEASE_NAME).write_text(json.dumps(record))


def test_a_live_lease_refuses_a_second_holder_and_is_released(tmp_path):
    with RunLease(tmp_path, "wtnas run") as lease:
        assert read_lease(tmp_path)["token"] == lease.token
        with pytest.raises(RunDirError, match=r"in use by `wtnas run` on host .*, pid \d+, since"):
            RunLease(tmp_path, "wtnas topk").acquire()
    assert read_lease(tmp_path) is None
    RunLease(tmp_path, "wtnas topk").acquire().release()


def test_a_dead_holder_on_this_host_is_taken_over_at_once(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()                                  # its pid is gone (reaped)
    _write_lease(tmp_path, pid=proc.pid)
    with RunLease(tmp_path, "wtnas run") as lease:
        assert read_lease(tmp_path)["token"] == lease.token
    _write_lease(tmp_path, pid=1, pid_start="0")   # pid 1 exists but started at another time: a reused pid
    RunLease(tmp_path, "wtnas run").acquire().release()


def test_another_hosts_lease_is_taken_over_only_after_the_timeout(tmp_path, monkeypatch):
    monkeypatch.setenv("WTNAS_LEASE_TIMEOUT", "30")
    _write_lease(tmp_path, host="node-that-is-not-this-one", heartbeat=time.time() - 5)
    with pytest.raises(RunDirError, match="node-that-is-not-this-one"):
        RunLease(tmp_path, "wtnas run").acquire()
    _write_lease(tmp_path, host="node-that-is-not-this-one", heartbeat=time.time() - 31)
    RunLease(tmp_path, "wtnas run").acquire().release()
    monkeypatch.setenv("WTNAS_LEASE_TIMEOUT", "soon")
    with pytest.raises(RunDirError, match="WTNAS_LEASE_TIMEOUT"):
        RunLease(tmp_path, "wtnas run")


def test_the_holder_beats_and_notices_a_takeover(tmp_path, monkeypatch):
    monkeypatch.setenv("WTNAS_LEASE_TIMEOUT", "0.4")
    lease = RunLease(tmp_path, "wtnas run").acquire()
    try:
        first = read_lease(tmp_path)["heartbeat"]
        assert harness.wait_until(lambda: (read_lease(tmp_path) or {}).get("heartbeat", 0) > first, timeout=30)
        _write_lease(tmp_path, host="node-b", token="node-b-token")    # e.g. this node paused past the timeout
        assert harness.wait_until(lambda: lease.lost is not None, timeout=30)
        assert lease.lost["host"] == "node-b"
    finally:
        lease.release()
    assert read_lease(tmp_path)["token"] == "node-b-token"          # release leaves the new holder's lease alone


def test_resume_config_allows_budgets_and_refuses_what_defines_candidates():
    stored = {"problem": "digits", "matcher": "lcs", "max_evals": 20, "epochs": 1}
    cfg, changes = resume_config(stored, {"max_evals": 50, "workers": 1, "matcher": "lcs", "controls": 0.2})
    assert cfg.max_evals == 50 and changes == {}
    with pytest.raises(ConfigError, match=r"--matcher none \(the run has lcs\).*--epochs 3 \(the run has 1\).*--force-change"):
        resume_config(stored, {"matcher": "none", "epochs": 3})
    cfg, changes = resume_config(stored, {"problem": "mnist", "synthetic": True}, force=True)
    assert cfg.problem == "mnist" and changes == {"problem": ["digits", "mnist"]}    # the problem's options come with it
    assert cfg.options_of("problem", "mnist") == {"synthetic": True, "samples": 3000, "test_split": True}


@pytest.mark.slow
def test_two_schedulers_on_one_run_directory(tmp_path):
    """The issue's race: a second `wtnas run --resume` (and a `wtnas topk`) while a search runs
    get one line naming the holder and exit 1; `wtnas report` keeps working; no candidate is
    evaluated twice. The first search runs until told to stop, so nothing depends on timing."""
    run_dir = tmp_path / "r"
    proc = harness.start("run", "--max-evals", 100000, "--population", 6, "--sample", 3, "--workers", 2,
                         "--run-dir", run_dir)
    try:
        assert harness.wait_until(lambda: harness.finished(run_dir) >= 3, proc=proc), proc.communicate()
        toml_before = (run_dir / "run.toml").read_text()
        for args in (("run", "--resume", run_dir, "--max-evals", 5), ("topk", run_dir, "--k", 2)):
            out = subprocess.run([sys.executable, "-m", "wtnas_cli", *map(str, args)], capture_output=True, text=True,
                                 timeout=300)
            assert out.returncode == 1, out.stdout + out.stderr
            assert f"pid {proc.pid}" in out.stderr and "in use by `wtnas run`" in out.stderr
            assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert (run_dir / "run.toml").read_text() == toml_before
        report = subprocess.run([sys.executable, "-m", "wtnas_cli", "report", str(run_dir)], capture_output=True,
                                text=True, timeout=300)
        assert report.returncode == 0, report.stderr
    finally:
        harness.kill_group(proc, signal.SIGINT)
    con = sqlite3.connect(run_dir / "wtnas.sqlite")
    done, last_seq = con.execute("SELECT COUNT(*), MAX(finish_seq) FROM candidates "
                                 "WHERE status IN ('ok', 'failed')").fetchone()
    con.close()
    assert last_seq + 1 == done                                      # nothing was evaluated twice (seq from 0)
    assert not (run_dir / LEASE_NAME).exists()                       # Ctrl-C released the lease


def test_a_live_run_on_another_host_is_read_only_there(tmp_path, cli, monkeypatch):
    """SQLite's WAL index is shared memory: a reader on another node could see a torn store, so
    `wtnas report` refuses in one line while another host's lease is live, and reads the run
    once that lease has expired (the run ended or its node died)."""
    run_dir = tmp_path / "r"
    assert cli("run", "--max-evals", 2, "--population", 2, "--sample", 1, "--run-dir", run_dir).returncode == 0
    _write_lease(run_dir, host="node-elsewhere", pid=4242, timeout_s=120)
    out = cli("report", run_dir)
    assert out.returncode == 1 and "being written by `wtnas run` on host node-elsewhere, pid 4242" in out.stderr
    assert "can only be read on host node-elsewhere" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    _write_lease(run_dir, host="node-elsewhere", pid=4242, timeout_s=120, heartbeat=time.time() - 600)
    assert cli("report", run_dir).returncode == 0


@pytest.mark.slow
def test_resume_after_sigkill_and_forced_changes_are_segments(tmp_path, cli):
    run_dir = tmp_path / "r"
    proc = harness.start("run", "--max-evals", 100000, "--population", 4, "--sample", 2, "--workers", 2,
                         "--run-dir", run_dir)
    assert harness.wait_until(lambda: harness.finished(run_dir) >= 2, proc=proc), proc.communicate()
    harness.kill_group(proc)                                         # SIGKILL: the lease file stays behind
    assert (run_dir / LEASE_NAME).exists()
    n = harness.finished(run_dir)
    out = cli("run", "--resume", run_dir, "--max-evals", n + 2)      # same host, holder dead: taken over at once
    assert out.returncode == 0, out.stderr
    toml_before = (run_dir / "run.toml").read_text()
    refused = cli("run", "--resume", run_dir, "--max-evals", n + 4, "--matcher", "none")
    assert refused.returncode == 1 and "--matcher none (the run has lcs)" in refused.stderr
    assert (run_dir / "run.toml").read_text() == toml_before
    forced = cli("run", "--resume", run_dir, "--max-evals", n + 4, "--epochs", "2", "--force-change")
    assert forced.returncode == 0, forced.stderr
    con = sqlite3.connect(run_dir / "wtnas.sqlite")
    meta = {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM meta")}
    con.close()
    assert meta["config"]["epochs"] == 1                             # the original record is kept
    assert [s["changes"] for s in meta["segments"]] == [{"epochs": [1, 2]}]
    assert meta["segments"][0]["from_id"] == n + 2
    report = cli("report", run_dir)
    assert report.returncode == 0, report.stderr
    text = (run_dir / "report" / "report.md").read_text()
    assert f"from candidate {n + 2} on, resumed with changed settings" in text and "epochs 1 → 2" in text
