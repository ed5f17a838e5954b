"""What lineage-bias controls cost and what they show, to choose `--controls`' default.

    python benchmarks/bench_controls.py [--evals 200] [--fractions 0,0.05,0.1,0.2] [--seeds 2]

The default search (digits, evolution, LCS, 2 workers) with each share of controls: wall time
against no controls, the controls' share of worker time, and the lift and tau they measure.
Writes benchmarks/results/controls-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from wtnas_cli.run.config import RunConfig
from wtnas_cli.results.runs import load_run
from wtnas_cli.search.scheduler import run_search


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evals", type=int, default=200)
    ap.add_argument("--fractions", default="0,0.05,0.1,0.2")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    a = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(a.seeds):
            for f in (float(x) for x in a.fractions.split(",")):
                run_dir = Path(tmp) / f"s{seed}-f{f}"
                t = time.perf_counter()
                summary = run_search(RunConfig(max_evals=a.evals, workers=2, seed=seed, controls=f, run_dir=str(run_dir)))
                wall = time.perf_counter() - t
                report = load_run(run_dir)
                st = report.control_stats
                rows.append({"seed": seed, "fraction": f, "wall_s": wall, "controls": len(report.controls),
                             "cost_share": report.control_cost if report.controls else 0.0, "lift": st.lift,
                             "lift_ci": st.lift_ci, "tau": st.tau, "best": summary.best["score"]})
                print(f"seed {seed} controls {f:4.2f}: {wall:6.1f} s, {len(report.controls):3d} controls, "
                      f"cost {rows[-1]['cost_share']:.1%} of worker time, lift {st.lift:+.4f} ± {st.lift_ci:.4f}, "
                      f"tau {st.tau:.2f}", flush=True)
    by_f: dict[float, list] = {}
    for r in rows:
        by_f.setdefault(r["fraction"], []).append(r)
    base = statistics.median(r["wall_s"] for r in by_f[0.0]) if 0.0 in by_f else None
    summary_rows = {}
    for f, rs in by_f.items():
        wall = statistics.median(r["wall_s"] for r in rs)
        summary_rows[str(f)] = {"wall_s": wall, "wall_vs_none": wall / base if base else None,
                                "cost_share": statistics.median(r["cost_share"] for r in rs),
                                "controls": statistics.median(r["controls"] for r in rs)}
        print(f"controls {f:4.2f}: median wall {wall:.1f} s ({summary_rows[str(f)]['wall_vs_none'] or 1:.2f}x), "
              f"cost {summary_rows[str(f)]['cost_share']:.1%}, {summary_rows[str(f)]['controls']:.0f} controls")
    out = {"date": time.strftime("%Y-%m-%d %H:%M"), "evals": a.evals, "seeds": a.seeds, "runs": rows,
           "summary": summary_rows}
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"controls-{time.strftime('%Y-%m-%d')}.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"saved {path}")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
