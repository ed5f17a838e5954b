"""Does wtnas give a better model sooner? Wall time from `wtnas run` to the recommended model, and
that model's objective on held-out test data, for the no-transfer baseline, the default LCS
(the *fast* configuration) and LCS on 3 islands with `--min-lineages 3` (the *diverse* one).

    python benchmarks/bench_time_to_quality.py --seeds 5             # the numbers docs/benchmarks.md quotes
    python benchmarks/bench_time_to_quality.py --seeds 1 --quick     # a few minutes
    python benchmarks/bench_time_to_quality.py --render FILE         # docs/benchmarks.md's tables from a result

Per problem (digits, nt3like, real MNIST-5k) and seed, each scheme runs what a user runs with the
same settings: `wtnas run` (regularized evolution, the default controls), then `wtnas topk --k 5`
(verified top-K as shipped: `--verify known`, early stopping under the default first-epoch
reference). Recorded per run:

- the wall time of the search and of top-K (checks and training): the time to the recommended
  model, i.e. the one `wtnas export` picks (best validation objective among the trained top-K);
- that model's validation and held-out test objective (the gap: how optimistic the selection is);
- the quality timeline (results/timeline.py): the search's best candidate so far, whose test
  objective is measured here afterwards from its checkpoint (never during the run), then the
  recommended top-K model as the top-K finish; from it the time each scheme needs to reach the
  baseline's final test objective of the same seed;
- for the baseline and LCS, the same top-K trained again under `--stop-reference start` (the
  previous default): how many warm starts keep their search weights, and what that costs on test.

Each scheme's searches and top-K run one after another on the same machine; wall times are
single measurements on a 2-core machine and are rough. Raw numbers go to
benchmarks/results/time-to-quality-<date>.json (written after every seed).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_rankings import problem_options, save  # noqa: E402   (the same problems, the same JSON)

from wtnas_cli.api import evaluate  # noqa: E402
from wtnas_cli.errors import WtnasError  # noqa: E402
from wtnas_cli.results.comparison import comparison, recommended  # noqa: E402
from wtnas_cli.results.runs import load_run  # noqa: E402
from wtnas_cli.results.timeline import quality_timeline  # noqa: E402
from wtnas_cli.results.formatting import top_rung  # noqa: E402
from wtnas_cli.results.topk import TopKConfig, run_topk  # noqa: E402
from wtnas_cli.run.config import RunConfig  # noqa: E402
from wtnas_cli.search.scheduler import run_search  # noqa: E402
from wtnas_cli.util.stats import geometric_mean, kept_epoch, mean_std, paired_pvalue  # noqa: E402

ISLANDS = 3
SCHEMES = {   # name: (RunConfig settings, TopKConfig settings)
    "baseline": (dict(matcher="none"), {}),
    "lcs": (dict(matcher="lcs"), {}),
    "diverse": (dict(matcher="lcs", options={"evolution": {"islands": ISLANDS}}), dict(min_lineages=ISLANDS)),
    # the default LCS on half the candidates: LCS reaches the baseline's test objective in less than
    # half the baseline's time (measured first), so a user can buy that quality with half the search
    "lcs-half": (dict(matcher="lcs", budget_share=0.5), {}),
    # successive halving (rungs of 1, 3, 9 epochs; random new candidates), the peers' speed-up, without
    # and with transfer into its new candidates; its search gets the baseline's search wall time of
    # the same seed (candidates are not comparable units: a promotion trains 2 or 6 epochs)
    "asha": (dict(strategy="asha", matcher="none", time_of="baseline"), {}),
    "asha-lcs": (dict(strategy="asha", matcher="lcs", time_of="baseline"), {}),
}
START_REFERENCE_FOR = ("baseline", "lcs")   # also trained under --stop-reference start
PAIRED = {"asha-lcs": "asha"}   # also compared with this scheme on the same seeds (transfer within ASHA)


def budgets(quick: bool) -> dict[str, dict]:
    """Candidates per search (the rankings benchmark's: MNIST-5k candidates cost ~1.5 s each) and
    the top-K settings: 5 models, up to 20 epochs (the paper's cap)."""
    common = {"k": 5, "max_epochs": 10 if quick else 20}
    return {"digits": dict(common, max_evals=40 if quick else 150, population=12 if quick else 20,
                           sample=6 if quick else 10),
            "nt3like": dict(common, max_evals=40 if quick else 120, population=12 if quick else 20,
                            sample=6 if quick else 10),
            "mnist5k": dict(common, max_evals=24 if quick else 60, population=9 if quick else 12,
                            sample=4 if quick else 6)}


def one_run(run_dir: Path, options: dict, seed: int, b: dict, scheme: str, runs: dict | None = None) -> dict:
    """One scheme, one seed: search, top-K, and what the user got when. `runs`: the schemes of
    this seed run so far (a scheme with `time_of` searches for that one's search wall time)."""
    run_settings, topk_settings = dict(SCHEMES[scheme][0]), SCHEMES[scheme][1]
    share = run_settings.pop("budget_share", 1.0)
    time_of = run_settings.pop("time_of", None)
    if time_of is not None:   # the wall time binds: candidates enough never to run out first
        budget = dict(max_evals=10 * b["max_evals"], time_budget=(runs or {})[time_of]["search_s"])
    else:
        budget = dict(max_evals=round(b["max_evals"] * share), population=b["population"], sample=b["sample"])
    cfg = RunConfig(seed=seed, workers=2, run_dir=str(run_dir), **budget, **run_settings, **options)
    run_search(cfg, overwrite=True)
    topk = TopKConfig(k=b["k"], max_epochs=b["max_epochs"], seed=seed, workers=2, **topk_settings)
    run_topk(run_dir, topk)
    report = load_run(run_dir)
    row = comparison([report])[0]
    trained = report.trained["warm"]
    points = quality_timeline(report)
    out = {"search_s": report.search_wall_s, "topk_s": trained.wall_s, "time_to_model_s": row["time_to_model_s"],
           "recommended": {"id": row["recommended_id"], "val": row["recommended_val"],
                           "test": row["recommended_test"]},
           "topk": [_model(t, trained.patience) for t in trained.topk],
           "lineages": trained.choice.get("lineages"),
           "timeline": [[p.t_s, p.value, p.split, p.candidate_id, p.phase] for p in points],
           "search_best_test": _search_tests(run_dir, points), "candidates": len(report.ok),
           "rungs": report.rungs_reached}
    if scheme in START_REFERENCE_FOR:   # the previous default, on the same search and selection
        t = time.perf_counter()
        start = run_topk(run_dir, TopKConfig(k=b["k"], max_epochs=b["max_epochs"], seed=seed, workers=2,
                                             stop_reference="start", **topk_settings))
        rows = start.rows   # the top-K (no tau sample here)
        pick = recommended(rows)
        out["start_reference"] = {"wall_s": time.perf_counter() - t, "topk": [_model(r, topk.patience) for r in rows],
                                  "recommended": {"id": pick["candidate_id"], "val": pick["objective_final"],
                                                  "test": pick["objective_test"]} if pick else None}
    return out


def _model(t: dict, patience: int) -> dict:
    return {"id": t["candidate_id"], "estimated": t["estimated_score"], "epochs": t["epochs_to_converge"],
            "converged": bool(t["converged"]), "kept_epoch": kept_epoch(t["epochs_to_converge"], bool(t["converged"]),
                                                                         patience),
            "start_score": t["start_score"], "val": t["objective_final"], "test": t["objective_test"],
            "wall_s": t["wall_s"], "top_rung": top_rung(t)}


def _search_tests(run_dir: Path, points) -> dict[str, float]:
    """The held-out test objective of each search candidate that was the best so far, measured
    now from its checkpoint (those `--keep needed` deleted are missing: never counted as reached)."""
    out = {}
    for p in points:
        if p.phase != "search":
            continue
        try:
            out[str(p.candidate_id)] = evaluate(run_dir, p.candidate_id, source="search", threads=2).value
        except WtnasError:   # a checkpoint --keep needed deleted
            continue
    return out


def held_out_curve(run: dict) -> list[tuple[float, float]]:
    """(time, held-out test objective of the best model so far) where it changes: the search's
    best candidates by validation (their test measured afterwards), then the top-K finishing."""
    tests, out = run["search_best_test"], []
    for t_s, value, split, cid, phase in run["timeline"]:
        got = tests.get(str(cid)) if phase == "search" else (value if split == "test" else None)
        if got is not None:
            out.append((t_s, got))
    return out


def reach_time(run: dict, target: float) -> float | None:
    """When the best model so far first reached `target` on test: a search candidate (its test
    measured afterwards, at its finish time) or the recommended top-K model as the top-K finish."""
    return next((t_s for t_s, got in held_out_curve(run) if got >= target), None)


def aggregate(seeds: list[dict]) -> dict:
    """Per scheme: means over seeds, paired tests and ratios against the baseline of the same seed."""
    out: dict = {}
    base = [s["runs"]["baseline"] for s in seeds]
    for scheme in SCHEMES:
        runs = [s["runs"][scheme] for s in seeds if scheme in s["runs"]]
        if len(runs) != len(seeds):
            continue
        test = [r["recommended"]["test"] for r in runs]
        val = [r["recommended"]["val"] for r in runs]
        reach = [reach_time(r, b["recommended"]["test"]) for r, b in zip(runs, base)]
        cur = {"test": mean_std(test), "val": mean_std(val), "gap": mean_std([v - t for v, t in zip(val, test)]),
               "test_per_seed": test, "time_to_model_s": mean_std([r["time_to_model_s"] for r in runs]),
               "search_s": mean_std([r["search_s"] for r in runs]), "topk_s": mean_std([r["topk_s"] for r in runs]),
               "topk_test": mean_std([m["test"] for r in runs for m in r["topk"]]),
               # models asha's search trained to its top rung are scored, not trained: not counted here
               "epochs_gmean": geometric_mean([m["epochs"] for r in runs for m in r["topk"] if not m.get("top_rung")]),
               "kept_epoch_0": sum(m["kept_epoch"] == 0 for r in runs for m in r["topk"] if not m.get("top_rung")),
               "models": sum(not m.get("top_rung") for r in runs for m in r["topk"]),
               "top_rung_models": sum(bool(m.get("top_rung")) for r in runs for m in r["topk"]),
               "candidates": mean_std([r.get("candidates", 0) for r in runs]),
               "lineages_per_seed": [r["lineages"] for r in runs],
               "reach_baseline_s": reach}
        if scheme != "baseline":
            cur["test_diff"] = statistics.mean(test) - statistics.mean(out["baseline"]["test_per_seed"])
            cur["test_p"] = paired_pvalue(test, out["baseline"]["test_per_seed"])
            cur["better_seeds"] = sum(t > b for t, b in zip(test, out["baseline"]["test_per_seed"]))
            cur["wall_ratio"] = geometric_mean([b["time_to_model_s"] / r["time_to_model_s"] for r, b in zip(runs, base)])
            # baseline's time to its own model / this scheme's time to reach that model's test objective
            cur["reach_ratio"] = geometric_mean([b["time_to_model_s"] / t if t else 0.0 for t, b in zip(reach, base)]) \
                if all(reach) else None
            cur["reached"] = sum(t is not None for t in reach)
            # stricter: against the time the baseline itself first had a model that good (often its
            # search's best, before its top-K): seeds where both got there
            own = [b / t for b, t in zip(out["baseline"]["reach_baseline_s"], reach) if b and t]
            cur["reach_ratio_own"] = geometric_mean(own) if own else None
        other = PAIRED.get(scheme)
        if other in out:
            theirs = out[other]["test_per_seed"]
            cur["vs"] = {"scheme": other, "test_diff": statistics.mean(test) - statistics.mean(theirs),
                         "test_p": paired_pvalue(test, theirs), "better_seeds": sum(t > o for t, o in zip(test, theirs))}
        if all("start_reference" in r for r in runs):
            start = [r["start_reference"] for r in runs]
            cur["start_reference"] = {
                "test": mean_std([s["recommended"]["test"] for s in start]),
                "topk_test": mean_std([m["test"] for s in start for m in s["topk"]]),
                "kept_epoch_0": sum(m["kept_epoch"] == 0 for s in start for m in s["topk"]),
                "models": sum(len(s["topk"]) for s in start),
                "epochs_gmean": geometric_mean([m["epochs"] for s in start for m in s["topk"]]),
                "topk_s": mean_std([s["wall_s"] for s in start])}
        out[scheme] = cur
    return out


def summarize(results: dict) -> dict:
    """Geometric means over problems of the wall-time ratios (the targets)."""
    per = results["problems"]
    out = {}
    for scheme in SCHEMES:
        if scheme == "baseline":
            continue
        ratios = [p["per_scheme"][scheme]["wall_ratio"] for p in per.values() if scheme in p.get("per_scheme", {})]
        reach = [p["per_scheme"][scheme].get("reach_ratio") for p in per.values() if scheme in p.get("per_scheme", {})]
        own = [p["per_scheme"][scheme].get("reach_ratio_own") for p in per.values() if scheme in p.get("per_scheme", {})]
        out[scheme] = {"wall_ratio_gmean": geometric_mean(ratios) if ratios else None,
                       "reach_ratio_gmean": geometric_mean(reach) if reach and all(reach) else None,
                       "reach_ratio_own_gmean": geometric_mean(own) if own and all(own) else None}
    results["gmean_over_problems"] = out
    return out


def _f(x, digits=4) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def markdown(results: dict) -> str:
    """docs/benchmarks.md's tables."""
    lines = ["| problem | scheme | recommended model: test (mean ± std) | vs baseline (p, seeds better) | "
             "validation − test | wall time to model | baseline / scheme | reaches baseline's test | "
             "top-K epochs (geo. mean) | kept search weights |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, entry in results["problems"].items():
        for scheme, a in entry.get("per_scheme", {}).items():
            n = len(a["test_per_seed"])
            diff = (f"{a['test_diff']:+.4f} (p {a['test_p']:.2f}, {a['better_seeds']} of {n})"
                    if "test_diff" in a else "—")
            reach = "—" if scheme == "baseline" else (
                f"{a['reached']} of {n}" + (f", {a['reach_ratio']:.2f}x sooner" if a.get("reach_ratio") else "")
                + (f" ({a['reach_ratio_own']:.2f}x)" if a.get("reach_ratio_own") else ""))
            lines.append(f"| {name} | {scheme} | {_f(a['test'][0])} ± {_f(a['test'][1])} | {diff} | "
                         f"{a['gap'][0]:+.4f} | {a['time_to_model_s'][0]:.0f} s ({a['search_s'][0]:.0f} + "
                         f"{a['topk_s'][0]:.0f}) | {_f(a.get('wall_ratio'), 2) + 'x' if 'wall_ratio' in a else '—'} | "
                         f"{reach} | {_f(a['epochs_gmean'], 2)} | {a['kept_epoch_0']} of {a['models']}"
                         + (f" ({a['top_rung_models']} at the top rung)" if a.get("top_rung_models") else "") + " |")
    lines += ["", "| problem | scheme | stop reference | recommended test | top-K test (mean) | top-K epochs | "
              "kept search weights | top-K wall |", "|---|---|---|---|---|---|---|---|"]
    for name, entry in results["problems"].items():
        for scheme, a in entry.get("per_scheme", {}).items():
            s = a.get("start_reference")
            if not s:
                continue
            lines.append(f"| {name} | {scheme} | first-epoch (default) | {_f(a['test'][0])} | {_f(a['topk_test'][0])} | "
                         f"{a['epochs_gmean']:.2f} | {a['kept_epoch_0']} of {a['models']} | {a['topk_s'][0]:.0f} s |")
            lines.append(f"| {name} | {scheme} | start | {_f(s['test'][0])} | {_f(s['topk_test'][0])} | "
                         f"{s['epochs_gmean']:.2f} | {s['kept_epoch_0']} of {s['models']} | {s['topk_s'][0]:.0f} s |")
    paired = [f"- {scheme} vs {a['vs']['scheme']} on {name}: test {a['vs']['test_diff']:+.4f} (p "
              f"{a['vs']['test_p']:.2f}, better on {a['vs']['better_seeds']} of {len(a['test_per_seed'])} seeds); "
              f"candidates per search {a['candidates'][0]:.0f} vs {entry['per_scheme'][a['vs']['scheme']]['candidates'][0]:.0f}"
              for name, entry in results["problems"].items() for scheme, a in entry.get("per_scheme", {}).items()
              if "vs" in a]
    lines += ([""] + paired) if paired else []
    g = results.get("gmean_over_problems", {})
    lines += [""] + [f"- {scheme}: wall time baseline / {scheme} {_f(v['wall_ratio_gmean'], 2)}x; the baseline's "
                     f"test objective reached {_f(v['reach_ratio_gmean'], 2)}x sooner than the baseline's time to its "
                     f"model ({_f(v.get('reach_ratio_own_gmean'), 2)}x sooner than the baseline first had a model that "
                     f"good) (geometric means over problems)" for scheme, v in g.items()]
    return "\n".join(lines)


def plot(results: dict, out_dir: Path) -> list[Path]:
    """Quality over time per problem: each scheme's held-out test objective of the best model so
    far, mean over seeds on a common time grid (a seed counts from its first point on), and a
    marker at its mean time to the recommended model and that model's mean test objective. A
    promoting search (asha) has a point per candidate at its last promotion only (earlier rungs'
    weights were replaced, so their test objective is unknown): its curve is a lower bound."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for name, entry in results["problems"].items():
        fig, ax = plt.subplots(figsize=(7, 4.2))
        schemes = list(entry.get("per_scheme", {}))
        horizon = max(r["time_to_model_s"] for s in entry["seeds"] for r in s["runs"].values())
        grid = np.linspace(0, horizon, 200)
        for k, scheme in enumerate(schemes):
            curves = []
            for seed in entry["seeds"]:
                points = held_out_curve(seed["runs"][scheme])
                times = np.array([t for t, _ in points])
                values = np.array([v for _, v in points])
                at = np.searchsorted(times, grid, side="right") - 1
                curves.append(np.where(at >= 0, values[np.clip(at, 0, None)], np.nan))
            stacked = np.array(curves)
            seen = np.isfinite(stacked).any(axis=0)   # before any seed's first point: no mean
            mean = np.full(len(grid), np.nan)
            mean[seen] = np.nanmean(stacked[:, seen], axis=0)
            color = plt.cm.tab10(k)
            ax.plot(grid, mean, color=color, label=scheme)
            a = entry["per_scheme"][scheme]
            ax.plot([a["time_to_model_s"][0]], [a["test"][0]], "o", color=color)
        finals = [entry["per_scheme"][scheme]["test"][0] for scheme in schemes]
        ax.set_ylim(min(finals) - 0.06, max(finals) + 0.02)   # the end, where the schemes differ
        ax.set_title(f"{name}: held-out test of the best model so far (mean of {len(entry['seeds'])} seeds)")
        ax.set_xlabel("wall time from `wtnas run` (s); dot: the recommended model after `wtnas topk`")
        ax.set_ylabel("test objective")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"time-to-quality-{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)
    return made


def add_schemes(path: Path, root: Path) -> dict:
    """The schemes of SCHEMES a result file lacks, run now on its problems, seeds and budgets."""
    results = json.loads(path.read_text())
    t0 = time.time()
    for name, entry in results["problems"].items():
        options = problem_options(name, root / "data")
        for seed in entry["seeds"]:
            for scheme in [s for s in SCHEMES if s not in seed["runs"]]:
                run = one_run(root / name / f"{scheme}-{seed['seed']}", options, seed["seed"], results["budgets"][name],
                              scheme, seed["runs"])
                seed["runs"][scheme] = run
                print(f"[{time.time() - t0:5.0f} s] {name} seed {seed['seed']} {scheme}: test "
                      f"{_f(run['recommended']['test'])} in {run['time_to_model_s']:.0f} s", flush=True)
            entry["per_scheme"] = aggregate(entry["seeds"])
            results["schemes"] = {k: {"run": v[0], "topk": v[1]} for k, v in SCHEMES.items()}
            results["wall_s_added"] = time.time() - t0
            summarize(results)
            save(path, results)
    print(markdown(results))
    return results


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="small budgets (a smoke run)")
    ap.add_argument("--problems", default="digits,nt3like,mnist5k")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--render", type=Path, metavar="JSON", help="print the tables of a result file and exit")
    ap.add_argument("--plot", type=Path, metavar="DIR", help="with --render: also draw the quality-over-time "
                    "figures into DIR")
    ap.add_argument("--add", type=Path, metavar="JSON", help="run the schemes this result file lacks (same "
                    "problems, seeds and budgets; new run directories) and add them to it")
    args = ap.parse_args(argv)
    if args.render:
        results = json.loads(args.render.read_text())
        print(markdown(results))
        if args.plot:
            for figure in plot(results, args.plot):
                print(f"drew {figure}")
        return results
    if args.add:   # (with nothing to add: the aggregates recomputed from the seeds)
        return add_schemes(args.add, args.out / "time-to-quality-runs")
    names = args.problems.split(",")
    unknown = set(names) - set(budgets(False))
    if unknown:
        ap.error(f"--problems: unknown {', '.join(sorted(unknown))}")
    root = args.out / "time-to-quality-runs"
    b_all = budgets(args.quick)
    results: dict = {"budgets": {n: b_all[n] for n in names}, "seeds": args.seeds, "problems": {},
                     "schemes": {k: {"run": v[0], "topk": v[1]} for k, v in SCHEMES.items()}}
    path = args.out / f"time-to-quality-{time.strftime('%Y-%m-%d')}{'-quick' if args.quick else ''}.json"
    t0 = time.time()
    for name in names:
        options = problem_options(name, root / "data")
        seeds: list[dict] = []
        for seed in range(1, args.seeds + 1):
            runs = {}
            for scheme in SCHEMES:
                runs[scheme] = one_run(root / name / f"{scheme}-{seed}", options, seed, b_all[name], scheme, runs)
                r = runs[scheme]
                print(f"[{time.time() - t0:5.0f} s] {name} seed {seed} {scheme}: test {_f(r['recommended']['test'])} "
                      f"(val {_f(r['recommended']['val'])}) in {r['time_to_model_s']:.0f} s", flush=True)
            seeds.append({"seed": seed, "runs": runs})
            results["problems"][name] = {"seeds": seeds, "per_scheme": aggregate(seeds)}
            results["wall_s"] = time.time() - t0
            summarize(results)
            save(path, results)   # the seeds done so far: a run stopped for time keeps them
    print(markdown(results))
    print(f"saved {path}")
    return results


if __name__ == "__main__":
    main()
