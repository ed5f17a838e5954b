"""Seconds per candidate for the torch and keras backends on digits, side by side, and a keras
worker's memory over many candidates (python benchmarks/bench_backends.py [CANDIDATES]).

Each backend evaluates the same arch_seqs in one process, as one worker does: build, one epoch,
evaluate. Resident memory (RSS) is read from /proc/self/status every 50 candidates.
"""

import statistics
import sys
import time

import numpy as np


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(n: int = 200) -> dict:
    from wtnas_builtins.problems.digits import digits_problem

    problem = digits_problem()
    rng = np.random.default_rng(0)
    seqs = [problem.space.sample(rng) for _ in range(n)]
    out = {}
    for name in ("torch", "keras"):
        if name == "torch":
            from wtnas_torch.backend import TorchBackend as B
        else:
            from wtnas_keras.backend import KerasBackend as B
        backend = B()
        backend.configure(threads=2)
        builds, trains, evals, rss = [], [], [], {}
        problem.data()
        for i, seq in enumerate(seqs):
            t = time.perf_counter()
            model = backend.build(problem, problem.space.resolve(seq), seed=i)
            t1 = time.perf_counter()
            model.train_epoch(problem.data(), seed=i)
            t2 = time.perf_counter()
            model.evaluate(problem.data())
            t3 = time.perf_counter()
            builds.append(t1 - t)
            trains.append(t2 - t1)
            evals.append(t3 - t2)
            if (i + 1) % 50 == 0 or i == 0:
                rss[i + 1] = rss_mb()
        total = [a + b + c for a, b, c in zip(builds, trains, evals)]
        out[name] = {"build_s": statistics.median(builds), "train_s": statistics.median(trains),
                     "eval_s": statistics.median(evals), "per_candidate_s": statistics.median(total), "rss_mb": rss}
        print(f"{name:5}: median per candidate {out[name]['per_candidate_s']:.3f} s (build {out[name]['build_s']:.3f}, "
              f"first epoch {out[name]['train_s']:.3f}, evaluate {out[name]['eval_s']:.3f}); RSS MB after "
              + ", ".join(f"{k}: {v:.0f}" for k, v in rss.items()), flush=True)
    print(f"keras / torch per candidate: {out['keras']['per_candidate_s'] / out['torch']['per_candidate_s']:.1f}x")
    out["keras_run"] = keras_run_rss(n)
    return out


def keras_run_rss(n: int) -> dict:
    """Worker RSS in a real `wtnas run --backend keras` with the backend's default worker recycling."""
    import sqlite3
    import subprocess
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        run = Path(d) / "run"
        subprocess.run(["wtnas", "run", "--backend", "keras", "--max-evals", str(n), "--workers", "2",
                        "--run-dir", str(run)], check=True, capture_output=True, timeout=3600)
        con = sqlite3.connect(run / "wtnas.sqlite")
        rss = [r[0] for r in con.execute("SELECT worker_rss_mb FROM candidates ORDER BY finish_seq")]
        workers = con.execute("SELECT COUNT(DISTINCT worker) FROM candidates").fetchone()[0]
        con.close()
    res = {"candidates": len(rss), "worker_processes": workers, "rss_first_mb": max(rss[:10]),
           "rss_last_50_max_mb": max(rss[-50:])}
    print(f"keras run, {len(rss)} candidates, 2 workers recycled every 50 candidates ({workers} processes): "
          f"worker RSS {res['rss_first_mb']:.0f} MB early, at most {res['rss_last_50_max_mb']:.0f} MB over the "
          f"last 50 candidates")
    return res


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
