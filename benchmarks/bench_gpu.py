"""A GPU kept busy? Steady-state candidates per second for workers per device x precision, with
the FLOP rate they reach against the device's own peak (issue #32).

    python benchmarks/bench_gpu.py                # on a GPU: 2 problems x 4 worker counts x 3 precisions,
                                                  # 18 s each (~8 min of runs: one 15-minute lease)
    python benchmarks/bench_gpu.py --cpu          # the same code path on CPU, small (the tests run it)
    python benchmarks/bench_gpu.py --problems cifar10 --workers 4,8 --precisions fp32,bf16 --seconds 30
    python benchmarks/bench_gpu.py --mps --problems cifar10 --workers 4,8 --precisions bf16   # under NVIDIA MPS

Each cell is a real `wtnas run` (the Python API's `run_search`: LCS, regularized evolution,
`--controls 0`, synthetic data) with `--devices auto --workers-per-device W --precision P` on a GPU
(`--workers W` on CPU), stopped by `--time-budget`. Measured per cell:

- steady-state candidates/s: over the second half of the finished candidates (by finish time);
- per candidate (medians): build, train and evaluation seconds;
- start-up: from the call to the first finished candidate (worker spawn, CUDA initialization);
- FLOP: forward + backward per training sample of each architecture, counted once per
  architecture with torch's FlopCounterMode (on CPU, after the run), times the training set and
  epochs. Achieved TFLOP/s = the second half's training FLOP / its wall time (the device as a
  whole), and per candidate FLOP / train_s (one training step's efficiency);
- the device's peak for each precision, measured in the same run by a matmul probe;
- GPU memory in use (nvidia-smi, sampled every 2 s; the peak).

`--mps` runs the cells under NVIDIA's Multi-Process Service (a daemon started for them and stopped
after, its pipes in a temporary directory): the workers sharing a GPU then run their kernels at the
same time instead of time-sliced (docs/executors.md). Compare with the same cells without it.

Raw numbers: benchmarks/results/gpu-<date>.json (`--cpu`: gpu-cpu-<date>.json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROBLEMS = {   # synthetic data per problem: GPU-sized, and small for --cpu
    "cifar10": {"gpu": 20000, "cpu": 100},
    "uno": {"gpu": 20000, "cpu": 100},
}


def peak_tflops(device: str, precision: str, n: int, seconds: float = 1.0) -> float:
    """Dense matmul rate on `device` in `precision` (tf32: float32 inputs, TensorFloat-32 allowed)."""
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    reps, t0 = 0, time.perf_counter()
    while True:
        a @ b
        reps += 1
        if device == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and reps >= 3:
            break
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    return 2 * n ** 3 * reps / elapsed / 1e12


def flops_per_sample(problem, arch_seq, batch: int = 16) -> float:
    """Forward + backward FLOP of one training sample of this architecture (torch, on CPU)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from wtnas_cli.model.problem import as_inputs
    from wtnas_torch.backend import TorchModel

    data = problem.data()
    model = TorchModel(problem, problem.space.resolve(list(arch_seq)), torch.device("cpu"))
    xs = tuple(torch.from_numpy(a[:batch].astype("float32")) for a in as_inputs(data.x_train))
    dtype = torch.int64 if problem.loss == "categorical_crossentropy" else torch.float32
    y = torch.as_tensor(data.y_train[:batch], dtype=dtype)
    counter = FlopCounterMode(display=False)
    with counter:
        model._loss(model(xs, logits=problem.loss == "categorical_crossentropy"), y).backward()
    return counter.get_total_flops() / batch


class MemorySampler:
    """The peak GPU memory in use (MiB, all processes) while a cell runs; None without nvidia-smi."""

    def __init__(self) -> None:
        self.peak: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(2.0):
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=10).stdout
                used = sum(float(v) for v in out.split())
                self.peak = max(self.peak or 0.0, used)
            except (OSError, subprocess.SubprocessError, ValueError):
                return

    def __enter__(self) -> "MemorySampler":
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()


class MpsDaemon:
    """NVIDIA's Multi-Process Service for the cells run inside: started with its pipe and log
    directories in a temporary directory (the workers inherit them through the environment)."""

    def __enter__(self) -> "MpsDaemon":
        if shutil.which("nvidia-cuda-mps-control") is None:
            raise SystemExit("--mps: nvidia-cuda-mps-control is not on PATH (it comes with the NVIDIA driver)")
        self.dir = Path(tempfile.mkdtemp(prefix="wtnas-mps-"))
        os.environ["CUDA_MPS_PIPE_DIRECTORY"] = str(self.dir / "pipe")
        os.environ["CUDA_MPS_LOG_DIRECTORY"] = str(self.dir / "log")
        subprocess.run(["nvidia-cuda-mps-control", "-d"], check=True)
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", text=True, check=False)
        for var in ("CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_LOG_DIRECTORY"):
            os.environ.pop(var, None)
        shutil.rmtree(self.dir, ignore_errors=True)


def run_cell(work: Path, problem: str, samples: int, workers: int, precision: str, seconds: float, gpu: bool,
             flop_cache: dict, mps: bool = False) -> dict:
    """One `wtnas run` stopped by its time budget, and what it achieved in its second half."""
    from wtnas_cli.plugins.manager import default_plugins
    from wtnas_cli.run.config import RunConfig
    from wtnas_cli.run.store import RunStore
    from wtnas_cli.search.scheduler import run_search

    run_dir = work / f"{problem}-w{workers}-{precision}{'-mps' if mps else ''}"
    placement = dict(devices="auto", workers_per_device=workers, device="cuda") if gpu else dict(workers=workers)
    cfg = RunConfig(problem=problem, options={"problem": {"synthetic": True, "samples": samples}}, precision=precision,
                    max_evals=100_000, time_budget=seconds, controls=0.0, seed=0, run_dir=str(run_dir), **placement)
    t0 = time.time()
    with MemorySampler() as memory:
        run_search(cfg, overwrite=True)
    store = RunStore(run_dir / "wtnas.sqlite")
    try:
        rows = sorted((r for r in store.candidates(status="ok")), key=lambda r: r["finished_at"])
    finally:
        store.close()
    out = {"problem": problem, "workers_per_device" if gpu else "workers": workers, "precision": precision, "mps": mps,
           "seconds": seconds, "candidates": len(rows), "gpu_memory_peak_mib": memory.peak,
           "startup_s": (rows[0]["finished_at"] - t0) if rows else None}
    half = rows[len(rows) // 2:]
    if len(half) < 3:
        return {**out, "note": "too few candidates for a steady state: raise --seconds"}
    window = half[-1]["finished_at"] - half[0]["finished_at"]
    plugins = default_plugins()
    prob = plugins.registry.create("problem", problem, synthetic=True, samples=samples)
    n_train = len(prob.data().y_train)
    flop = []
    for r in half:
        key = (problem, samples, tuple(r["arch_seq"]))
        if key not in flop_cache:
            flop_cache[key] = flops_per_sample(prob, r["arch_seq"])
        flop.append(flop_cache[key] * n_train * (r["epochs"] or 1))
    out.update({
        "candidates_per_s": (len(half) - 1) / window if window > 0 else None,
        "build_s": statistics.median(r["build_s"] or 0.0 for r in half),
        "train_s": statistics.median(r["train_s"] or 0.0 for r in half),
        "eval_s": statistics.median(r["eval_s"] or 0.0 for r in half),
        "flop_per_candidate": statistics.mean(flop),
        "achieved_tflops": sum(flop[1:]) / window / 1e12 if window > 0 else None,
        "step_tflops": statistics.median(f / (r["train_s"] or float("inf")) for f, r in zip(flop, half)) / 1e12,
    })
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true",
                    help="the CPU code path, small: cifar10 on 100 images, workers 1,2; fp32, bf16; 12 s cells")
    ap.add_argument("--problems", default=None, help="comma-separated, of: " + ", ".join(PROBLEMS))
    ap.add_argument("--workers", default=None, help="workers per device (CPU: workers), e.g. 1,2,4,8")
    ap.add_argument("--precisions", default=None, help="e.g. fp32,tf32,bf16 (tf32 needs a GPU)")
    ap.add_argument("--seconds", type=float, default=None, help="time budget of each cell's search")
    ap.add_argument("--mps", action="store_true", help="run the cells under NVIDIA MPS (a GPU only)")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    import torch

    gpu = not args.cpu
    if gpu and not torch.cuda.is_available():
        ap.error("torch sees no CUDA GPU: run on a GPU machine, or pass --cpu for the CPU code path")
    if args.mps and not gpu:
        ap.error("--mps needs a GPU (NVIDIA's Multi-Process Service); drop --cpu")
    problems = (args.problems or ("cifar10" if args.cpu else "cifar10,uno")).split(",")
    workers = [int(w) for w in (args.workers or ("1,2" if args.cpu else "1,2,4,8")).split(",")]
    precisions = (args.precisions or ("fp32,bf16" if args.cpu else "fp32,tf32,bf16")).split(",")
    seconds = args.seconds or (12.0 if args.cpu else 18.0)
    unknown = set(problems) - set(PROBLEMS)
    if unknown:
        ap.error(f"--problems: unknown {', '.join(sorted(unknown))} (known: {', '.join(PROBLEMS)})")
    device = "cuda" if gpu else "cpu"
    result: dict = {"date": time.strftime("%Y-%m-%d"), "device": torch.cuda.get_device_name(0) if gpu else "cpu",
                    "torch": torch.__version__, "seconds_per_cell": seconds, "mps": args.mps, "peak_tflops": {},
                    "cells": []}
    for precision in precisions:
        result["peak_tflops"][precision] = peak_tflops(device, precision, 8192 if gpu else 512)
        print(f"peak {precision}: {result['peak_tflops'][precision]:.2f} TFLOP/s (matmul probe on {device})", flush=True)
    work = Path(tempfile.mkdtemp(prefix="wtnas-gpu-"))
    try:
        with MpsDaemon() if args.mps else contextlib.nullcontext():
            _run_cells(result, work, problems, workers, precisions, seconds, gpu, args.mps)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"gpu-{'cpu-' if args.cpu else ''}{'mps-' if args.mps else ''}{result['date']}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"raw numbers: {path}")
    return result


def _run_cells(result: dict, work: Path, problems: list[str], workers: list[int], precisions: list[str],
               seconds: float, gpu: bool, mps: bool) -> None:
    flop_cache: dict = {}
    for problem in problems:
        for w in workers:
            for precision in precisions:
                cell = run_cell(work, problem, PROBLEMS[problem]["gpu" if gpu else "cpu"], w, precision, seconds,
                                gpu, flop_cache, mps)
                peak = result["peak_tflops"][precision]
                if cell.get("achieved_tflops") is not None:
                    cell["share_of_peak"] = cell["achieved_tflops"] / peak
                    cell["step_share_of_peak"] = cell["step_tflops"] / peak
                result["cells"].append(cell)
                print(f"{problem} {w} {'per device' if gpu else 'workers'} {precision}{' MPS' if mps else ''}: "
                      f"{_n(cell.get('candidates_per_s'))} candidates/s (train {_n(cell.get('train_s'))} s), "
                      f"{_n(cell.get('achieved_tflops'))} TFLOP/s = {_pct(cell.get('share_of_peak'))} of peak, "
                      f"step {_pct(cell.get('step_share_of_peak'))}, start-up {_n(cell.get('startup_s'))} s"
                      + (f", GPU memory {cell['gpu_memory_peak_mib']:.0f} MiB" if cell.get("gpu_memory_peak_mib")
                         else "") + (f" ({cell['note']})" if cell.get("note") else ""), flush=True)


def _n(x, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def _pct(x) -> str:
    return "-" if x is None else f"{x:.1%}"


if __name__ == "__main__":
    main()
