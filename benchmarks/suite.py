"""The paper's experiments at CPU scale: baseline vs LP vs LCS (issue: reproduce the results).

    python benchmarks/suite.py --quick      # digits + synthetic NT3, 3 seeds, ~10 min on 2 cores
    python benchmarks/suite.py              # more candidates and a larger top-K

For every problem, scheme (none = baseline, lp, lcs) and seed: a regularized-evolution search,
then `topk` warm-started with early stopping (+ a random tau sample), then `topk --from-scratch`
on the same top-K. Prints the tables, writes benchmarks/results/<date>-<host>-suite.json and
comparison reports (report.md + plots) under benchmarks/results/suite-<problem>/.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import time
from pathlib import Path

from wtnas_cli.config import RunConfig
from wtnas_cli.report import comparison, load_runs, write_report
from wtnas_cli.search import run_search
from wtnas_cli.stats import geometric_mean
from wtnas_cli.topk import TopKConfig, run_topk

PROBLEMS = {
    "digits": {},
    "nt3": {"synthetic": True, "samples": 600, "features": 400},
}
SCHEMES = ("none", "lp", "lcs")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--evals", type=int, help="override the number of candidates per search")
    args = ap.parse_args(argv)
    evals, k, tau, max_epochs = (100, 5, 10, 12) if args.quick else (300, 10, 30, 20)
    evals = args.evals or evals
    root = args.out / "suite-runs"
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "host": socket.gethostname(), "quick": args.quick,
                     "max_evals": evals, "k": k, "tau_sample": tau, "max_epochs": max_epochs, "problems": {}}
    t0 = time.time()
    for problem, options in PROBLEMS.items():
        runs = []
        for scheme in SCHEMES:
            for seed in range(1, args.seeds + 1):
                run_dir = root / problem / f"{scheme}-{seed}"
                cfg = RunConfig(problem=problem, matcher=scheme, seed=seed, max_evals=evals, population=20, sample=10,
                                workers=2, run_dir=str(run_dir), **options)
                run_search(cfg, overwrite=True)
                run_topk(run_dir, TopKConfig(k=k, tau_sample=tau, max_epochs=max_epochs, seed=seed))
                run_topk(run_dir, TopKConfig(k=k, from_scratch=True, tau_sample=tau, max_epochs=max_epochs, seed=seed))
                runs.append(run_dir)
                print(f"[{time.time() - t0:5.0f} s] {problem} {scheme} seed {seed} done", flush=True)
        reports = load_runs(runs)
        rows = {mode: comparison(reports, mode) for mode in ("warm", "scratch")}
        per_scheme = {}
        for scheme in SCHEMES:
            pick = lambda mode: [r for r in rows[mode] if r["run"].startswith(scheme + "-")]
            warm, scratch = pick("warm"), pick("scratch")
            epochs = [e for rep in reports if rep.name.startswith(scheme + "-") for e in rep.trained["warm"].epochs]
            per_scheme[scheme] = {
                "mean_score_2nd_half": statistics.mean(r["mean_score_2nd_half"] for r in warm),
                "transfer_share": statistics.mean(r["transfer_share"] for r in warm),
                "epochs_gmean": geometric_mean(epochs),
                "objective_at_stop": statistics.mean(r["objective_at_stop"] for r in warm),
                "objective_final": statistics.mean(r["objective_final"] for r in warm),
                "tau_warm": statistics.mean(r["tau"] for r in warm),
                "objective_scratch": statistics.mean(r["objective_final"] for r in scratch),
                "tau_scratch": statistics.mean(r["tau"] for r in scratch),
                "params_mean": statistics.mean(t["num_params"] for rep in reports if rep.name.startswith(scheme + "-")
                                               for t in rep.trained["warm"].topk),
            }
        for scheme in ("lp", "lcs"):
            per_scheme[scheme]["epoch_speedup_vs_baseline"] = (per_scheme["none"]["epochs_gmean"]
                                                               / per_scheme[scheme]["epochs_gmean"])
        results["problems"][problem] = per_scheme
        write_report(runs, args.out / f"suite-{problem}")
        print(f"\n{problem}: scheme | mean score 2nd half | with transfer | top-K epochs (geo) | speed-up | "
              f"obj. at stop | obj. final | tau warm | obj. from scratch | tau scratch | mean params (n={tau} per tau)")
        for scheme, v in per_scheme.items():
            print(f"  {scheme:4} | {v['mean_score_2nd_half']:.4f} | {v['transfer_share']:.0%} | {v['epochs_gmean']:.2f} | "
                  f"{v.get('epoch_speedup_vs_baseline', 1.0):.2f}x | {v['objective_at_stop']:.4f} | "
                  f"{v['objective_final']:.4f} | {v['tau_warm']:.3f} | {v['objective_scratch']:.4f} | "
                  f"{v['tau_scratch']:.3f} | "
                  f"{v['params_mean']:,.0f}", flush=True)
    for scheme in ("lp", "lcs"):
        gm = geometric_mean([results["problems"][p][scheme]["epoch_speedup_vs_baseline"] for p in PROBLEMS])
        results[f"{scheme}_speedup_gmean"] = gm
        print(f"{scheme.upper()} top-K epochs speed-up vs baseline, geometric mean over problems: {gm:.2f}x")
    results["wall_s"] = time.time() - t0
    out = args.out / f"{time.strftime('%Y-%m-%d')}-{socket.gethostname()}-suite.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"saved {out} ({results['wall_s']:.0f} s)")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
