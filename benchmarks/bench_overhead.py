"""Per-candidate overhead of weight transfer, from real searches' stores (paper Fig. 10/11).

    python benchmarks/bench_overhead.py [CANDIDATES] [WORKERS] [DEVICE]     # digits (~0.1 s candidates)
    python benchmarks/bench_overhead.py --uno [CANDIDATES]                  # Uno stand-in (~2-3 s candidates)

Per scheme (baseline, LP, LCS): median build, checkpoint read, match, copy, train, evaluate and
checkpoint write; the overhead outside training (target on digits: median < 20 ms); the share of
candidate time that transfer adds (read + match + copy; target < 2% where candidates train >= 1 s);
checkpoint sizes; dispatch (a worker freeing → its next job starting).
"""

import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from schemes import TRANSFER_KEYS
from wtnas_cli.run.config import RunConfig
from wtnas_cli.run.job import TIMING_KEYS
from wtnas_cli.search.scheduler import run_search
from wtnas_cli.run.store import RunStore

OUTSIDE_TRAINING = ("build_s", "ckpt_read_s", "match_s", "copy_s", "ckpt_write_s")
UNO = {"problem": "uno", "synthetic": True, "samples": 1500}


def dispatch_gaps(rows: list[dict]) -> list[float]:
    by_worker = defaultdict(list)
    for r in rows:
        if r["started_at"] and r["finished_at"]:
            by_worker[r["worker"]].append((r["started_at"], r["finished_at"]))
    gaps = []
    for runs in by_worker.values():
        runs.sort()
        gaps += [start - prev_end for (_, prev_end), (start, _) in zip(runs, runs[1:])]
    return gaps


def main(max_evals: int = 120, workers: int = 2, device: str = "cpu", options: dict | None = None,
         matchers: tuple[str, ...] = ("none", "lp", "lcs"), population: int = 20, sample: int = 10) -> dict:
    options = options or {}
    out = {"problem": options.get("problem", "digits"), "options": options}
    with tempfile.TemporaryDirectory() as d:
        for matcher in matchers:
            cfg = RunConfig(max_evals=max_evals, workers=workers, matcher=matcher, seed=1, device=device,
                            population=population, sample=sample, run_dir=str(Path(d) / matcher), **options)
            summary = run_search(cfg)
            store = RunStore(Path(cfg.run_dir) / "wtnas.sqlite")
            rows = store.candidates(status="ok")
            store.close()
            kids = [r for r in rows if r["n_transferred"]] or rows   # transfer costs only where it happens
            med = lambda key, rs: statistics.median(r[key] or 0.0 for r in rs)
            res = {k: med(k, kids if k in TRANSFER_KEYS else rows) for k in TIMING_KEYS}
            total = [sum(r[k] or 0.0 for k in TIMING_KEYS) for r in kids]
            transfer = [sum(r[k] or 0.0 for k in TRANSFER_KEYS) for r in kids]
            res["overhead_s"] = statistics.median(sum(r[k] or 0.0 for k in OUTSIDE_TRAINING) for r in rows)
            res["candidate_s"] = statistics.median(total)
            res["transfer_share"] = statistics.median(t / c for t, c in zip(transfer, total))
            res["checkpoint_mb"] = statistics.median(r["checkpoint_bytes"] for r in rows) / 1e6
            gaps = dispatch_gaps(rows)
            res["dispatch_s"] = statistics.median(gaps) if gaps else None
            res["wall_s"] = summary.elapsed_s
            res["with_transfer"] = summary.transfer_rate
            out[matcher] = res
            print(f"[{out['problem']} {matcher:4}] {len(rows)} candidates, {workers} workers, {summary.elapsed_s:.1f} s; "
                  "medians (ms): " + ", ".join(f"{k[:-2]} {res[k] * 1000:.2f}" for k in TIMING_KEYS)
                  + f"; outside training {res['overhead_s'] * 1000:.1f} ms; transfer = {res['transfer_share']:.2%} of "
                  f"candidate time ({res['with_transfer']:.0%} with transfer); checkpoint {res['checkpoint_mb']:.1f} MB; "
                  f"dispatch {res['dispatch_s'] * 1000:.2f} ms", flush=True)
    for m in matchers[1:]:
        print(f"[{out['problem']}] run time {m.upper()} / baseline: {out[m]['wall_s'] / out[matchers[0]]['wall_s']:.2f}")
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--uno"]:
        main(int(args[1]) if len(args) > 1 else 30, options=UNO, population=8, sample=4)
    else:
        main(*(int(a) for a in args[:2]), *args[2:3])
