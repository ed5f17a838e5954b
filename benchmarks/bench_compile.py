"""Does `torch.compile` pay for itself when every candidate is a new architecture?

    python benchmarks/bench_compile.py                                  # digits and cifar10 (synthetic), CPU
    python benchmarks/bench_compile.py --device cuda --mode reduce-overhead   # on a GPU: CUDA graphs too

A NAS run trains each architecture once, for one or a few epochs, so whatever compiling costs is
paid again by every candidate. Per problem, for `--candidates` random architectures (each new to
the process, as in a search), the torch backend's real training epoch is timed three ways: eager;
compiled (`nn.Module.compile`, the first epoch including compilation); and the compiled model's
second epoch (steady state). Reported: median seconds, the compile overhead per candidate, the
per-epoch saving, and the epochs a candidate would need to train before compiling breaks even.
The compiled model's predictions are compared with the same weights run eagerly (validation split).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

PROBLEMS = {"digits": {}, "cifar10": {"synthetic": True, "samples": 2000}}


def _epoch(model, data, seed: int) -> float:
    t = time.perf_counter()
    model.train_epoch(data, seed)
    if model.device.type == "cuda":
        import torch

        torch.cuda.synchronize()
    return time.perf_counter() - t


def measure(problem_name: str, options: dict, args) -> dict:
    import torch
    from wtnas_cli.plugins.manager import default_plugins
    from wtnas_torch.backend import TorchBackend

    problem = default_plugins().registry.create("problem", problem_name, **options)
    data = problem.data()
    backend = TorchBackend()
    backend.configure(device=args.device, precision=args.precision)
    rng = np.random.default_rng(args.seed)
    rows = []
    for i in range(args.candidates):
        arch = problem.space.resolve(problem.space.sample(rng))
        eager = backend.build(problem, arch, seed=i)
        eager_s = _epoch(eager, data, seed=1)
        compiled = backend.build(problem, arch, seed=i)
        torch._dynamo.reset()   # every candidate is a new architecture: nothing cached from the last one
        compiled.compile(mode=args.mode)
        first_s = _epoch(compiled, data, seed=1)
        second_s = _epoch(compiled, data, seed=2)
        eager_second_s = _epoch(eager, data, seed=2)
        eager.set_tensors(dict(enumerate(compiled.get_tensors())))   # the same weights, run eagerly
        gap = float(np.max(np.abs(compiled.predict(data.x_val) - eager.predict(data.x_val))))
        rows.append({"params": arch.num_params, "eager_s": eager_s, "eager_second_s": eager_second_s,
                     "compiled_first_s": first_s, "compiled_second_s": second_s, "max_abs_diff": gap})
        print(f"{problem_name} #{i}: {arch.num_params} params, eager {eager_s:.3f}/{eager_second_s:.3f} s, "
              f"compiled {first_s:.3f}/{second_s:.3f} s (first/second epoch), |diff| {gap:.1e}", flush=True)
    med = lambda key: statistics.median(r[key] for r in rows)
    overhead = med("compiled_first_s") - med("compiled_second_s")
    saving = med("eager_second_s") - med("compiled_second_s")
    return {"rows": rows, "eager_s": med("eager_second_s"), "compiled_first_s": med("compiled_first_s"),
            "compiled_steady_s": med("compiled_second_s"), "compile_overhead_s": overhead,
            "saving_per_epoch_s": saving, "break_even_epochs": overhead / saving if saving > 0 else None,
            "one_epoch_ratio": med("compiled_first_s") / med("eager_s")}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", default="digits,cifar10")
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--mode", default="default", help="torch.compile mode (reduce-overhead: CUDA graphs on a GPU)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    result = {"date": date.today().isoformat(), "device": args.device, "precision": args.precision,
              "mode": args.mode, "problems": {}}
    for name in args.problems.split(","):
        result["problems"][name] = measure(name, PROBLEMS.get(name, {}), args)
    for name, r in result["problems"].items():
        even = "never" if r["break_even_epochs"] is None else f"{r['break_even_epochs']:.0f} epochs"
        print(f"{name}: eager {r['eager_s']:.3f} s/epoch; compiled first epoch {r['compiled_first_s']:.3f} s "
              f"({r['one_epoch_ratio']:.1f}x eager), then {r['compiled_steady_s']:.3f} s; compile overhead "
              f"{r['compile_overhead_s']:.2f} s per candidate; breaks even after {even}")
    path = args.out / f"compile-{args.device}-{args.mode}-{result['date']}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
