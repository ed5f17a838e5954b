"""Does `--precision bf16` change what a search finds? Score effect against fp32, per seed.

    python benchmarks/bench_precision.py                         # digits, torch, 3 seeds x 60 candidates
    python benchmarks/bench_precision.py --backend keras --seeds 3
    python benchmarks/bench_precision.py --render FILE           # the table docs/benchmarks.md quotes

Per seed and precision, what a user runs: `wtnas run --precision P` (regularized evolution, the
default controls), then `wtnas topk --k 5` (trained in the run's precision). Recorded: the mean
search score of the second half of the candidates (the issue's measure), the recommended model's
validation and held-out test objective, the mean test objective of the trained top-K, and wall
times. The comparison pairs each seed's bf16 run with its fp32 run (paired sign-flip p-value). One
worker by default: with several, which candidate finishes first shapes the population, and two
runs of one configuration can differ by 0.1 in second-half score on this 2-core machine.
On a CPU without bfloat16 units bf16 is slower; its speed belongs to bench_gpu.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from wtnas_cli.results.comparison import recommended
from wtnas_cli.results.runs import load_run
from wtnas_cli.results.topk import TopKConfig, run_topk
from wtnas_cli.run.config import RunConfig
from wtnas_cli.search.scheduler import run_search
from wtnas_cli.util.stats import mean_std, paired_pvalue

MEASURES = (("second_half_score", "second-half mean search score (validation)"),
            ("recommended_test", "recommended model, test objective"),
            ("topk_mean_test", "mean test objective of the trained top-K"))


def one_run(run_dir: Path, seed: int, precision: str, args) -> dict:
    t = time.perf_counter()
    cfg = RunConfig(problem=args.problem, backend=args.backend, precision=precision, seed=seed,
                    max_evals=args.candidates, workers=args.workers, run_dir=str(run_dir))
    run_search(cfg, overwrite=True)
    search_s = time.perf_counter() - t
    t = time.perf_counter()
    trained = run_topk(run_dir, TopKConfig(k=args.k, seed=seed, workers=args.workers))
    topk_s = time.perf_counter() - t
    assert trained is not None
    report = load_run(run_dir)
    ok = sorted(report.ok, key=lambda r: r["id"])
    half = [r["score"] for r in ok if r["id"] >= args.candidates // 2]
    pick = recommended(trained.rows)
    tests = [r["objective_test"] for r in trained.rows if r.get("objective_test") is not None]
    return {"second_half_score": statistics.fmean(half) if half else None,
            "recommended_val": pick["objective_final"] if pick else None,
            "recommended_test": pick["objective_test"] if pick else None,
            "topk_mean_test": statistics.fmean(tests) if tests else None,
            "median_train_s": statistics.median(r["train_s"] or 0.0 for r in ok),
            "candidates": len(ok), "search_s": search_s, "topk_s": topk_s,
            "failed": [r["error"].splitlines()[0] for r in report.candidates if r["status"] == "failed" and r["error"]]}


def render(result: dict) -> str:
    s = result["settings"]
    runs = result["runs"]
    seeds = sorted({int(k) for k in runs})
    lines = [f"{s['problem']}, backend {s['backend']}, {s['candidates']} candidates, top-{s['k']}, seeds "
             f"{', '.join(map(str, seeds))} ({result['date']})", "",
             "| measure | fp32 (per seed) | bf16 (per seed) | bf16 − fp32, mean ± sd | p |", "|---|---|---|---|---|"]
    for key, label in MEASURES:
        a = [runs[str(sd)]["bf16"][key] for sd in seeds]
        b = [runs[str(sd)]["fp32"][key] for sd in seeds]
        diff = mean_std([x - y for x, y in zip(a, b)])
        lines.append(f"| {label} | {' / '.join(f'{v:.4f}' for v in b)} | {' / '.join(f'{v:.4f}' for v in a)} | "
                     f"{diff[0]:+.4f} ± {diff[1]:.4f} | {paired_pvalue(a, b):.2f} |")
    train = {p: statistics.median(runs[str(sd)][p]["median_train_s"] for sd in seeds) for p in ("fp32", "bf16")}
    lines += ["", f"median training time per candidate: fp32 {train['fp32'] * 1000:.0f} ms, bf16 "
                  f"{train['bf16'] * 1000:.0f} ms ({train['bf16'] / train['fp32']:.2f}x)"]
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", default="digits")
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--candidates", type=int, default=60)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--workers", type=int, default=1,
                    help="1 (default): each run repeats exactly, so a seed's two runs differ only in precision")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--render", type=Path, help="print the table of a result file and exit")
    args = ap.parse_args(argv)
    if args.render:
        result = json.loads(args.render.read_text())
        print(render(result))
        return result
    result = {"date": date.today().isoformat(), "runs": {},
              "settings": {k: getattr(args, k) for k in ("problem", "backend", "seeds", "candidates", "k", "workers")}}
    path = args.out / f"precision-{args.problem}-{args.backend}-{result['date']}.json"
    with tempfile.TemporaryDirectory() as d:
        for seed in range(1, args.seeds + 1):
            for precision in ("fp32", "bf16"):
                run = one_run(Path(d) / f"s{seed}-{precision}", seed, precision, args)
                result["runs"].setdefault(str(seed), {})[precision] = run
                print(f"seed {seed} {precision}: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                                               for k, v in run.items()), flush=True)
                path.write_text(json.dumps(result, indent=1))
    print(render(result))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
