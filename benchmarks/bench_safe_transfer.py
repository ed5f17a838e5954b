"""Safe transfer, measured: the paper's shape-only LCS against role-aware LCS, LCS with partial
(sliced) copies and role-aware LP, side by side with the same seeds.

    python benchmarks/bench_safe_transfer.py [--quick] [--seeds 3] [--out benchmarks/results]

1. Pairs (Fig. 4/5) on digits, nt3like and cifar10 (synthetic, where BatchNorm is common):
   random pairs and pairs at d = 1..6 from real checkpoints; the receiver trained one epoch from
   scratch and with each matcher (bench_pairs.py). Shares of tensors and parameters moved,
   helps / harms / equal, mean gain, role-crossing copies, receivers that failed (NaN).
2. Searches with `--strategy random --selector nearest` (where role-blind copies are common) on
   cifar10 synthetic and digits, per matcher and seed: mean candidate score of the second half,
   failed candidates, children whose BatchNorm variance was seeded from another role.

Writes benchmarks/results/safe-transfer-<date>.json; docs/benchmarks.md reads it through
`python benchmarks/tables.py safe-transfer FILE`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_pairs  # noqa: E402
import nt3like  # noqa: E402

from wtnas_cli.run.config import RunConfig  # noqa: E402
from wtnas_cli.search.scheduler import run_search  # noqa: E402
from wtnas_cli.util.stats import mean_std, permutation_pvalue  # noqa: E402
from wtnas_cli.run.store import RunStore  # noqa: E402

MATCHERS = ("lcs-shape", "lcs", "lcs-slice", "lp")
SEARCH_MATCHERS = ("lcs-shape", "lcs", "lcs-slice")
CIFAR = {"problem": "cifar10", "synthetic": True, "samples": 300}


def budget(quick: bool) -> dict:
    if quick:
        return {"pairs": 20, "per_distance": 4, "evals": {"digits": 40, "cifar10": 16}, "seeds": 1}
    return {"pairs": 120, "per_distance": 25, "evals": {"digits": 200, "cifar10": 80}, "seeds": 3}


def pairs_section(problems: dict[str, dict], b: dict) -> dict:
    out = {}
    for name, options in problems.items():
        print(f"-- pairs: {name}", flush=True)
        popts = {k: v for k, v in options.items() if k != "problem"}
        out[name] = bench_pairs.main(options["problem"], popts, pairs=b["pairs"], per_distance=b["per_distance"],
                                     label=name, matchers=MATCHERS)
        out[name].pop("rows")
    return out


def search_stats(run_dir: Path) -> dict:
    store = RunStore(run_dir / "wtnas.sqlite")
    try:
        rows = store.candidates(order="finish_seq")
        ok = [r for r in rows if r["status"] == "ok"]
        scores = [r["score"] for r in ok]
        kids = [r for r in rows if r["provider_id"] is not None]
        return {"candidates": len(rows), "ok": len(ok), "failed": sum(r["status"] == "failed" for r in rows),
                "failed_non_finite": sum(r["status"] == "failed" and "not finite" in (r["error"] or "") for r in rows),
                "children": len(kids), "children_with_role_crossing": sum((r["n_role_crossed"] or 0) > 0 for r in kids),
                "role_crossings": sum(r["n_role_crossed"] or 0 for r in kids),
                "partial_tensors": sum(r["n_partial"] or 0 for r in kids),
                "param_share": statistics.mean([r["transfer_share"] or 0.0 for r in kids]) if kids else 0.0,
                "median_distance": statistics.median([r["distance"] for r in kids]) if kids else None,
                "mean_score_2nd_half": statistics.mean(scores[len(scores) // 2:]) if scores else float("nan"),
                "best": max(scores, default=float("nan"))}
    finally:
        store.close()


def search_section(problems: dict[str, dict], b: dict, root: Path) -> dict:
    out = {}
    for name, options in problems.items():
        per = {m: [] for m in SEARCH_MATCHERS}
        for seed in range(b["seeds"]):
            for m in SEARCH_MATCHERS:
                run_dir = root / f"{name}-{m}-{seed}"
                print(f"-- search: {name} {m} seed {seed}", flush=True)
                t = time.time()
                run_search(RunConfig(strategy="random", selector="nearest", matcher=m, seed=seed,
                                     max_evals=b["evals"][name], workers=2, run_dir=str(run_dir), **options),
                           overwrite=True)
                per[m].append({**search_stats(run_dir), "wall_s": time.time() - t})
        summary = {}
        base = [r["mean_score_2nd_half"] for r in per["lcs-shape"]]
        for m, runs in per.items():
            values = [r["mean_score_2nd_half"] for r in runs]
            mean, std = mean_std(values)
            summary[m] = {"mean_score_2nd_half": mean, "std": std,
                          "p_vs_lcs_shape": permutation_pvalue(values, base) if m != "lcs-shape" and len(values) > 1
                          else None,
                          **{k: sum(r[k] for r in runs) for k in ("candidates", "failed", "failed_non_finite", "children",
                                                                  "children_with_role_crossing", "partial_tensors")},
                          "param_share": statistics.mean(r["param_share"] for r in runs)}
        out[name] = {"runs": per, "summary": summary, "evals": b["evals"][name], "seeds": b["seeds"]}
    return out


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=None, help="search seeds per matcher (default 3; quick 1)")
    ap.add_argument("--only", default="pairs,search")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    b = budget(args.quick)
    if args.seeds:
        b["seeds"] = args.seeds
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"safe-transfer-{time.strftime('%Y-%m-%d')}{'-quick' if args.quick else ''}.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    results.update({"date": time.strftime("%Y-%m-%d %H:%M"), "budget": b, "quick": args.quick})
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        problems = {"digits": {"problem": "digits"}, "nt3like": nt3like.run_options(Path(tmp)), "cifar10": CIFAR}
        if "pairs" in args.only:
            t = time.time()
            results["pairs"] = pairs_section(problems, b)
            results["pairs_wall_s"] = time.time() - t
            path.write_text(json.dumps(results, indent=1, default=str))
        if "search" in args.only:
            t = time.time()
            results["search"] = search_section({"cifar10": CIFAR, "digits": {"problem": "digits"}}, b, Path(tmp))
            results["search_wall_s"] = time.time() - t
    results["wall_s"] = time.time() - t0
    path.write_text(json.dumps(results, indent=1, default=str))
    print(f"saved {path} ({results['wall_s']:.0f} s)")
    return path


if __name__ == "__main__":
    main(sys.argv[1:])
