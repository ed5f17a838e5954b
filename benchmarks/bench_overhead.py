"""Per-candidate overhead of weight transfer on the digits problem, from a real search's store:
build + checkpoint read + match + copy + checkpoint write (target: median < 20 ms) and dispatch
(time from a worker freeing to its next job starting)."""

import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from wtnas_cli.config import RunConfig
from wtnas_cli.search import run_search
from wtnas_cli.store import RunStore


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


def main(max_evals: int = 120, workers: int = 2, device: str = "cpu") -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for matcher in ("lcs", "none"):
            cfg = RunConfig(max_evals=max_evals, workers=workers, matcher=matcher, seed=1, device=device,
                            run_dir=str(Path(d) / matcher))
            summary = run_search(cfg)
            store = RunStore(Path(cfg.run_dir) / "wtnas.sqlite")
            rows = store.candidates(status="ok")
            store.close()
            med = lambda key: statistics.median(r[key] or 0.0 for r in rows)
            parts = ("build_s", "ckpt_read_s", "match_s", "copy_s", "ckpt_write_s", "train_s", "eval_s")
            overhead = [sum((r[k] or 0.0) for k in ("build_s", "ckpt_read_s", "match_s", "copy_s", "ckpt_write_s"))
                        for r in rows]
            gaps = dispatch_gaps(rows)
            res = {k: med(k) for k in parts}
            res["overhead_s"] = statistics.median(overhead)
            res["dispatch_s"] = statistics.median(gaps) if gaps else None
            res["wall_s"] = summary.elapsed_s
            res["with_transfer"] = summary.transfer_rate
            out[matcher] = res
            print(f"[{matcher:4}] {len(rows)} candidates, {workers} workers, {summary.elapsed_s:.1f} s; medians (ms): "
                  + ", ".join(f"{k[:-2]} {res[k] * 1000:.2f}" for k in parts)
                  + f"; overhead {res['overhead_s'] * 1000:.1f} ms (target < 20 ms); dispatch "
                  f"{res['dispatch_s'] * 1000:.2f} ms; {res['with_transfer']:.0%} with transfer")
    print(f"run time LCS / baseline: {out['lcs']['wall_s'] / out['none']['wall_s']:.2f}")
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    main(*(int(a) for a in args[:2]), *args[2:3])
