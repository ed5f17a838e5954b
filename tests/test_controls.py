"""Lineage-bias controls: drawn deterministically, trained from scratch on the same executor,
stored beside their candidate (never as one), resumed, summarized as lift and tau."""

import sqlite3

import numpy as np
import pytest

pytest.importorskip("torch")

import harness  # noqa: E402
from wtnas_cli.run.config import RunConfig  # noqa: E402
from wtnas_cli.search.controls import ControlTally, control_pairs, control_stats, gets_control  # noqa: E402
from wtnas_cli.errors import ConfigError  # noqa: E402
from wtnas_cli.search.scheduler import run_search  # noqa: E402
from wtnas_cli.util.stats import kendall_tau  # noqa: E402


def test_the_draw_is_deterministic_and_has_the_asked_rate():
    draws = [gets_control(3, cid, 0.1) for cid in range(5000)]
    assert draws == [gets_control(3, cid, 0.1) for cid in range(5000)]
    assert abs(sum(draws) / 5000 - 0.1) < 0.015
    assert not any(gets_control(3, cid, 0.0) for cid in range(100))
    assert all(gets_control(3, cid, 1.0) for cid in range(100))
    with pytest.raises(ConfigError, match="controls"):
        RunConfig(controls=1.5).validate()


def test_stats_are_the_mean_lift_and_tau():
    pairs = [(0.9, 0.5), (0.8, 0.6), (0.7, 0.65), (0.95, 0.4)]
    st = control_stats(pairs)
    assert st.n == 4 and st.lift == pytest.approx(np.mean([0.4, 0.2, 0.05, 0.55]))
    assert st.tau == pytest.approx(kendall_tau([p[0] for p in pairs], [p[1] for p in pairs]))
    candidates = [{"id": 1, "status": "ok", "score": 0.9, "n_transferred": 3},
                  {"id": 2, "status": "ok", "score": 0.8, "n_transferred": 0},     # fell back: no lift to measure
                  {"id": 3, "status": "failed", "score": None, "n_transferred": 3}]
    controls = [{"candidate_id": i, "status": "ok", "score": 0.5} for i in (1, 2, 3)]
    assert control_pairs(candidates, controls) == [(0.9, 0.5)]


def test_the_live_tally_gives_the_same_lift_and_tau_as_the_full_computation():
    """The progress line reads the tally after every candidate; it must agree with control_stats
    (ties included: scores are rounded) and ignore a control seen twice (re-run on resume)."""
    rng = np.random.default_rng(4)
    pairs = [(round(float(w), 1), round(float(s), 1)) for w, s in rng.random((150, 2))]
    tally = ControlTally()
    assert tally.stats().n == 0
    for i, (w, s) in enumerate(pairs):
        tally.add(i, w, s)
        if i in (0, 1, 2, 70, 149):
            got, want = tally.stats(), control_stats(pairs[:i + 1])
            assert got.n == want.n and got.lift == pytest.approx(want.lift)
            assert got.lift_ci == pytest.approx(want.lift_ci)
            assert got.tau == pytest.approx(want.tau, nan_ok=True)
    tally.add(3, 9.0, 0.0)
    assert tally.stats().n == 150 and tally.pairs == pairs


def test_search_with_controls_and_resume(tmp_path):
    run_dir = tmp_path / "r"
    cfg = RunConfig(max_evals=14, population=4, sample=2, workers=2, controls=0.5, seed=1, run_dir=str(run_dir))
    summary = run_search(cfg)
    harness.check_run(run_dir, 14)                       # controls are not candidates: ids 0..13 only
    controls = harness.check_controls(run_dir, 1, 0.5)
    assert summary.controls.n == len([c for c in control_pairs_from(run_dir)]) > 0
    # a control in flight when the run stopped is pending; resume trains it (and the new candidates' ones)
    con = sqlite3.connect(run_dir / "wtnas.sqlite")
    con.execute("UPDATE controls SET status='pending', score=NULL WHERE candidate_id=?", (controls[0]["candidate_id"],))
    con.commit()
    con.close()
    resumed = run_search(resume=run_dir, overrides={"max_evals": 18})
    harness.check_run(run_dir, 18)
    harness.check_controls(run_dir, 1, 0.5)
    assert resumed.controls.n >= summary.controls.n


def control_pairs_from(run_dir):
    from wtnas_cli.run.store import RunStore

    store = RunStore(run_dir / "wtnas.sqlite")
    try:
        return control_pairs(store.candidates(), store.controls())
    finally:
        store.close()


def test_cli_shows_the_lift_and_the_report_its_cost(cli, tmp_path):
    out = cli("run", "--max-evals", 16, "--population", 4, "--sample", 2, "--workers", 2, "--controls", 0.5,
              "--run-dir", tmp_path / "r")
    assert out.returncode == 0, out.stderr
    assert "Inheritance lift" in out.stdout and "controls" in out.stdout
    rep = cli("report", tmp_path / "r")
    assert rep.returncode == 0, rep.stderr
    text = (tmp_path / "r" / "report" / "report.md").read_text()
    assert "## Inheritance controls" in text and "| r | " in text
