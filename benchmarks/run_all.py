"""Every benchmark, one command: raw numbers to benchmarks/results/<date>-<machine>.json, figures
next to it.

    python benchmarks/run_all.py --quick          # ~10 minutes on 2 cores
    python benchmarks/run_all.py --seeds 5        # the numbers docs/benchmarks.md quotes
    python benchmarks/run_all.py --only suite     # some sections (merged into the day's JSON)

Sections: startup, matching (LP/LCS, LCS time vs length), checkpoint (throughput), overhead
(per-candidate breakdown per scheme on digits and on the Uno stand-in, whose candidates train
>= 1 s), scaling (1 vs 2 workers, baseline vs LCS), suite (paper Fig. 4/5/7/8/9, Tables III/IV).
"""

import argparse
import json
import platform
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_checkpoint  # noqa: E402
import bench_matching  # noqa: E402
import bench_overhead  # noqa: E402
import bench_scaling  # noqa: E402
import bench_startup  # noqa: E402
import figures  # noqa: E402
import suite  # noqa: E402

SECTIONS = ("startup", "matching", "checkpoint", "overhead", "scaling", "suite")


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import os

    return f"{platform.machine()}, {cpu}, {os.cpu_count()} cores, python {platform.python_version()}"


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small budgets: about 10 minutes on 2 cores")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per scheme in the suite (default 3)")
    ap.add_argument("--reanalyze", action="store_true",
                    help="suite: re-read the existing run directories (keeps the day's pairs numbers)")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)}")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        ap.error(f"--only: unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{time.strftime('%Y-%m-%d')}-{socket.gethostname()}.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    has_pairs = lambda r: any("pairs" in e for e in (r.get("suite") or {}).get("problems", {}).values())
    if args.reanalyze and not has_pairs(results):   # e.g. the suite ran before midnight: take the latest
        older = sorted((p for p in args.out.glob("*-*.json") if p != path), key=lambda p: p.stat().st_mtime)
        for p in reversed(older):
            previous = json.loads(p.read_text())
            if has_pairs(previous):
                results["suite"], results["suite_wall_s"] = previous["suite"], previous.get("suite_wall_s")
                break
    results.update({"date": time.strftime("%Y-%m-%d %H:%M"), "host": socket.gethostname(), "machine": machine()})
    quick = args.quick
    runners = {
        "startup": lambda: bench_startup.main([]),
        "matching": lambda: bench_matching.main(20 if quick else 50),
        "checkpoint": lambda: bench_checkpoint.main(5 if quick else 10),
        "overhead": lambda: {
            "digits": bench_overhead.main(60 if quick else 120),
            "uno": bench_overhead.main(16 if quick else 40, options=bench_overhead.UNO, population=8, sample=4)},
        "scaling": lambda: bench_scaling.main(12 if quick else 24, executors=("local",) if quick else
                                              ("local", "ray", "mpi")),
        "suite": lambda: suite.main((["--quick"] if quick else []) + ["--seeds", str(args.seeds)]
                                    + (["--reanalyze"] if args.reanalyze else []), out_dir=args.out),
    }
    t0 = time.time()
    for name in only:
        print(f"== {name}", flush=True)
        t = time.time()
        previous = results.get(name)
        results[name] = runners[name]()
        if name == "suite" and args.reanalyze and previous:
            for problem, entry in results[name]["problems"].items():
                if "pairs" in previous.get("problems", {}).get(problem, {}):
                    entry["pairs"] = previous["problems"][problem]["pairs"]
        results[name + "_quick"] = quick
        if not (name == "suite" and args.reanalyze):
            results[name + "_wall_s"] = time.time() - t
        path.write_text(json.dumps(results, indent=1, default=str))   # keep what is done if a later part fails
    made = figures.make_all(results, args.out / path.stem)
    print(f"saved {path} and {len(made)} figures in {args.out / path.stem}/ ({time.time() - t0:.0f} s)")
    return path


if __name__ == "__main__":
    main(sys.argv[1:])
