"""Per-candidate time and worker memory of the torch and Keras backends, side by side.

    python benchmarks/bench_backends.py [--candidates 500] [--uno-candidates 8] [--run-evals 200]
                                        [--variants torch,keras,keras-tensorflow] [--jax 10] [--out F]

Every backend runs in its own process (Keras fixes its engine per process) and evaluates the same
arch_seqs in the same order, as one worker does: build, first epoch, evaluate. Reported: medians
of each phase on digits (the embedded default problem, ~0.1-0.4 s candidates) and on the Uno
stand-in (`uno --synthetic --samples 1500`: 4 inputs, 6-15 M parameters, ~2 s candidates), the
process's resident memory (RSS) after 1, 100, ... candidates with no worker recycling, and the
wall time of the default `wtnas run --backend B --max-evals 200 --workers 2` with the backend's
own recycling. `--jax N` also times Keras' standard path (Functional model, compile, fit) on
JAX for N digits candidates, an engine wtnas does not offer (docs/benchmarks.md says why).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("torch", "keras", "keras-tensorflow")
UNO = {"synthetic": True, "samples": 1500}
RSS_AT = (1, 100, 200, 300, 400, 500)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _seqs(problem, n: int) -> list:
    import numpy as np

    rng = np.random.default_rng(0)
    return [problem.space.sample(rng) for _ in range(n)]


def child(backend_name: str, problem_name: str, n: int, options: dict) -> dict:
    """Runs in a fresh process: `n` candidates of one problem on one backend."""
    from wtnas_cli.plugins.manager import load_plugins

    reg = load_plugins().registry
    problem = reg.create("problem", problem_name, **options)
    data = problem.data()
    backend = reg.create("backend", backend_name)
    backend.configure(threads=2)
    phases, rss = {"build": [], "train": [], "evaluate": []}, {}
    for i, seq in enumerate(_seqs(problem, n)):
        t0 = time.perf_counter()
        model = backend.build(problem, problem.space.resolve(seq), seed=i)
        t1 = time.perf_counter()
        model.train_epoch(data, seed=i)
        t2 = time.perf_counter()
        model.evaluate(data)
        t3 = time.perf_counter()
        for key, value in zip(phases, (t1 - t0, t2 - t1, t3 - t2)):
            phases[key].append(value)
        if i + 1 in RSS_AT or i + 1 == n:
            rss[i + 1] = round(rss_mb(), 1)
        del model
    return {"phases": phases, "rss_mb": rss}


def child_jax_fit(n: int) -> dict:
    """Keras' standard path on JAX: Functional model, compile, fit, direct calls to predict."""
    os.environ["KERAS_BACKEND"] = "jax"
    import keras
    import numpy as np
    from wtnas_builtins.problems.digits import digits_problem
    from wtnas_keras.backend import _keras_layer

    from wtnas_cli.model import ops as O

    problem = digits_problem()
    data = problem.data()
    phases = {"build": [], "train": [], "evaluate": []}
    for i, seq in enumerate(_seqs(problem, n)):
        t0 = time.perf_counter()
        keras.backend.clear_session(free_memory=False)
        keras.utils.set_random_seed(i)
        arch = problem.space.resolve(seq)
        values = {a.name: keras.Input(shape=a.shape, name=a.name) for a in arch.inputs}
        inputs = list(values.values())
        for layer in arch.layers:
            args = [values[name] for name in layer.inputs]
            values[layer.name] = _keras_layer(keras, layer)(args if isinstance(layer.op, O.Merge) else args[0])
        model = keras.Model(inputs, values[arch.output])
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        t1 = time.perf_counter()
        model.fit(data.x_train, data.y_train, batch_size=problem.batch_size, epochs=1, verbose=0)
        t2 = time.perf_counter()
        np.asarray(model(data.x_val, training=False))
        t3 = time.perf_counter()
        for key, value in zip(phases, (t1 - t0, t2 - t1, t3 - t2)):
            phases[key].append(value)
    return {"phases": phases, "rss_mb": {n: round(rss_mb(), 1)}}


def _in_child(args: list[str], timeout: float = 3600) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(args)], capture_output=True, text=True,
                         timeout=timeout, env=_env())
    if out.returncode != 0:
        raise RuntimeError(f"{args}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _env() -> dict:
    paths = [str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))


def _summary(raw: dict) -> dict:
    ph = raw["phases"]
    total = [a + b + c for a, b, c in zip(ph["build"], ph["train"], ph["evaluate"])]
    return {"candidates": len(total), "per_candidate_s": statistics.median(total),
            **{f"{k}_s": statistics.median(v) for k, v in ph.items()}, "rss_mb": raw["rss_mb"]}


def default_run(backend: str, evals: int) -> dict:
    """Wall time of `wtnas run --backend B --max-evals N --workers 2` and its workers' memory."""
    with tempfile.TemporaryDirectory() as d:
        run = Path(d) / "run"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "wtnas_cli", "run", "--backend", backend, "--max-evals", str(evals),
                        "--workers", "2", "--run-dir", str(run)], check=True, capture_output=True, timeout=7200,
                       env=_env())
        wall = time.perf_counter() - t
        con = sqlite3.connect(run / "wtnas.sqlite")
        rss = [r[0] for r in con.execute("SELECT worker_rss_mb FROM candidates ORDER BY finish_seq")]
        workers = con.execute("SELECT COUNT(DISTINCT worker) FROM candidates").fetchone()[0]
        con.close()
    return {"evals": evals, "wall_s": wall, "worker_processes": workers, "worker_rss_first_10_max_mb": max(rss[:10]),
            "worker_rss_last_50_max_mb": max(rss[-50:])}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--candidates", type=int, default=500, help="digits candidates per backend")
    p.add_argument("--uno-candidates", type=int, default=8, help="Uno stand-in candidates per backend")
    p.add_argument("--run-evals", type=int, default=200, help="candidates of each default `wtnas run` (0: skip)")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--jax", type=int, default=0, help="also time Keras' fit on JAX for this many digits candidates")
    p.add_argument("--out", help="write the numbers as JSON here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(child_jax_fit(spec[1]) if spec[0] == "jax-fit" else child(*spec)))
        return {}
    variants = args.variants.split(",")
    out: dict = {"machine": f"{os.cpu_count()} cores", "digits": {}, "uno": {}, "runs": {}}
    for problem, n, options in (("digits", args.candidates, {}), ("uno", args.uno_candidates, UNO)):
        if n <= 0:
            continue
        for name in variants:
            s = out[problem][name] = _summary(_in_child([name, problem, n, options]))
            print(f"{problem:6} {name:17} per candidate {s['per_candidate_s']:.3f} s (build {s['build_s']:.3f}, "
                  f"first epoch {s['train_s']:.3f}, evaluate {s['evaluate_s']:.3f}); RSS MB after "
                  + ", ".join(f"{k}: {v:.0f}" for k, v in s["rss_mb"].items()), flush=True)
        if "torch" in out[problem]:
            base = out[problem]["torch"]["per_candidate_s"]
            ratios = {k: v["per_candidate_s"] / base for k, v in out[problem].items() if k != "torch"}
            out[problem]["ratio_to_torch"] = ratios
            print(f"{problem:6} per candidate / torch: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()),
                  flush=True)
    if args.jax:
        s = out["digits"]["keras-jax-fit"] = _summary(_in_child(["jax-fit", args.jax]))
        print(f"digits keras-jax-fit      per candidate {s['per_candidate_s']:.3f} s (build {s['build_s']:.3f}, "
              f"first epoch {s['train_s']:.3f}, evaluate {s['evaluate_s']:.3f})", flush=True)
    for name in variants if args.run_evals else ():
        r = out["runs"][name] = default_run(name, args.run_evals)
        print(f"wtnas run --backend {name} --max-evals {r['evals']} --workers 2: {r['wall_s']:.1f} s wall, "
              f"{r['worker_processes']} worker processes, worker RSS {r['worker_rss_first_10_max_mb']:.0f} MB early, "
              f"at most {r['worker_rss_last_50_max_mb']:.0f} MB over the last 50", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
