"""Real searches on the digits problem: transfer happens, the store is complete and consistent."""

import csv
import os
import signal
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

from wtnas_cli.weights.checkpoint import read_checkpoint, read_checkpoint_meta  # noqa: E402
from wtnas_cli.run.config import RunConfig  # noqa: E402
from wtnas_cli.run.job import Job  # noqa: E402
from wtnas_cli.search.scheduler import run_search  # noqa: E402
from wtnas_cli.run.store import RunStore  # noqa: E402
from wtnas_builtins.executors import LocalExecutor  # noqa: E402
from wtnas_builtins.problems.digits import digits_space  # noqa: E402


def _rows(run_dir):
    store = RunStore(Path(run_dir) / "wtnas.sqlite")
    try:
        return store.candidates(), store.events()
    finally:
        store.close()


def test_short_search_transfers_and_records_everything(tmp_path, plugins):
    cfg = RunConfig(max_evals=20, population=6, sample=3, workers=2, seed=3, matcher="lcs",
                    run_dir=str(tmp_path / "run"))
    summary = run_search(cfg, plugins=plugins)
    rows, _ = _rows(cfg.run_dir)
    assert summary.ok == 20 and len(rows) == 20 and {r["status"] for r in rows} == {"ok"}
    children = [r for r in rows if r["parent_id"] is not None]
    assert len(children) >= 10
    for r in children:
        assert r["provider_id"] == r["parent_id"] and r["distance"] == 1
        assert 0 < r["n_transferred"] <= r["n_tensors"]
        assert r["provider_id"] in {x["id"] for x in rows}
    for r in rows:
        assert 0.0 <= r["score"] <= 1.0 and r["num_params"] > 0
        assert r["train_s"] > 0 and r["ckpt_write_s"] > 0 and r["build_s"] > 0
        meta = read_checkpoint_meta(r["checkpoint"])
        assert list(meta.arch_seq) == r["arch_seq"] and meta.score == pytest.approx(r["score"])
    assert all(r["match_s"] is not None and r["ckpt_read_s"] is not None for r in children)
    with open(Path(cfg.run_dir) / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == 20
    assert (Path(cfg.run_dir) / "run.toml").read_text().count("max_evals = 20") == 1


def test_transfer_count_matches_lcs_of_the_stored_checkpoints(tmp_path, plugins):
    """What a child records as transferred is the LCS of its provider's and its own shape sequence
    (byte equality of copied tensors is checked in test_torch_backend)."""
    cfg = RunConfig(max_evals=12, population=4, sample=2, workers=1, seed=5, run_dir=str(tmp_path / "run"))
    run_search(cfg, plugins=plugins)
    rows, _ = _rows(cfg.run_dir)
    child = next(r for r in rows if r["provider_id"] is not None)
    parent = next(r for r in rows if r["id"] == child["provider_id"])
    p_meta, _ = read_checkpoint(parent["checkpoint"])
    c_meta, _ = read_checkpoint(child["checkpoint"])
    from wtnas_cli.weights.matching import match_lcs
    assert child["n_transferred"] == len(match_lcs(p_meta.shape_sequence(), c_meta.shape_sequence()))


def test_single_worker_run_is_deterministic(tmp_path, plugins):
    scores = []
    for name in ("a", "b"):
        cfg = RunConfig(max_evals=8, population=4, sample=2, workers=1, seed=11, run_dir=str(tmp_path / name))
        run_search(cfg, plugins=plugins)
        rows, _ = _rows(cfg.run_dir)
        scores.append([(r["arch_seq"], r["score"], r["provider_id"]) for r in rows])
    assert scores[0] == scores[1]


def test_baseline_never_transfers(tmp_path, plugins):
    cfg = RunConfig(max_evals=10, population=4, sample=2, workers=2, matcher="none", run_dir=str(tmp_path / "r"))
    summary = run_search(cfg, plugins=plugins)
    rows, _ = _rows(cfg.run_dir)
    assert summary.with_transfer == 0
    assert all(r["provider_id"] is None and r["n_transferred"] == 0 for r in rows)


def test_random_search_with_nearest_selector(tmp_path, plugins):
    cfg = RunConfig(max_evals=10, strategy="random", selector="auto", matcher="lp", workers=2,
                    run_dir=str(tmp_path / "r"))
    run_search(cfg, plugins=plugins)
    rows, _ = _rows(cfg.run_dir)
    space = digits_space()
    by_id = {r["id"]: r for r in rows}
    with_provider = [r for r in rows if r["provider_id"] is not None]
    assert with_provider and all(r["parent_id"] is None for r in rows)
    for r in with_provider:
        assert r["distance"] == space.distance(r["arch_seq"], by_id[r["provider_id"]]["arch_seq"])


def test_resume_continues_to_exactly_max_evals(tmp_path, plugins):
    run_dir = tmp_path / "r"
    run_search(RunConfig(max_evals=6, population=4, sample=2, workers=2, run_dir=str(run_dir)), plugins=plugins)
    # simulate an interruption: one candidate was in flight
    store = RunStore(run_dir / "wtnas.sqlite")
    store.db.execute("UPDATE candidates SET status='pending', score=NULL, finish_seq=NULL WHERE id=5")
    store.close()
    summary = run_search(resume=run_dir, plugins=plugins, overrides={"max_evals": 10})
    rows, _ = _rows(run_dir)
    assert [r["id"] for r in rows] == list(range(10))
    assert all(r["status"] == "ok" for r in rows) and summary.done == 10


def test_corrupt_provider_is_recorded_and_run_goes_on(tmp_path, plugins):
    """Damage every checkpoint as soon as it is written: children fall back to scratch."""
    from wtnas_cli.plugins.hookspecs import hookimpl
    from wtnas_cli.plugins.manager import load_plugins

    class Vandal:
        @staticmethod
        @hookimpl
        def wtnas_candidate_evaluated(run_dir, record):
            if record["checkpoint"]:
                Path(record["checkpoint"]).write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)

    cfg = RunConfig(max_evals=8, population=3, sample=2, workers=1, run_dir=str(tmp_path / "r"))
    summary = run_search(cfg, plugins=load_plugins(plugins=[Vandal]))
    rows, events = _rows(cfg.run_dir)
    assert summary.ok == 8
    fallbacks = [e for e in events if e["kind"] == "transfer_fallback"]
    assert fallbacks and all("trained from scratch" in e["message"] for e in fallbacks)
    assert all(r["n_transferred"] == 0 for r in rows)


def test_killed_worker_fails_its_candidate_and_is_replaced(tmp_path):
    ex = LocalExecutor(workers=1, threads_per_worker=1)
    ex.start()
    try:
        seq = [11, 0, 0, 5, 0, 0, 4, 0, 3, 0, 0]
        job = Job(candidate_id=0, arch_seq=seq, problem="digits", backend="torch", matcher="lcs", epochs=500,
                  seed=0, checkpoint_path=str(tmp_path / "c0.h5"))
        ex.submit(job)
        time.sleep(4)
        os.kill(ex._workers[0].process.pid, signal.SIGKILL)
        results = []
        deadline = time.time() + 30
        while not results and time.time() < deadline:
            results = ex.poll(1.0)
        assert results[0].status == "failed" and "signal 9" in results[0].error
        assert ex.replaced == 1
        job2 = Job(candidate_id=1, arch_seq=seq, problem="digits", backend="torch", matcher="lcs", epochs=1,
                   seed=0, checkpoint_path=str(tmp_path / "c1.h5"))
        ex.submit(job2)
        results = []
        deadline = time.time() + 60
        while not results and time.time() < deadline:
            results = ex.poll(1.0)
        assert results[0].status == "ok"
    finally:
        ex.shutdown()
    assert not (tmp_path / "c0.h5").exists()


def test_time_budget_stops_submitting(tmp_path, plugins):
    cfg = RunConfig(max_evals=10_000, time_budget=4, workers=2, run_dir=str(tmp_path / "r"))
    summary = run_search(cfg, plugins=plugins)
    rows, _ = _rows(cfg.run_dir)
    assert summary.stopped_by_time and 0 < summary.done == len(rows) < 10_000
    assert all(r["status"] in ("ok", "failed") for r in rows)
