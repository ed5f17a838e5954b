"""Scaling of the executors on digits with candidates of ~1 s (10 epochs each):
throughput with 1 and 2 workers, dispatch overhead, and LCS-vs-baseline run-time ratio.

    python benchmarks/bench_scaling.py [CANDIDATES] [EPOCHS]

Throughput = candidates / (last finish - first start), so start-up (Ray, mpiexec) is excluded;
dispatch = time from a worker finishing one candidate to starting its next (medians).
"""

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_overhead import dispatch_gaps  # noqa: E402
from wtnas_cli.run.store import RunStore  # noqa: E402


def one_run(executor: str, workers: int, matcher: str, n: int, epochs: int, root: Path) -> dict:
    run_dir = root / f"{executor}-{workers}-{matcher}"
    args = ["run", "--executor", executor, "--max-evals", str(n), "--epochs", str(epochs), "--matcher", matcher,
            "--population", "8", "--sample", "4", "--seed", "1", "--run-dir", str(run_dir)]
    if executor == "mpi":
        cmd = ["mpiexec", "-n", str(workers + 1), "wtnas", *args]
    else:
        cmd = ["wtnas", *args, "--workers", str(workers)]
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_TMPDIR=tempfile.mkdtemp(prefix="r", dir="/tmp"))
    subprocess.run(cmd, check=True, capture_output=True, env=env, timeout=1800)
    store = RunStore(run_dir / "wtnas.sqlite")
    rows = store.candidates(status="ok")
    store.close()
    wall = max(r["finished_at"] for r in rows) - min(r["started_at"] for r in rows)
    gaps = dispatch_gaps(rows)
    return {"candidates": len(rows), "wall_s": wall, "per_min": 60 * len(rows) / wall,
            "dispatch_ms": statistics.median(gaps) * 1000 if gaps else None,
            "train_s": statistics.median(r["train_s"] for r in rows)}


def main(n: int = 24, epochs: int = 10, executors: tuple[str, ...] = ("local", "ray", "mpi")) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for executor in executors:
            for workers in (1, 2):
                for matcher in ("none", "lcs"):
                    res = one_run(executor, workers, matcher, n, epochs, root)
                    out[f"{executor}/{workers}/{matcher}"] = res
                    print(f"{executor:5} workers={workers} {matcher:4}: {res['per_min']:6.1f} candidates/min, "
                          f"wall {res['wall_s']:.1f} s, median train {res['train_s']:.2f} s, dispatch "
                          f"{res['dispatch_ms']:.2f} ms", flush=True)
            for matcher in ("none", "lcs"):
                s = out[f"{executor}/2/{matcher}"]["per_min"] / out[f"{executor}/1/{matcher}"]["per_min"]
                print(f"{executor:5} {matcher:4}: 2 workers / 1 worker throughput = {s:.2f}x")
            for workers in (1, 2):
                r = out[f"{executor}/{workers}/lcs"]["wall_s"] / out[f"{executor}/{workers}/none"]["wall_s"]
                print(f"{executor:5} workers={workers}: run time LCS / baseline = {r:.2f}")
    return out


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
