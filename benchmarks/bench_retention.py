"""Bounded disk: `--keep needed` against `--keep all` on a long digits search.

    python benchmarks/bench_retention.py            # 1,000 candidates, 1 worker (~10 min on 2 cores)
    python benchmarks/bench_retention.py --nearest  # random + nearest with --max-checkpoints (~3 min)

One worker makes the search deterministic on CPU, so the two runs must agree candidate by candidate
(arch_seq, parent, provider, score). Printed: checkpoints and bytes written vs kept, the most
checkpoints on disk at any moment (from the store's finish times and deletion events) against the
bound population + keep-top + tau reserve + workers, and whether the sequences are identical.
With `--nearest`: a random search with the `nearest` selector (which may pick any checkpoint) under
`--keep all` and under `--keep needed --max-checkpoints N`: what the cap does to transfer (share of
candidates with a provider, mean provider distance d, mean score of the second half).
Raw numbers: benchmarks/results/retention-<date>.json (retention-nearest-<date>.json).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

from wtnas_cli.run.config import RunConfig
from wtnas_cli.search.scheduler import run_search


def rows_and_events(run_dir: Path) -> tuple[list[dict], list[dict]]:
    con = sqlite3.connect(run_dir / "wtnas.sqlite")
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM candidates ORDER BY id")]
    events = [dict(r) for r in con.execute("SELECT * FROM events WHERE kind = 'checkpoint_deleted'")]
    con.close()
    return rows, events


def peak_on_disk(rows: list[dict], deletions: list[dict]) -> int:
    """Most checkpoints present at once: +1 at each write (finish), -1 at each deletion."""
    steps = [(r["finished_at"], 1) for r in rows if r["status"] == "ok" and r["checkpoint_bytes"]]
    steps += [(e["time"], -1) for e in deletions]
    level = peak = 0
    for _, delta in sorted(steps, key=lambda s: (s[0], s[1])):   # a deletion at the same instant counts first
        level += delta
        peak = max(peak, level)
    return peak


def nearest(args) -> dict:
    """random + nearest, every checkpoint kept vs a cap on their number."""
    import statistics

    out: dict = {}
    for label, extra in (("all", {"keep": "all"}), (f"cap {args.cap}", {"max_checkpoints": args.cap})):
        cfg = RunConfig(strategy="random", selector="nearest", max_evals=args.nearest_evals, workers=1, seed=3,
                        keep_top=10, tau_reserve=10, run_dir=str(args.work / f"nearest-{extra.get('keep', 'cap')}"),
                        **extra)
        run_search(cfg, overwrite=True)
        rows, deletions = rows_and_events(Path(cfg.run_dir))
        ok = sorted((r for r in rows if r["status"] == "ok"), key=lambda r: r["finish_seq"])
        warm = [r for r in ok if r["n_transferred"]]
        second = ok[len(ok) // 2:]
        out[label] = {"transfer_share": len(warm) / len(ok), "mean_distance": statistics.mean(r["distance"] for r in warm),
                      "mean_score_2nd_half": statistics.mean(r["score"] for r in second),
                      "kept": sum(not r["checkpoint_deleted"] for r in ok), "peak_on_disk": peak_on_disk(rows, deletions)}
        o = out[label]
        print(f"random + nearest, keep {label:7}: {o['transfer_share']:.0%} with a provider, mean d "
              f"{o['mean_distance']:.2f}, mean score 2nd half {o['mean_score_2nd_half']:.4f}, "
              f"{o['kept']} checkpoints kept (peak {o['peak_on_disk']})", flush=True)
    path = args.out / f"retention-nearest-{time.strftime('%Y-%m-%d')}.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"saved {path}")
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evals", type=int, default=1000)
    ap.add_argument("--nearest", action="store_true", help="the nearest-selector experiment instead")
    ap.add_argument("--nearest-evals", type=int, default=300)
    ap.add_argument("--cap", type=int, default=40, help="--max-checkpoints for the nearest experiment")
    ap.add_argument("--reuse-all", action="store_true", help="keep a finished --keep all run in --work/all "
                                                             "instead of running it again")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--work", type=Path, default=Path("/tmp/wtnas-retention"))
    args = ap.parse_args(argv)
    if args.nearest:
        return nearest(args)
    common = dict(max_evals=args.evals, workers=1, seed=11, population=20, sample=10, keep_top=50, tau_reserve=30)
    out: dict = {"config": common}
    for keep in ("all", "needed"):
        t = time.perf_counter()
        if not (keep == "all" and args.reuse_all and (args.work / keep / "wtnas.sqlite").is_file()):
            run_search(RunConfig(run_dir=str(args.work / keep), keep=keep, **common), overwrite=True)
        rows, deletions = rows_and_events(args.work / keep)
        written = [r for r in rows if r["status"] == "ok" and r["checkpoint_bytes"]]
        kept = [r for r in written if not r["checkpoint_deleted"]]
        out[keep] = {"wall_s": time.perf_counter() - t, "written": len(written), "kept": len(kept),
                     "written_mb": sum(r["checkpoint_bytes"] for r in written) / 1e6,
                     "kept_mb": sum(r["checkpoint_bytes"] for r in kept) / 1e6,
                     "files": len(list((args.work / keep / "checkpoints").glob("*.h5"))),
                     "peak_on_disk": peak_on_disk(rows, deletions),
                     "sequence": [[r["arch_seq"], r["parent_id"], r["provider_id"], r["score"]] for r in rows]}
    bound = common["population"] + common["keep_top"] + common["tau_reserve"] + common["workers"]
    out["bound"] = bound
    out["identical"] = out["all"]["sequence"] == out["needed"]["sequence"]
    for keep in ("all", "needed"):
        o = out[keep]
        print(f"--keep {keep:6}: {o['kept']} of {o['written']} checkpoints kept ({o['kept_mb']:.1f} of "
              f"{o['written_mb']:.1f} MB), {o['files']} files, at most {o['peak_on_disk']} on disk at once, "
              f"{o['wall_s']:.0f} s")
    print(f"bound population + keep-top + tau reserve + workers = {bound}; "
          f"peak {out['needed']['peak_on_disk']} ({'within' if out['needed']['peak_on_disk'] <= bound else 'OVER'}); "
          f"sequences identical: {out['identical']}")
    for keep in ("all", "needed"):
        out[keep].pop("sequence")
    path = args.out / f"retention-{time.strftime('%Y-%m-%d')}.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"saved {path}")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
