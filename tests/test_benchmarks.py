"""The benchmark suite's own logic (its numbers are only as good as this): lineage depth,
the transferable-pairs experiment on real digits checkpoints, the nt3like problem, figures."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))

import bench_pairs  # noqa: E402
import figures  # noqa: E402
import nt3like  # noqa: E402
import suite  # noqa: E402
from wtnas_cli.model.problem import as_inputs  # noqa: E402


def _model(cid, founder, epochs, objective, learns=True):
    return {"id": cid, "score": 0.9 - cid / 100, "founder": founder, "depth": 1, "check": 0.5, "num_params": 100,
            "status": "ok", "epochs_to_converge": epochs, "converged": 1, "objective_final": objective,
            "wall_s": 2.0, "learns": learns}


def _trained(models, tau=(), lineages=1, verify_s=0.0):
    return {"wall_s": 1.0, "topk": list(models), "tau": list(tau), "choice": {"flagged": []}, "lineages": lineages,
            "verify_worker_s": verify_s}


def test_rankings_aggregate_counts_and_ratios():
    """bench_rankings' reading: epoch ratios against the baseline, models that do not learn from
    scratch, lineages per seed, verification's share of the top-K's training."""
    import bench_rankings

    def seed(s):
        base = [_model(i, i, 6, 0.95) for i in range(3)]
        lcs = [_model(10 + i, 10, 3, 0.90, learns=i > 0) for i in range(3)]
        tau = [_model(20 + i, 20 + i, 5, 0.5 + i / 10) for i in range(3)]
        search = {"lift": 0.2, "lift_ci": 0.05, "tau_controls": 0.5, "controls": 4, "control_cost": 0.08,
                  "mean_score_2nd_half": 0.8, "median_params": 100, "lineages": 3, "depth_mean": 1.0, "wall_s": 5.0}
        return {"seed": s, "search": {"none": search, "lcs": search}, "selections": {
            "baseline": {"warm": _trained(base, tau, 3), "scratch": _trained(base, tau, 3)},
            "lcs": {"warm": _trained(lcs, tau), "scratch": _trained(lcs, tau)},
            "lcs+verified": {"warm": _trained(lcs[1:] + base[:1], lineages=2, verify_s=3.0),
                             "scratch": _trained(lcs[1:] + base[:1], lineages=2)},
            "lcs+check": {"scratch": _trained(base)},
            # best lineage 30 (the best search score), two others at the baseline's speed
            "islands+verified+min3": {m: _trained([_model(30, 30, 3, 0.9), _model(33, 33, 6, 0.9),
                                                   _model(34, 34, 6, 0.9)], lineages=3) for m in ("warm", "scratch")}}}
    agg = bench_rankings.aggregate([seed(1), seed(2)], patience=2)
    # one place of the best lineage at verified LCS's speed (stop 3, 3, 6; kept 1, 1, 4), two at
    # the other lineages' (stop 6, kept 4): stop 6 / (54 ** (1/3) * 36) ** (1/3), kept 4 / (10/3)
    est = agg["lineage_estimate"]
    assert est["n_other"] == 4 and est["other_stop_ratio"] == pytest.approx(1.0)
    assert est["stop"] == pytest.approx(6 / (54 ** (1 / 3) * 36) ** (1 / 3)) and est["kept"] == pytest.approx(1.2)
    assert agg["lcs"]["epoch_ratio"][0] == pytest.approx(2.0) and agg["lcs"]["does_not_learn"] == 2
    assert agg["lcs"]["lineages_per_seed"] == [1, 1] and agg["baseline"]["lineages_per_seed"] == [3, 3]
    assert agg["lcs"]["scratch_objective_diff"] == pytest.approx(-0.05)
    assert "epoch_ratio" not in agg["lcs+check"] and agg["lcs+check"]["scratch_objective_diff"] == pytest.approx(0)
    assert agg["verify_cost_share"][0] == pytest.approx(3.0 / 12.0)
    assert agg["lcs+verified"]["verify_cost_share"][0] == pytest.approx(3.0 / 12.0)   # per selection too
    assert agg["baseline"]["verify_cost_share"][0] == 0.0
    assert agg["baseline"]["tau_scratch"][0] == pytest.approx(-1.0)   # scores fall as objectives rise
    # the baseline's models stop at epoch 6 keeping 4: no selection could show more than 4x / 2x
    assert agg["baseline"]["ratio_ceiling"] == {"kept": pytest.approx(4.0), "stop": pytest.approx(2.0)}


def test_pairs_experiment_on_real_checkpoints(tmp_path):
    out = bench_pairs.main("digits", pairs=6, per_distance=2, workers=1, quiet=True)
    rows = out["rows"]
    assert len([r for r in rows if r["kind"] == "random"]) == 6
    assert {r["d"] for r in rows if r["kind"] == "distance"} == set(range(1, bench_pairs.MAX_DISTANCE + 1))
    for r in rows:
        assert 0.0 <= r["scratch"] <= 1.0
        assert r["lcs_tensors"] >= r["lp_tensors"]          # LCS contains LP's pairs
        if r["kind"] == "distance" and r["d"] == 1:
            assert r["lp_tensors"] >= 1 or r["lcs_tensors"] >= 1
    for group in [out["random"], *out["by_distance"].values()]:
        assert group["lcs"]["transferable"] >= group["lp"]["transferable"]
        for m in ("lp", "lcs"):
            if group[m]["transferable"]:
                assert group[m]["positive"] + group[m]["negative"] + group[m]["tie"] == pytest.approx(1.0)
    pytest.importorskip("matplotlib")
    made = figures.make_all({"suite": {"problems": {"digits": {"pairs": out, "per_scheme": {}, "convergence": {}}}}},
                            tmp_path)
    assert [p.name for p in made if p.name.startswith("pairs")] == ["pairs-digits.png"]


def test_nt3like_problem_is_the_nt3_space_on_learnable_data(tmp_path, plugins):
    options = nt3like.run_options(tmp_path)
    problem = plugins.registry.create("problem", "file", space=options["space"], data=options["data"])
    nt3 = plugins.registry.create("problem", "nt3", features=1000)
    assert problem.space.num_choices == nt3.space.num_choices
    seq = (1, 1, 1, 2, 1, 0, 2, 1, 0)
    assert problem.space.resolve(seq).shape_sequence() == nt3.space.resolve(seq).shape_sequence()
    data = problem.data()
    assert as_inputs(data.x_train)[0].shape[1:] == (1000, 1) and set(np.unique(data.y_train)) == {0, 1}
    assert nt3like.make_data(tmp_path / "again.npz").read_bytes() == Path(options["data"]).read_bytes()


def test_convergence_bands_average_seeds_on_both_axes():
    def run(scheme, scores):
        return {"scheme": scheme, "scores": [[t, s, 0] for t, s in scores]}
    runs = [run(s, [(1.0, 0.2), (2.0, 0.4), (3.0, 0.6), (4.0, 0.8)]) for s in suite.SCHEMES]
    runs += [run(s, [(1.0, 0.4), (2.0, 0.6), (3.0, 0.8), (5.0, 1.0)]) for s in suite.SCHEMES]
    conv = suite.convergence(runs, bins=2)
    assert conv["slot_s"] == 2.0                      # the shortest run ends at 4 s
    x, mean, half, n = conv["time"]["lcs"][0]
    assert (x, n) == (2.0, 2) and mean == pytest.approx(0.4)   # seed means 0.3 and 0.5
    assert half == pytest.approx(suite.t95(2) * np.std([0.3, 0.5], ddof=1) / np.sqrt(2))
    assert conv["time"]["lcs"][1][:2] == [4.0, pytest.approx(0.75)]  # 0.7 and 0.8: t = 5 s is past the end
    assert [p[0] for p in conv["budget"]["none"]] == [2, 4]
    assert conv["budget"]["none"][1][1] == pytest.approx(0.8)  # (0.6+0.8)/2 and (0.8+1.0)/2


def test_run_all_refuses_an_unknown_section_in_one_line(capsys):
    import run_all

    with pytest.raises(SystemExit) as exc:
        run_all.main(["--only", "suite,bogus"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--only: unknown section(s) bogus; choose from startup, matching" in err


def test_scheduler_benchmark_runs_the_cli_with_its_benchmark_only_backend(tmp_path):
    """bench_scheduler installs `null` as a throwaway plugin distribution that the CLI and its
    spawned workers discover; wtnas itself never offers it."""
    import json

    import bench_scheduler
    from wtnas_cli.plugins.manager import load_plugins

    assert bench_scheduler.main(["--candidates", "40", "--workers", "1", "--train-ms", "0", "--nearest-n", "300",
                                 "--interval", "0.2", "--out", str(tmp_path / "out"),
                                 "--work", str(tmp_path / "work")]) == 0
    result = json.loads(next((tmp_path / "out").glob("scheduler-*.json")).read_text())
    search = result["searches"][0]
    # one worker: evolution's random start is exactly the population (8: unset, it follows the
    # budget of 40); more workers would let asynchronous scheduling ask for one or two more
    assert search["ok"] == 40 and search["with_provider"] == 40 - 8
    assert 0 < search["checkpoints_kept"] <= 40      # (how many 0.2 s samples a run this short gets depends on load)
    assert result["nearest_queries"]["checkpointed"] == 300
    assert result["wakeup"]["back_to_back_us"] > 0 and result["wakeup"]["after_sleep_us"] > 0
    import os
    if len(os.sched_getaffinity(0)) >= 2:      # pinned by default: the scheduler's core is the workers' none
        assert search["scheduler_cpus"] and search["worker_cpus"]
        assert not set(search["scheduler_cpus"]) & set(search["worker_cpus"])
    assert "null" not in load_plugins().registry.names("backend")


@pytest.mark.slow
def test_backends_benchmark_measures_each_backend_in_its_own_process(tmp_path):
    """torch and keras side by side, each in a fresh process (Keras fixes its engine per process)."""
    pytest.importorskip("torch")
    import importlib.util
    import json

    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed")
    import bench_backends

    out = tmp_path / "b.json"
    bench_backends.main(["--candidates", "2", "--uno-candidates", "0", "--run-evals", "0", "--variants",
                         "torch,keras", "--out", str(out)])
    digits = json.loads(out.read_text())["digits"]
    for name in ("torch", "keras"):
        assert digits[name]["candidates"] == 2 and digits[name]["per_candidate_s"] > 0
        assert set(digits[name]["rss_mb"]) == {"1", "2"}
    assert digits["ratio_to_torch"]["keras"] > 0


def test_time_to_quality_reach_and_ratios():
    """bench_time_to_quality's reading: when a scheme's best model so far first reaches the
    baseline's final test objective (a search candidate by its test measured afterwards, or the
    recommended top-K model), and the wall-time ratios and paired test against the baseline."""
    import bench_time_to_quality as tq

    def run(ttm, rec_test, timeline, search_tests, kept=(1, 1)):
        topk = [{"id": i, "estimated": 0.9, "epochs": 3, "converged": True, "kept_epoch": k, "start_score": None,
                 "val": 0.95, "test": rec_test, "wall_s": 1.0} for i, k in enumerate(kept)]
        return {"search_s": ttm - 2, "topk_s": 2.0, "time_to_model_s": ttm, "topk": topk, "lineages": 1,
                "recommended": {"id": 0, "val": 0.95, "test": rec_test}, "timeline": timeline,
                "search_best_test": search_tests}

    # the baseline: its search's best (test 0.90 at 5 s), then its top-K model (0.92 at 10 s)
    base = run(10.0, 0.92, [[5.0, 0.93, "validation", 7, "search"], [10.0, 0.92, "test", 7, "topk"]], {"7": 0.90})
    # LCS: a search candidate already at 0.93 on test at 4 s (its validation says 0.91)
    lcs = run(8.0, 0.94, [[2.0, 0.80, "validation", 3, "search"], [4.0, 0.91, "validation", 4, "search"],
                          [8.0, 0.94, "test", 4, "topk"]], {"3": 0.70, "4": 0.93}, kept=(0, 1))
    never = run(5.0, 0.91, [[5.0, 0.91, "test", 1, "topk"]], {})
    assert tq.reach_time(base, 0.92) == 10.0 and tq.reach_time(lcs, 0.92) == 4.0 and tq.reach_time(never, 0.92) is None
    assert tq.reach_time(lcs, 0.95) is None
    seeds = [{"seed": s, "runs": {"baseline": base, "lcs": lcs, "diverse": never, "lcs-half": lcs}} for s in (1, 2)]
    agg = tq.aggregate(seeds)
    assert agg["lcs"]["test_diff"] == pytest.approx(0.02) and agg["lcs"]["better_seeds"] == 2
    assert agg["lcs"]["test_p"] == pytest.approx(0.5)          # 2 pairs: 2 of 4 sign flips as extreme
    assert agg["lcs"]["wall_ratio"] == pytest.approx(10 / 8)
    assert agg["lcs"]["reach_ratio"] == pytest.approx(10 / 4)   # the baseline's time to model / LCS's reach
    assert agg["lcs"]["reach_ratio_own"] == pytest.approx(10 / 4)   # the baseline first reached 0.92 at 10 s
    assert agg["lcs"]["kept_epoch_0"] == 2 and agg["lcs"]["models"] == 4
    assert agg["diverse"]["reached"] == 0 and agg["diverse"]["reach_ratio"] is None
    assert agg["baseline"]["gap"][0] == pytest.approx(0.03)
    assert "lcs-half" in agg and "| lcs | " in tq.markdown({"problems": {"p": {"per_scheme": agg}},
                                                              "gmean_over_problems": {}})


def test_gpu_benchmark_runs_its_cpu_mode(tmp_path, plugins):
    """bench_gpu.py's code path without a GPU: real searches per cell, the matmul peak probe, FLOP
    counts per architecture (per sample, whatever the batch) and the shares of peak it reports."""
    import json

    import bench_gpu

    problem = plugins.registry.create("problem", "cifar10", synthetic=True, samples=100)
    seq = problem.space.sample(np.random.default_rng(0))
    per_sample = bench_gpu.flops_per_sample(problem, seq, batch=8)
    assert per_sample > 0 and abs(bench_gpu.flops_per_sample(problem, seq, batch=16) - per_sample) < 1e-6 * per_sample
    result = bench_gpu.main(["--cpu", "--workers", "1", "--seconds", "15", "--out", str(tmp_path)])
    assert json.loads((tmp_path / f"gpu-cpu-{result['date']}.json").read_text()) == result
    assert set(result["peak_tflops"]) == {"fp32", "bf16"} and all(v > 0 for v in result["peak_tflops"].values())
    assert [(c["precision"], c["workers"]) for c in result["cells"]] == [("fp32", 1), ("bf16", 1)]
    steady = [c for c in result["cells"] if "note" not in c]
    assert steady, result["cells"]   # 15 s of ~0.3 s candidates: a steady state with a wide margin
    for c in steady:
        assert c["candidates_per_s"] > 0 and c["train_s"] > 0 and c["flop_per_candidate"] > 0
        assert 0 < c["share_of_peak"] and 0 < c["step_share_of_peak"] and c["startup_s"] > 0


def test_precision_benchmark_pairs_each_seeds_bf16_run_with_its_fp32_run(tmp_path):
    """bench_precision.py end to end on a small budget: a real search and top-K per precision,
    the JSON it writes, and the paired table read back from it."""
    import json

    import bench_precision

    result = bench_precision.main(["--seeds", "1", "--candidates", "8", "--k", "2", "--workers", "1",
                                   "--out", str(tmp_path)])
    saved = json.loads((tmp_path / f"precision-digits-torch-{result['date']}.json").read_text())
    assert saved == result and set(result["runs"]["1"]) == {"fp32", "bf16"}
    for run in result["runs"]["1"].values():
        assert run["candidates"] == 8 and 0 < run["recommended_test"] <= 1 and 0 < run["topk_mean_test"] <= 1
        assert run["second_half_score"] is not None and run["median_train_s"] > 0
    table = bench_precision.render(saved)
    assert "| recommended model, test objective |" in table and "bf16 − fp32" in table
