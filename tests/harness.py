"""Fault-injection harness shared by tests/test_reliability.py and benchmarks/reliability.py:
real `wtnas` processes killed at chosen points, and a consistency check of what they leave."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path


def start(*args, env=None) -> subprocess.Popen:
    """A real `wtnas` process in its own session (so a kill reaches it and its workers)."""
    full_env = dict(os.environ, COLUMNS="160", **(env or {}))
    return subprocess.Popen([sys.executable, "-m", "wtnas_cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=full_env, start_new_session=True)


def count(db_path: Path, sql: str) -> int:
    if not Path(db_path).exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(sql).fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def finished(run_dir: Path) -> int:
    return count(Path(run_dir) / "wtnas.sqlite", "SELECT COUNT(*) FROM candidates WHERE status IN ('ok','failed')")


def wait_until(predicate, timeout: float = 120, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return predicate()
        time.sleep(0.05)
    return False


def kill_group(proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    proc.communicate(timeout=60)


def check_run(run_dir: Path, max_evals: int) -> dict:
    """Everything a finished run must satisfy after any number of crashes and resumes."""
    con = sqlite3.connect(Path(run_dir) / "wtnas.sqlite")
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM candidates ORDER BY id")]
    con.close()
    ids = [r["id"] for r in rows]
    assert ids == list(range(max_evals)), f"candidate ids {ids[:5]}..{ids[-5:]} ({len(ids)}), expected 0..{max_evals - 1}"
    assert all(r["status"] in ("ok", "failed") for r in rows), "a candidate is still pending"
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        if r["provider_id"] is not None:
            p = by_id.get(r["provider_id"])
            assert p is not None and p["status"] == "ok", f"candidate {r['id']}: provider {r['provider_id']} missing"
            assert p["finish_seq"] < r["finish_seq"], f"candidate {r['id']}: provider finished after it"
        if r["status"] == "ok" and r["checkpoint_deleted"]:   # --keep needed (the default) removed it
            assert r["checkpoint"] is None, f"candidate {r['id']}: deleted checkpoint still referenced"
        elif r["status"] == "ok":
            assert Path(r["checkpoint"]).is_file(), f"candidate {r['id']}: checkpoint missing"
    con = sqlite3.connect(Path(run_dir) / "wtnas.sqlite")
    promotions = [r[0] for r in con.execute("SELECT finish_seq FROM rungs WHERE rung > 0 AND status != 'pending'")]
    con.close()
    seqs = sorted([r["finish_seq"] for r in rows] + promotions)   # promotions (asha) share the sequence
    assert seqs == list(range(max_evals + len(promotions))), "finish_seq is not a permutation"
    leftovers = list(Path(run_dir).glob("checkpoints/.*.tmp-*"))
    assert not leftovers, f"partial files left: {leftovers}"
    return {"ok": sum(r["status"] == "ok" for r in rows), "failed": sum(r["status"] == "failed" for r in rows)}


def check_controls(run_dir: Path, seed: int, fraction: float) -> list[dict]:
    """Exactly the drawn candidates with a provider have a finished control (not a candidate)."""
    from wtnas_cli.search.controls import gets_control

    con = sqlite3.connect(Path(run_dir) / "wtnas.sqlite")
    con.row_factory = sqlite3.Row
    candidates = [dict(r) for r in con.execute("SELECT * FROM candidates")]
    controls = [dict(r) for r in con.execute("SELECT * FROM controls ORDER BY candidate_id")]
    con.close()
    expected = sorted(c["id"] for c in candidates if c["provider_id"] is not None and gets_control(seed, c["id"], fraction))
    assert [c["candidate_id"] for c in controls] == expected, "controls differ from the drawn candidates"
    assert expected, "no candidate drew a control: the test proves nothing"
    for c in controls:
        assert c["status"] == "ok" and 0.0 <= c["score"] <= 1.0 and c["worker"], c
    assert not list(Path(run_dir).glob("checkpoints/*.control*")), "a control wrote a checkpoint"
    return controls


def check_rungs(run_dir: Path, rung_epochs: list[int], reduction: int) -> list[dict]:
    """What a finished promoting (asha) run must satisfy after any crash and resume: no promotion
    left pending; each candidate's row, checkpoint and epochs are its highest rung's, trained
    once; the top 1/reduction of every rung below the top was promoted (asynchronous promotion
    may promote more: a candidate in a rung's top share early on). Returns the rung rows."""
    from wtnas_cli.weights.checkpoint import read_checkpoint_meta

    con = sqlite3.connect(Path(run_dir) / "wtnas.sqlite")
    con.row_factory = sqlite3.Row
    rungs = [dict(r) for r in con.execute("SELECT * FROM rungs ORDER BY candidate_id, rung")]
    candidates = {r["id"]: dict(r) for r in con.execute("SELECT * FROM candidates")}
    con.close()
    assert all(r["status"] in ("ok", "failed") for r in rungs), "a promotion is still pending"
    by_candidate: dict[int, list[dict]] = {}
    for r in rungs:
        by_candidate.setdefault(r["candidate_id"], []).append(r)
    for cid, c in candidates.items():
        if c["status"] != "ok":
            continue
        mine = by_candidate[cid]
        assert [r["rung"] for r in mine] == list(range(len(mine))), f"candidate {cid}: rungs {mine}"
        reached = max(r["rung"] for r in mine if r["status"] == "ok")
        top = mine[reached]
        assert c["rung"] == reached and c["epochs"] == rung_epochs[reached] == top["epochs"], (cid, c, top)
        assert c["score"] == top["score"], f"candidate {cid}: score is not its rung {reached} score"
        if c["checkpoint"]:
            assert read_checkpoint_meta(c["checkpoint"]).epochs == rung_epochs[reached], f"candidate {cid}: checkpoint"
    for k in range(len(rung_epochs) - 1):   # a finished run promoted every rung's final top 1/reduction
        rung = sorted((r for r in rungs if r["rung"] == k and r["status"] == "ok"),
                      key=lambda r: (-r["score"], r["candidate_id"]))
        promoted = {r["candidate_id"] for r in rungs if r["rung"] == k + 1}
        best = {r["candidate_id"] for r in rung[:len(rung) // reduction]}
        assert best <= promoted, f"rung {k}: its top 1/{reduction} {sorted(best - promoted)} was not promoted"
    return rungs
