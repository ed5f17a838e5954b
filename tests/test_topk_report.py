"""search → topk → report on digits, end to end, with the numbers checked in the store."""

import json
import math
import sqlite3
import statistics
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from conftest import run_cli  # noqa: E402
from wtnas_cli.run.config import RunConfig  # noqa: E402
from wtnas_cli.errors import WtnasError  # noqa: E402
from wtnas_cli.results.comparison import comparison
from wtnas_cli.results.runs import load_runs
from wtnas_cli.results.report import write_report  # noqa: E402
from wtnas_cli.search.scheduler import run_search  # noqa: E402
from wtnas_cli.weights.checkpoint import CheckpointReader  # noqa: E402
from wtnas_cli.util.stats import early_stop_epoch  # noqa: E402
from wtnas_cli.run.store import RunStore  # noqa: E402
from wtnas_cli.results.timeline import quality_timeline, time_to_reach
from wtnas_cli.results.topk import TopKConfig, run_topk  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    out = {}
    for matcher in ("none", "lcs"):
        cfg = RunConfig(max_evals=16, population=6, sample=3, workers=2, seed=1, matcher=matcher,
                        run_dir=str(base / matcher))
        run_search(cfg)
        out[matcher] = Path(cfg.run_dir)
    return out


def _trained(run_dir):
    store = RunStore(run_dir / "wtnas.sqlite")
    try:
        return store.trained(), store.candidates(), store.events()
    finally:
        store.close()


def _kept(curve: list[float], start: float | None, min_delta: float) -> float | None:
    """What early stopping hands back: the objective of the last epoch that improved on the best
    so far (or the start, when none did)."""
    best = start
    for value in curve:
        if value - min_delta > (best if best is not None else -math.inf):
            best = value
    return best


def test_topk_early_stopping_numbers(runs):
    cfg = TopKConfig(k=3, max_epochs=8, patience=2, tau_sample=5, workers=2, verify=False, min_distance=1,
                     max_per_lineage=0, stop_reference="start")
    summary = run_topk(runs["lcs"], cfg)   # selection by score alone (tests/test_selection.py has the rest)
    trained, candidates, _ = _trained(runs["lcs"])
    assert summary.trained_now == len(trained) == summary.selected
    seen, top_scores = set(), []   # min_distance=1 keeps the best of identical arch_seqs (async runs may repeat one)
    for c in sorted((c for c in candidates if c["status"] == "ok"), key=lambda c: -c["score"]):
        if tuple(c["arch_seq"]) not in seen and len(top_scores) < 3:
            seen.add(tuple(c["arch_seq"]))
            top_scores.append(c["score"])
    assert sorted((t["estimated_score"] for t in trained if t["in_topk"]), reverse=True) == top_scores
    assert sum(t["in_tau_sample"] for t in trained) == 5
    for t in trained:
        assert t["status"] == "ok" and t["warm_started"] == 1
        assert 1 <= t["epochs_trained"] <= 8 and len(t["curve"]) == t["epochs_trained"]
        # the reference is the warm start's own score: its checkpoint's, i.e. the search's score
        assert t["start_score"] == pytest.approx(t["estimated_score"])
        stop = early_stop_epoch(t["curve"], 2, 0.001, t["start_score"])
        if stop is not None:
            assert t["converged"] and t["epochs_trained"] == t["epochs_to_converge"] == stop >= 2
            # its best epoch (the start when no epoch beat it), never a later, worse one
            assert t["objective_at_stop"] == t["objective_final"] == _kept(t["curve"], t["start_score"], 0.001)
        else:
            assert not t["converged"] and t["epochs_trained"] == 8
            assert t["objective_final"] == _kept(t["curve"], t["start_score"], 0.001)
        assert Path(t["checkpoint"]).is_file()
    # a second call trains nothing again
    again = run_topk(runs["lcs"], cfg)
    assert again.trained_now == 0 and again.reused == summary.selected


def test_no_early_stop_trains_max_epochs_and_records_the_stop_point(runs):
    run_topk(runs["none"], TopKConfig(k=2, max_epochs=5, early_stop=False, workers=2))
    trained, _, _ = _trained(runs["none"])
    rows = [t for t in trained if "early_stop=0" in t["settings"]]
    assert len(rows) == 2
    for t in rows:
        assert t["epochs_trained"] == 5 and t["objective_final"] == t["curve"][-1]   # nothing restored
        stop = early_stop_epoch(t["curve"], 2, 0.001, t["start_score"])
        if stop is not None:
            assert t["epochs_to_converge"] == stop and t["objective_at_stop"] == t["curve"][stop - 1]


def test_a_warm_start_that_no_epoch_improves_keeps_its_checkpoint(runs):
    """`--stop-reference start`: with a min-delta no epoch can beat, each model
    stops after `patience` epochs and keeps its starting weights (the top-K checkpoint holds the
    search checkpoint's tensors, its objective is the start). Keras' reference (`first-epoch`)
    trains patience + 1 epochs and keeps the last."""
    from wtnas_cli.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^--stop-reference must be one of start, first-epoch$"):
        TopKConfig(stop_reference="best").validate()
    common = dict(k=2, max_epochs=6, min_delta=1.0, workers=2, verify=False, min_distance=1, max_per_lineage=0)
    summary = run_topk(runs["lcs"], TopKConfig(**common, stop_reference="start"))
    assert summary.settings.endswith(",reference=start") and summary.trained_now == 2
    for t in summary.rows:
        assert t["epochs_trained"] == t["epochs_to_converge"] == 2 and t["converged"]
        assert t["objective_final"] == t["objective_at_stop"] == t["start_score"]
        assert t["start_score"] == pytest.approx(t["estimated_score"])
        with CheckpointReader(runs["lcs"] / "checkpoints" / f"c{t['candidate_id']:05d}.h5") as search, \
                CheckpointReader(t["checkpoint"]) as top:
            before, after = search.read(), top.read()
        assert before.keys() == after.keys() and all(np.array_equal(before[i], after[i]) for i in before)
    keras = run_topk(runs["lcs"], TopKConfig(**common))   # the default
    assert "reference" not in keras.settings and keras.trained_now == 2
    for t in keras.rows:   # the first epoch is the reference no later one beats: its weights are kept
        assert t["epochs_trained"] == 3 and t["objective_final"] == t["curve"][0] and t["start_score"] is None
    # from scratch the start is random weights, nothing to keep: always Keras' reference
    scratch = run_topk(runs["lcs"], TopKConfig(**common, from_scratch=True))
    assert "reference" not in scratch.settings and scratch.trained_now == 2
    for t in scratch.rows:
        assert t["epochs_trained"] == 3 and t["objective_final"] == t["curve"][0] and t["start_score"] is None
    # ...and they are the first epoch's weights, not the third's: a 1-epoch training from the same
    # seed reaches the same tensors
    one = run_topk(runs["lcs"], TopKConfig(**{**common, "max_epochs": 1}, from_scratch=True, early_stop=False))
    assert one.trained_now == 2
    by_id = {t["candidate_id"]: t for t in one.rows}
    for t in scratch.rows:
        with CheckpointReader(t["checkpoint"]) as kept, CheckpointReader(by_id[t["candidate_id"]]["checkpoint"]) as first:
            after_three, after_one = kept.read(), first.read()
        assert all(np.allclose(after_three[i], after_one[i], rtol=0, atol=1e-6) for i in after_one)
        assert t["objective_final"] == by_id[t["candidate_id"]]["objective_final"]


def test_report_end_to_end(runs):
    for run in (runs["none"], runs["lcs"]):  # trained once; reused when an earlier test already did it
        run_topk(run, TopKConfig(k=3, max_epochs=8, tau_sample=5, workers=2))
    md, plots, reports, note = write_report([runs["none"], runs["lcs"]])
    text = md.read_text()
    warm = sum(1 for c in reports[1].ok if c["n_transferred"])
    assert warm and "| none | baseline |" in text
    assert f"| lcs | lcs · parent · {warm / len(reports[1].ok):.0%} warm |" in text   # what actually happened
    assert "- lcs: matcher `lcs`: longest common subsequence of (role class, shape)" in text
    assert "- none: matcher `none`: transfer nothing" in text
    assert "Kendall tau" in text and "speed-up to the kept epoch" in text
    base_set = reports[0].trained["warm"]
    assert base_set.patience == 2
    for t, kept in zip(base_set.topk, base_set.kept_epochs):
        curve = t["curve"] if isinstance(t["curve"], list) else json.loads(t["curve"])
        if t["converged"]:   # the last epoch that beat everything before it; no later one beat it by > min-delta
            stop = t["epochs_to_converge"]
            assert t["start_score"] is None and kept >= 1   # the default reference: the first epoch
            best = curve[kept - 1]
            assert kept == stop - 2 and all(c <= best + 0.001 + 1e-9 for c in curve[kept:stop])
            assert kept == 1 or curve[kept - 1] > max(curve[:kept - 1]) + 0.001
        else:
            assert kept == t["epochs_to_converge"]
    rows = comparison(reports, "warm")
    assert "recommended model: validation / test | wall time to it |" in text
    for row, r in zip(rows, reports):   # held-out test scores, and the wall time from `wtnas run` to the model
        pick = max(r.trained["warm"].topk, key=lambda t: (t["objective_final"], -t["candidate_id"]))
        assert row["recommended_id"] == pick["candidate_id"] and row["recommended_test"] == pick["objective_test"]
        assert 0 <= row["objective_test"] <= 1 and row["time_to_model_s"] > r.search_wall_s > 0
    lcs_kept = statistics.mean(reports[1].trained["warm"].kept_epochs)   # means: a kept epoch can be 0
    if lcs_kept:
        assert rows[1]["kept_speedup_vs_baseline"] == pytest.approx(statistics.mean(base_set.kept_epochs) / lcs_kept)
    for r in reports:
        tau, n, over = r.trained["warm"].tau
        assert -1 <= tau <= 1 and n == 5 and over == "random sample"
        from scipy.stats import kendalltau

        rows = r.trained["warm"].tau_rows
        expected = kendalltau([x["estimated_score"] for x in rows], [x["objective_final"] for x in rows]).statistic
        assert tau == pytest.approx(expected)
    # best model over wall time: the search's (validation), then top-K's (test)
    for r, row in zip(reports, comparison(reports, "warm")):
        points = quality_timeline(r)
        search, topk = [p for p in points if p.phase == "search"], [p for p in points if p.phase == "topk"]
        assert all(a.value < b.value and a.t_s <= b.t_s for a, b in zip(search, search[1:]))
        assert search[-1].value == max(c["score"] for c in r.ok) and search[-1].t_s <= r.search_wall_s
        assert len(topk) == len(r.trained["warm"].topk) and all(p.split == "test" for p in topk)
        assert all(r.search_wall_s <= a.t_s <= b.t_s for a, b in zip(topk, topk[1:]))
        assert topk[-1].t_s == pytest.approx(row["time_to_model_s"]) and topk[-1].candidate_id == row["recommended_id"]
        assert topk[-1].value == row["recommended_test"]
        assert time_to_reach(points, topk[-1].value) <= topk[-1].t_s
        assert time_to_reach(points, 1.01) is None
    assert {p.name for p in plots} == {"score_over_time.png", "topk.png", "tau.png", "lineage.png",
                                       "quality_over_time.png"}
    for p in plots:
        assert p.stat().st_size > 10_000 and p.read_bytes()[:4] == b"\x89PNG"
    out = run_cli("report", runs["none"], runs["lcs"])
    assert out.returncode == 0, out.stderr
    assert "top-K (warm-started)" in out.stdout and "report.md" in out.stdout
    # at 80 columns: short run labels with a legend, one table per group, nothing cut or wrapped
    narrow = run_cli("report", runs["none"], runs["lcs"], env={"COLUMNS": "80"})
    assert narrow.returncode == 0, narrow.stderr
    lines = narrow.stdout.splitlines()
    assert f"A = {runs['none']} (baseline)" in lines and any(line.startswith(f"B = {runs['lcs']} (lcs") for line in lines)
    assert all(len(line) <= 80 for line in lines if line[:1] in "┏┃┡│└")
    for row in comparison(reports, "warm"):   # every number whole
        assert f"{row['recommended_val']:.4f} / {row['recommended_test']:.4f}" in narrow.stdout
        assert f"{row['epochs_gmean']:.2f}" in narrow.stdout


def test_topk_with_fewer_candidates_than_k_trains_what_exists(runs):
    summary = run_topk(runs["lcs"], TopKConfig(k=100, max_epochs=3, workers=2, verify=False, min_distance=1,
                                               max_per_lineage=0))
    # every distinct architecture: with 2 workers evolution may propose one arch_seq twice, and
    # min_distance=1 keeps the first of identical ones
    assert summary.selected == 16 - len(summary.choice["similar"]) == summary.choice["distinct_architectures"]
    assert any(f"only {summary.selected} eligible candidates" in n for n in summary.notes)
    diverse = run_topk(runs["lcs"], TopKConfig(k=100, max_epochs=3, workers=2))
    assert diverse.selected == 16 - len(diverse.choice["similar"]) - len(diverse.choice["flagged"])
    assert any("after the diversity rule and verification" in n for n in diverse.notes)


def test_warm_start_needs_no_matcher_plugin(runs, tmp_path):
    """A top-K model restarts from its own checkpoint through core code, not the `lcs` plugin:
    it works with the matchers plugin left out."""
    run_dir = tmp_path / "copy"
    shutil.copytree(runs["lcs"], run_dir)
    store = RunStore(run_dir / "wtnas.sqlite")
    store.db.execute("UPDATE candidates SET checkpoint = ? || '/checkpoints/c' || printf('%05d', id) || '.h5'",
                     (str(run_dir),))
    store.close()
    out = run_cli("topk", run_dir, "--k", "2", "--max-epochs", "1", "--workers", "1", "--no-verify",
                  env={"WTNAS_DISABLE_PLUGINS": "matchers"})
    assert out.returncode == 0, out.stderr
    con = sqlite3.connect(run_dir / "wtnas.sqlite")
    rows = con.execute("SELECT warm_started FROM trained WHERE mode = 'warm' AND status = 'ok'").fetchall()
    con.close()
    assert rows and all(r[0] == 1 for r in rows)


def test_missing_or_corrupt_checkpoint_retrains_from_scratch(runs, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(runs["lcs"], run_dir)
    # the copied store points at the original checkpoint paths: repoint them at the copy
    store = RunStore(run_dir / "wtnas.sqlite")
    store.db.execute("UPDATE candidates SET checkpoint = ? || '/checkpoints/c' || printf('%05d', id) || '.h5'",
                     (str(run_dir),))
    store.db.execute("DELETE FROM trained")
    best = store.candidates(status="ok", order="score")[:2]
    store.close()
    Path(best[0]["checkpoint"]).unlink()
    Path(best[1]["checkpoint"]).write_bytes(b"garbage")
    out = run_cli("topk", run_dir, "--k", "3", "--max-epochs", "3", "--workers", "2", "--no-verify",
                  "--min-distance", "1", "--max-per-lineage", "0")   # the two best by score must be among those trained
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("scratch (checkpoint") == 2
    trained, _, events = _trained(run_dir)
    flagged = {t["candidate_id"] for t in trained if not t["warm_started"]}
    assert flagged == {best[0]["id"], best[1]["id"]}
    assert all("trained from scratch" in t["note"] for t in trained if t["candidate_id"] in flagged)
    assert sum(e["kind"] == "topk_fallback" for e in events) == 2
    assert all(t["status"] == "ok" for t in trained)


def test_report_refuses_runs_of_different_problems(runs, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(runs["none"], other)
    store = RunStore(other / "wtnas.sqlite")
    cfg = store.get_meta("config")
    cfg["problem"] = "mnist"
    store.set_meta("config", cfg)
    store.close()
    with pytest.raises(WtnasError, match="different problems"):
        load_runs([runs["lcs"], other])
    out = run_cli("report", runs["lcs"], other)
    assert out.returncode == 1 and "different problems" in out.stderr


def test_topk_on_a_directory_without_a_run(tmp_path):
    out = run_cli("topk", tmp_path)
    assert out.returncode == 1 and "holds no wtnas run" in out.stderr


def test_report_describes_the_latest_topk_selection_not_the_union(tmp_path):
    from wtnas_cli.results.runs import load_run

    cfg = RunConfig(max_evals=10, population=4, sample=2, workers=2, seed=2, run_dir=str(tmp_path / "r"))
    run_search(cfg)
    by_score = dict(verify=False, min_distance=1, max_per_lineage=0)   # selection by score alone: the sets are known in advance
    run_topk(cfg.run_dir, TopKConfig(k=4, max_epochs=3, workers=2, **by_score))
    assert len(load_run(cfg.run_dir).trained["warm"].topk) == 4
    run_topk(cfg.run_dir, TopKConfig(k=2, max_epochs=3, workers=2, **by_score))   # reuses two of the four models
    top = load_run(cfg.run_dir).trained["warm"].topk
    _, candidates, _ = _trained(tmp_path / "r")
    best, seen = [], set()   # min_distance=1 keeps the first of identical arch_seqs (2 workers may repeat one)
    for c in sorted((c for c in candidates if c["status"] == "ok"), key=lambda c: (-c["score"], c["id"])):
        if tuple(c["arch_seq"]) not in seen and len(best) < 2:
            seen.add(tuple(c["arch_seq"]))
            best.append(c)
    assert len(top) == 2 and {r["candidate_id"] for r in top} == {c["id"] for c in best}
    # a call whose models were all trained before (other settings trained in between) is still the one described
    run_topk(cfg.run_dir, TopKConfig(k=1, max_epochs=4, workers=2, **by_score))
    run_topk(cfg.run_dir, TopKConfig(k=4, max_epochs=3, workers=2, **by_score))   # trains nothing
    latest = load_run(cfg.run_dir).trained["warm"]
    assert "max_epochs=3" in latest.settings and len(latest.topk) == 4


def test_a_flat_model_from_scratch_is_not_called_converged():
    from wtnas_cli.results.formatting import converged as _converged

    at_chance = {"warm_started": 0, "converged": 1, "curve": "[0.078, 0.078, 0.075]"}
    assert _converged(at_chance).startswith("flat")
    assert _converged({**at_chance, "warm_started": 1}) == "yes"      # a warm start may begin at its best
    assert _converged({**at_chance, "curve": [0.5, 0.7, 0.69]}) == "yes"
    assert _converged({**at_chance, "converged": 0, "curve": [0.5, 0.7]}) == "no (cap)"


def test_a_store_without_scheme_record_is_labelled_by_what_happened():
    """Runs stored before the scheme was recorded: baseline iff no candidate received weights,
    whatever the matcher was called (core names no plugin)."""
    from pathlib import Path

    from wtnas_cli.results.runs import RunReport

    def report(matcher, transferred):
        rows = [{"id": i, "status": "ok", "n_transferred": n} for i, n in enumerate(transferred)]
        return RunReport(Path("r"), {"matcher": matcher}, rows, [])

    assert report("my-own-matcher", [0, 0, 0]).is_baseline
    assert not report("none", [0, 3, 0]).is_baseline
    assert not RunReport(Path("r"), {"matcher": "x"}, [], [], scheme_meta={"baseline": False}).is_baseline
