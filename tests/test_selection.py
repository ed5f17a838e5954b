"""Verified, diverse top-K: near-copies skipped, inherited-only candidates flagged and replaced."""

import sqlite3

import pytest

from wtnas_cli.results.lineage import count_lineages, founders_and_depths
from wtnas_cli.results.selection import (families, known_checks, rerank_by_check, scratch_reference, select,
                                         stored_checks, threshold_words, verify_threshold)
from wtnas_cli.model.space import SearchSpace

distance = SearchSpace.distance


def _rows(*seqs_scores):
    return [{"id": i, "arch_seq": list(seq), "score": score, "status": "ok"} for i, (seq, score) in enumerate(seqs_scores)]


def test_near_copies_are_skipped_and_flagged_ones_replaced():
    ranked = _rows(([0, 0, 0], 0.9), ([0, 0, 1], 0.89), ([1, 1, 0], 0.88), ([2, 2, 2], 0.87), ([3, 3, 3], 0.86))
    checks = {0: 0.5, 1: 0.5, 2: 0.1, 3: 0.6, 4: 0.6}
    out = select(ranked, 3, min_distance=2, distance=distance, checks=checks, threshold=0.3)
    assert [r["id"] for r in out.selected] == [0, 3, 4]
    assert [r["id"] for r in out.similar] == [1] and [(r["id"], r["check"]) for r in out.flagged] == [(2, 0.1)]
    assert out.to_check == []
    plain = select(ranked, 3, min_distance=1, distance=distance, checks={}, threshold=None)   # today's rule
    assert [r["id"] for r in plain.selected] == [0, 1, 2]


def test_missing_checks_are_batched_up_to_k():
    ranked = _rows(([0, 0], 0.9), ([1, 1], 0.8), ([2, 2], 0.7), ([3, 3], 0.6))
    out = select(ranked, 2, min_distance=2, distance=distance, checks={0: 0.9}, threshold=0.5)
    assert [r["id"] for r in out.selected] == [0] and [r["id"] for r in out.to_check] == [1]


def test_threshold_reference_and_families():
    candidates = [{"id": i, "status": "ok", "score": s, "n_transferred": t} for i, (s, t) in
                  enumerate([(0.2, 0), (0.4, 0), (0.6, 0), (0.9, 3), (0.8, 0)])]
    controls = [{"candidate_id": 3, "status": "ok", "score": 0.3, "origin": "search"},
                {"candidate_id": 7, "status": "ok", "score": 0.0, "origin": "verify"}]
    reference = scratch_reference(candidates, controls)
    assert sorted(reference) == [0.2, 0.3, 0.4, 0.6, 0.8]          # top-K checks are not part of it
    assert verify_threshold(reference) == pytest.approx(0.3)
    assert verify_threshold(reference[:4]) is None
    assert known_checks(candidates, controls) == {0: 0.2, 1: 0.4, 2: 0.6, 4: 0.8, 3: 0.3, 7: 0.0}
    assert families(_rows(([0, 0, 0], 1), ([0, 0, 1], 1), ([0, 1, 1], 1), ([2, 2, 2], 1)), distance) == 2


def test_a_longer_check_just_above_chance_does_not_pass_when_the_quartile_is_chance():
    """digits (main70 search, seed 2): over a quarter of the run's from-scratch scores at chance
    put the quartile at 0.092, and a model whose 3-epoch check scored 0.114 passed and never
    learned (0.089 after full training). A longer check must clear chance by a quarter of the
    way to the run's best; a check at the search's own budget need not (nt3like's slow starters)."""
    reference = [0.078, 0.08, 0.09, 0.092, 0.092, 0.3, 0.6, 0.88]
    assert verify_threshold(reference, floor=0.078) == pytest.approx(0.0875)   # the quartile
    threshold = verify_threshold(reference, floor=0.078, learned=True)
    assert threshold == pytest.approx(0.078 + 0.25 * (0.88 - 0.078))
    ranked = _rows(([0, 0, 0], 0.97), ([1, 1, 1], 0.96), ([2, 2, 2], 0.95))
    choice = select(ranked, 2, min_distance=1, distance=distance, checks={0: 0.114, 1: 0.9, 2: 0.31},
                    threshold=threshold)
    assert [r["id"] for r in choice.flagged] == [0] and [r["id"] for r in choice.selected] == [1, 2]
    assert verify_threshold([0.1] * 5, floor=0.1, learned=True) == pytest.approx(0.1)   # nothing learned


def test_a_check_at_chance_never_passes_even_when_the_quartile_is_below_chance():
    """nt3like: from-scratch models that predict the minority class score below chance (0.483), the
    run's quartile falls under chance (0.5135), and a check at chance (0.5167) passed; the floor
    (the score of a constant prediction) is the bar there."""
    reference = [0.4833, 0.4833, 0.5167, 0.5167, 0.5167, 0.80, 0.85, 0.88]
    quartile = verify_threshold(reference)
    assert quartile < 0.5167
    threshold = verify_threshold(reference, floor=0.5167)
    assert threshold == pytest.approx(0.5167)
    ranked = _rows(([0, 0, 0], 0.93), ([1, 1, 1], 0.92), ([2, 2, 2], 0.91))
    choice = select(ranked, 2, min_distance=1, distance=distance, checks={0: 0.5167, 1: 0.80, 2: 0.70},
                    threshold=threshold)
    assert [r["id"] for r in choice.flagged] == [0] and [r["id"] for r in choice.selected] == [1, 2]
    assert verify_threshold(reference, floor=0.2) == pytest.approx(quartile)     # a low floor changes nothing
    words = threshold_words({"threshold": threshold, "floor": 0.5167, "reference_n": 8, "check_epochs": 1,
                             "quartile": quartile})
    assert "0.5167, the score of a model that learned nothing" in words and "1 epoch" in words
    longer = verify_threshold(reference, floor=0.5167, learned=True)
    words = threshold_words({"threshold": longer, "floor": 0.5167, "reference_n": 8, "check_epochs": 3,
                             "quartile": quartile})
    assert "a quarter of the way from a model that learned nothing (0.5167)" in words and "3 epoch" in words
    assert "lower quartile of the run's 8" in threshold_words({"threshold": 0.6, "floor": 0.1, "reference_n": 8,
                                                               "quartile": 0.6})
    assert stored_checks([{"candidate_id": 4, "status": "ok", "score": 0.7}, {"candidate_id": 5, "status": "failed",
                          "score": None}, {"candidate_id": 6, "status": "pending", "score": None}]) == {
        4: 0.7, 5: float("-inf")}


def test_constant_score_is_what_a_model_that_learned_nothing_gets(plugins):
    import numpy as np

    from wtnas_cli.model.problem import Dataset, Problem, constant_score

    digits = plugins.registry.create("problem", "digits")
    y_train, y_val = digits.data().y_train, digits.data().y_val
    majority = np.bincount(y_train).argmax()
    assert constant_score(digits) == pytest.approx(float((y_val == majority).mean()))
    space = digits.space
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = (x @ np.array([1.0, -2.0, 0.5]))[:, None]
    data = Dataset(x[:30], y[:30], x[30:], y[30:])
    r2 = Problem("reg", space, lambda: data, loss="mse", objective="r2")
    assert constant_score(r2) <= 0.0 < 1.0          # the training mean explains nothing of the validation set
    custom = Problem("odd", space, lambda: data, loss="mse", objective=lambda pred, y: float(pred["key"]))
    assert constant_score(custom) is None           # an objective that cannot score it: the quartile alone


def test_founders_follow_only_providers_that_transferred():
    rows = [{"id": 0, "provider_id": None, "n_transferred": 0}, {"id": 1, "provider_id": 0, "n_transferred": 4},
            {"id": 2, "provider_id": 1, "n_transferred": 2}, {"id": 3, "provider_id": 1, "n_transferred": 0},
            {"id": 4, "provider_id": 3, "n_transferred": 5}, {"id": 5, "provider_id": 99, "n_transferred": 1}]
    founder, depth = founders_and_depths(rows)
    assert founder == {0: 0, 1: 0, 2: 0, 3: 3, 4: 3, 5: 5}      # 3 received nothing: it founds a lineage
    assert depth == {0: 0, 1: 1, 2: 2, 3: 0, 4: 1, 5: 0}        # 5's provider is not in the run
    assert count_lineages([1, 2, 4, 5], founder) == 3
    cyc = [{"id": 0, "provider_id": 1, "n_transferred": 1}, {"id": 1, "provider_id": 0, "n_transferred": 1}]
    assert set(founders_and_depths(cyc)[0].values()) <= {0, 1}   # a corrupt cycle ends instead of looping


def test_lineage_cap_and_fill_when_the_run_has_too_few_lineages():
    ranked = _rows(([0, 0, 0], 0.9), ([1, 1, 1], 0.89), ([2, 2, 2], 0.88), ([3, 3, 3], 0.87), ([4, 4, 4], 0.86))
    founder = {0: 0, 1: 0, 2: 0, 3: 3, 4: 0}
    rules = dict(min_distance=1, distance=distance, checks={}, threshold=None, founder=founder)
    out = select(ranked, 3, max_per_lineage=2, **rules)
    assert [r["id"] for r in out.selected] == [0, 1, 3] and [r["id"] for r in out.capped] == [2]
    out = select(ranked, 4, max_per_lineage=1, **rules)           # two lineages only: filled in score order
    assert [r["id"] for r in out.selected] == [0, 3, 1, 2] and out.capped == []
    assert [r["id"] for r in select(ranked, 3, max_per_lineage=0, **rules).selected] == [0, 1, 2]


def test_min_lineages_keeps_the_other_places_for_the_best_lineage():
    """K = 5, at least 3 lineages: the best lineage takes 3 places, the best of two others the
    rest; a lineage cap would have split them 2 + 2 + 1."""
    scores = (0.99, 0.98, 0.97, 0.96, 0.95, 0.94, 0.93, 0.92)
    ranked = _rows(*(([i] * 3, s) for i, s in enumerate(scores)))
    founder = {0: 0, 1: 0, 2: 0, 3: 0, 4: 4, 5: 4, 6: 0, 7: 7}
    rules = dict(min_distance=1, distance=distance, checks={}, threshold=None, founder=founder)
    out = select(ranked, 5, min_lineages=3, **rules)
    assert [r["id"] for r in out.selected] == [0, 1, 2, 4, 7] and [r["id"] for r in out.capped] == [3, 5, 6]
    assert [r["id"] for r in select(ranked, 5, max_per_lineage=2, **rules).selected] == [0, 1, 4, 5, 7]
    founder2 = {i: 0 if i < 6 else 6 for i in range(8)}        # two lineages only: filled in score order
    out = select(ranked, 5, min_lineages=3, **{**rules, "founder": founder2})
    assert [r["id"] for r in out.selected] == [0, 1, 2, 6, 3] and out.capped == []
    flagged = select(ranked, 5, min_lineages=3, need_checks=False, **{**rules, "checks": {4: 0.1}, "threshold": 0.5})
    assert [r["id"] for r in flagged.selected] == [0, 1, 2, 5, 7]   # a flagged lineage head: its next member


def test_min_lineages_beyond_k_is_one_line():
    from wtnas_cli.errors import ConfigError
    from wtnas_cli.results.topk import TopKConfig

    with pytest.raises(ConfigError, match=r"^--min-lineages must be between 0 \(no rule\) and --k$"):
        TopKConfig(k=5, min_lineages=6).validate()
    assert TopKConfig(k=5, min_lineages=5).validate().min_lineages == 5


def test_check_ranking_needs_checks_and_orders_by_them():
    ranked = _rows(([0, 0], 0.9), ([1, 1], 0.8), ([2, 2], 0.7))
    out = select(ranked, 2, min_distance=1, distance=distance, checks={0: 0.3}, threshold=None, need_checks=True)
    assert [r["id"] for r in out.selected] == [0] and [r["id"] for r in out.to_check] == [1]
    checks = {0: 0.3, 1: float("-inf"), 2: 0.6}
    out = select(ranked, 3, min_distance=1, distance=distance, checks=checks, threshold=None, need_checks=True)
    assert [r["id"] for r in out.flagged] == [1]                   # a failed check is flagged without a threshold
    assert [r["id"] for r in rerank_by_check(out.selected, checks)] == [2, 0]


@pytest.mark.slow
def test_topk_flags_an_inherited_only_candidate_and_trains_the_next(tmp_path):
    """A real run; the best candidate's from-scratch check is recorded as failing to learn
    (score 0), as if it only worked on inherited weights: topk replaces it and says so."""
    from wtnas_cli.run.config import RunConfig
    from wtnas_cli.results.report import write_report
    from wtnas_cli.search.scheduler import run_search
    from wtnas_cli.results.topk import TopKConfig, run_topk

    run_dir = tmp_path / "r"
    run_search(RunConfig(max_evals=16, population=6, sample=3, workers=2, seed=4, run_dir=str(run_dir)))
    con = sqlite3.connect(run_dir / "wtnas.sqlite")
    best = con.execute("SELECT id FROM candidates WHERE status='ok' AND n_transferred > 0 "
                       "ORDER BY score DESC, id LIMIT 1").fetchone()[0]
    con.execute("INSERT INTO controls (candidate_id, status, score, origin) VALUES (?, 'ok', 0.0, 'verify')", (best,))
    con.commit()
    con.close()
    summary = run_topk(run_dir, TopKConfig(k=3, max_epochs=2, workers=2, verify="all"))
    choice = summary.choice
    assert choice["verified"] and [f["id"] for f in choice["flagged"]] == [best]
    top = {r["candidate_id"] for r in summary.rows if r["in_topk"]}
    assert best not in top and 1 <= len(top) <= 3
    con = sqlite3.connect(run_dir / "wtnas.sqlite")
    checked = dict(con.execute("SELECT candidate_id, score FROM controls WHERE origin='verify' AND status='ok'"))
    con.close()
    assert all(cid in checked or cid in _scratch_ids(run_dir) for cid in top), "a top-K model was not checked"
    md, _, _, _ = write_report([run_dir])
    text = md.read_text()
    assert f"candidate {best} flagged *inherited-only*" in text and "Verified:" in text
    # the default uses only the checks the run has: the recorded failure still flags the candidate, free
    known = run_topk(run_dir, TopKConfig(k=3, max_epochs=2, workers=2))
    assert known.choice["verify"] == "known" and [f["id"] for f in known.choice["flagged"]] == [best]
    assert known.choice["checked_now"] == 0
    assert "Checked where the run already had a from-scratch score" in write_report([run_dir])[0].read_text()


def test_longer_checks_are_stored_apart_and_leave_the_controls_alone(tmp_path):
    """--check-epochs 2 on a 1-epoch search: every top-K model gets a 2-epoch check in the checks
    table; the search's controls (lift, tau) are not overwritten, and the selection records the
    budget, the floor and each model's check."""
    from wtnas_cli.run.config import RunConfig
    from wtnas_cli.errors import ConfigError
    from wtnas_cli.results.report import write_report
    from wtnas_cli.search.scheduler import run_search
    from wtnas_cli.run.store import RunStore
    from wtnas_cli.results.topk import TopKConfig, run_topk

    run_dir = tmp_path / "r"
    run_search(RunConfig(max_evals=14, population=6, sample=3, workers=2, seed=4, controls=0.5, run_dir=str(run_dir)))
    store = RunStore(run_dir / "wtnas.sqlite")
    controls_before = store.controls()
    store.close()
    with pytest.raises(ConfigError, match="--check-epochs"):
        TopKConfig(check_epochs=2).validate()                       # the default --verify known runs no checks
    summary = run_topk(run_dir, TopKConfig(k=2, max_epochs=1, workers=2, verify="all", check_epochs=2))
    choice = summary.choice
    store = RunStore(run_dir / "wtnas.sqlite")
    checks, controls_after, floor = store.checks(), store.controls(), store.get_meta("constant_score")
    store.close()
    assert controls_after == controls_before                        # no control replaced by a longer check
    assert checks and {c["epochs"] for c in checks} == {2} and all(c["status"] == "ok" for c in checks)
    top = [r["candidate_id"] for r in summary.rows if r["in_topk"]]
    assert top and all(str(c) in choice["checks"] for c in top)
    assert set(choice["checks"]) <= {str(c["candidate_id"]) for c in checks}
    assert choice["check_epochs"] == 2 and choice["floor"] == floor and 0 < floor < 1
    assert choice["threshold"] >= floor
    text = write_report([run_dir])[0].read_text()
    assert "checks of 2 epoch(s)" in text


def _scratch_ids(run_dir):
    con = sqlite3.connect(run_dir / "wtnas.sqlite")
    ids = {r[0] for r in con.execute("SELECT id FROM candidates WHERE status='ok' AND n_transferred = 0")}
    con.close()
    return ids


@pytest.mark.slow
def test_topk_rank_by_check_on_a_real_run(tmp_path):
    """--rank check: twice K candidates are checked from scratch and the K best checks are trained;
    the lineage count and rules are recorded with the selection and shown by the report."""
    from wtnas_cli.run.config import RunConfig
    from wtnas_cli.results.report import write_report
    from wtnas_cli.search.scheduler import run_search
    from wtnas_cli.run.store import RunStore
    from wtnas_cli.results.topk import TopKConfig, run_topk

    run_dir = tmp_path / "r"
    run_search(RunConfig(max_evals=14, population=6, sample=3, workers=2, seed=2, run_dir=str(run_dir)))
    summary = run_topk(run_dir, TopKConfig(k=2, max_epochs=1, workers=2, rank="check", verify=False,
                                           max_per_lineage=2, min_lineages=2))
    choice = summary.choice
    assert choice["rank"] == "check" and not choice["verified"] and choice["max_per_lineage"] == 2
    assert choice["min_lineages"] == 2
    store = RunStore(run_dir / "wtnas.sqlite")
    rows, controls = store.candidates(), store.controls()
    store.close()
    checks = known_checks(rows, controls)
    top = [r["candidate_id"] for r in summary.rows if r["in_topk"]]
    assert len(top) == 2 and all(c in checks for c in top)
    pool = [r for r in rows if r["status"] == "ok" and r["id"] in checks]
    assert len(pool) >= 4, "fewer than 2K candidates were checked"
    founder, _ = founders_and_depths(rows)
    assert choice["lineages"] == count_lineages(top, founder)
    text = write_report([run_dir])[0].read_text()
    assert "Ranked by from-scratch check" in text and "Lineages (models whose inherited weights" in text
    assert "at most 2 per lineage and at least 2 lineages while the run has enough" in text
