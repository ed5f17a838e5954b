"""What the scheduler itself costs: `wtnas run` with a backend that trains nothing.

    python benchmarks/bench_scheduler.py                       # 100,000 candidates, evolution + parent
    python benchmarks/bench_scheduler.py --scheme nearest      # random + nearest (every checkpoint kept)
    python benchmarks/bench_scheduler.py --candidates 3000     # a quick look
    python benchmarks/bench_scheduler.py --scheme asha --candidates 20000   # with promotions (per job)

The search is the real CLI (`python -m wtnas_cli run`, the live progress line included) on a tiny
dense space (benchmarks/spaces/scheduler.toml) with the `null` backend (benchmarks/nulltrain.py,
installed as a throwaway plugin distribution): workers build the real shape sequence, read and
match their provider's checkpoint, "train" by sleeping `--train-ms` (a worker waiting on a GPU)
and write a real HDF5 checkpoint. By default the scheduler runs on a core of its own and the workers
on the others (`--no-pin`: anywhere): their checkpoint I/O would otherwise preempt it, which a
scheduler on a cluster node does not suffer, so what is measured is the scheduler's own work per
candidate: strategy, selector, store, retention,
controls (default share), executor messages. Every 2 s the benchmark samples the scheduler
process's own CPU time (utime + stime, workers excluded) and resident memory, and the number of
finished candidates from the run store (a read-only reader on the live run).

Printed: CPU ms per candidate (median over windows of the steady part: after the first 5%),
memory at 10% / 50% / 100% of the run, candidates per second, and what one scheduler can feed
(GPUs kept busy at a given candidate training time). Separately, `nearest` queries over 100,000
checkpointed candidates (the selector alone, in process). Targets (issue #13): <= 1 ms CPU per
candidate, flat memory, <= 5 ms per nearest query. Raw numbers:
benchmarks/results/scheduler-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SPACE = HERE / "spaces" / "scheduler.toml"
TICK = os.sysconf("SC_CLK_TCK")
SCHEMES = {
    "parent": ["--strategy", "evolution", "--selector", "parent", "--matcher", "lcs"],
    "nearest": ["--strategy", "random", "--selector", "nearest", "--matcher", "lcs"],
    # successive halving: promotions are jobs too (a rung's top third trained on), so its cost is
    # per job: candidates and promotions
    "asha": ["--strategy", "asha", "--selector", "nearest", "--matcher", "lcs"],
}


def write_data(path: Path, rows: int = 64, seed: int = 0) -> Path:
    """A tiny CSV for the space's `file` problem (the null backend never looks at it)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 8))
    labels = (x[:, 0] > 0).astype(int)
    lines = [",".join([f"f{i}" for i in range(8)] + ["label"])]
    lines += [",".join([f"{v:.4f}" for v in row] + [str(label)]) for row, label in zip(x, labels)]
    path.write_text("\n".join(lines) + "\n")
    return path


def process_sample(pid: int) -> tuple[float, float]:
    """(CPU seconds of the process itself, resident MB)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK       # utime, stime (fields 14, 15)
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    return cpu, rss


def placement(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """(scheduler's cores, workers' cores): with `pin`, the scheduler gets the first core of this
    process's set to itself and the workers the others, as on a cluster node where workers wait
    on GPUs; otherwise (or with a single core) every process runs anywhere."""
    cores = sorted(os.sched_getaffinity(0))
    if not pin or len(cores) < 2:
        return None, None
    return {cores[0]}, set(cores[1:])


def wakeup_cost(sleep_ms: float = 5.0, reps: int = 300) -> dict:
    """The same small piece of scheduler work (regularized evolution's `ask`) timed back to back
    and after the process slept `sleep_ms`, as the scheduler does between results: on a virtual
    machine whose idle core is handed back to the host, the woken process finds its caches cold."""
    sys.path.insert(0, str(HERE.parent / "plugins"))
    from wtnas_builtins.strategies import RegularizedEvolution
    from wtnas_cli.model.spacefile import parse_space

    space, _ = parse_space(SPACE)
    rng = np.random.default_rng(0)
    strategy = RegularizedEvolution(space, seed=0)
    for cid in range(strategy.population_size):
        strategy.tell(cid, space.sample(rng), float(rng.random()))
    timings = {}
    for label, pause in (("back_to_back_us", 0.0), ("after_sleep_us", sleep_ms / 1000)):
        times = []
        for _ in range(reps):
            if pause:
                time.sleep(pause)
            t = time.perf_counter()
            strategy.ask()
            times.append(time.perf_counter() - t)
        timings[label] = statistics.median(times) * 1e6
    return {"sleep_ms": sleep_ms, **timings}


def finished(store: Path) -> int | None:
    """Finished jobs (candidates, and asha's promotions), read by a second connection while the
    scheduler writes."""
    if not store.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT (SELECT COUNT(*) FROM candidates WHERE finish_seq IS NOT NULL)"
                               " + (SELECT COUNT(*) FROM rungs WHERE rung > 0 AND finish_seq IS NOT NULL)").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return None


def run_search(args, work: Path, scheme: str) -> dict:
    total = args.nearest_candidates if scheme == "nearest" and args.nearest_candidates else args.candidates
    plugin_dir = work / "plugin"
    sys.path.insert(0, str(HERE))
    import nulltrain

    nulltrain.install(plugin_dir)
    run_dir = work / f"run-{scheme}"
    shutil.rmtree(run_dir, ignore_errors=True)
    data = write_data(work / "data.csv")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(plugin_dir), os.environ.get("PYTHONPATH")) if p),
               WTNAS_NULLTRAIN_MS=str(args.train_ms))
    scheduler_cpus, worker_cpus = placement(args.pin)
    if worker_cpus:
        env["WTNAS_NULLTRAIN_CPUS"] = ",".join(map(str, sorted(worker_cpus)))
    cmd = [sys.executable, "-m", "wtnas_cli", "run", "--space", str(SPACE), "--data", str(data), "--backend", "null",
           *SCHEMES[scheme], "--max-evals", str(total), "--workers", str(args.workers), "--epochs", "1",
           "--seed", "0", "--run-dir", str(run_dir)]
    log = open(work / f"run-{scheme}.log", "w")
    t0 = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=(lambda: os.sched_setaffinity(0, scheduler_cpus)) if scheduler_cpus else None)
    samples = []
    store = run_dir / "wtnas.sqlite"
    last_print = 0.0
    while proc.poll() is None:
        time.sleep(args.interval)
        try:
            cpu, rss = process_sample(proc.pid)
        except (OSError, IndexError):
            break
        if not rss:    # exiting (a zombie has no memory to report)
            continue
        done = finished(store)
        if done is None:
            continue
        samples.append({"t": time.time() - t0, "done": done, "cpu_s": cpu, "rss_mb": rss})
        if time.time() - last_print > 30:
            last_print = time.time()
            print(f"  {scheme}: {done} / {total} done, scheduler CPU {cpu:.1f} s, RSS {rss:.0f} MB",
                  flush=True)
    rc = proc.wait()
    log.close()
    if rc != 0:
        raise SystemExit(f"wtnas run failed (exit {rc}); see {work / f'run-{scheme}.log'}")
    wall = time.time() - t0
    con = sqlite3.connect(store)
    ok = con.execute("SELECT COUNT(*) FROM candidates WHERE status = 'ok'").fetchone()[0]
    with_provider = con.execute("SELECT COUNT(*) FROM candidates WHERE n_transferred > 0").fetchone()[0]
    controls = con.execute("SELECT COUNT(*) FROM controls").fetchone()[0]
    kept = con.execute("SELECT COUNT(*) FROM candidates WHERE checkpoint IS NOT NULL AND status = 'ok'").fetchone()[0]
    promotions = con.execute("SELECT COUNT(*) FROM rungs WHERE rung > 0").fetchone()[0]
    con.close()
    jobs = total + promotions   # per job: the samples count candidates and promotions
    return {"scheme": scheme, "candidates": total, "jobs": jobs, "workers": args.workers, "train_ms": args.train_ms,
            "scheduler_cpus": sorted(scheduler_cpus or []), "worker_cpus": sorted(worker_cpus or []),
            "wall_s": wall, "ok": ok,
            "with_provider": with_provider, "controls": controls, "checkpoints_kept": kept, "promotions": promotions,
            "samples": samples, **summarize(samples, jobs)}


def summarize(samples: list[dict], total: int) -> dict:
    """Per-candidate CPU over the steady part (windows of at least 1% of the run after the first
    5%), memory at 10/50/100%."""
    steady = [s for s in samples if s["done"] >= 0.05 * total]
    windows, start = [], None
    for s in steady:
        if start is None:
            start = s
            continue
        if s["done"] - start["done"] >= max(20, total // 100):
            windows.append((s["cpu_s"] - start["cpu_s"]) * 1000 / (s["done"] - start["done"]))
            start = s
    rate = [(b["done"] - a["done"]) / (b["t"] - a["t"]) for a, b in zip(steady, steady[1:]) if b["t"] > a["t"]]

    def rss_at(share: float) -> float | None:
        hits = [s["rss_mb"] for s in samples if s["done"] >= share * total]
        return hits[0] if hits else (samples[-1]["rss_mb"] if samples else None)

    # growth while the search runs: from 10% to 90% (the end adds the closing table and results.csv)
    middle = [s for s in samples if 0.10 * total <= s["done"] <= 0.90 * total]
    first, last = (middle[0], middle[-1]) if len(middle) > 1 else (None, None)
    return {
        "cpu_ms_per_candidate": statistics.median(windows) if windows else None,
        "cpu_ms_per_candidate_max_window": max(windows) if windows else None,
        "cpu_ms_per_candidate_overall": ((samples[-1]["cpu_s"] * 1000 / samples[-1]["done"])
                                         if samples and samples[-1]["done"] else None),
        "candidates_per_s": statistics.median(rate) if rate else None,
        "rss_mb": {"10%": rss_at(0.10), "50%": rss_at(0.50), "90%": rss_at(0.90), "end": rss_at(1.0),
                   "peak": max((s["rss_mb"] for s in samples), default=None)},
        "rss_growth_kb_per_1k": ((last["rss_mb"] - first["rss_mb"]) * 1024 / (last["done"] - first["done"]) * 1000
                                 if first and last["done"] > first["done"] else None),
    }


def nearest_queries(n: int, queries: int = 200, seed: int = 0) -> dict:
    """The `nearest` selector alone: observe n checkpointed candidates, then time queries."""
    sys.path.insert(0, str(HERE.parent / "plugins"))
    from wtnas_builtins.selectors import NearestSelector
    from wtnas_cli.model.spacefile import parse_space
    from wtnas_cli.search.strategy_protocol import Proposal

    space, _ = parse_space(SPACE)
    rng = np.random.default_rng(seed)
    selector = NearestSelector(space)
    t = time.perf_counter()
    for cid in range(n):
        selector.observe(cid, space.sample(rng), float(rng.random()), True)
        if cid % 1000 == 999:
            selector.select(Proposal(space.sample(rng)))   # the matrix is rebuilt or extended as the run goes
    observe_s = time.perf_counter() - t
    times = []
    for _ in range(queries):
        proposal = Proposal(space.sample(rng))
        t = time.perf_counter()
        selector.select(proposal)
        times.append(time.perf_counter() - t)
        selector.observe(n + len(times), proposal.arch_seq, float(rng.random()), True)
    return {"checkpointed": n, "queries": queries, "query_ms_median": statistics.median(times) * 1000,
            "query_ms_p95": float(np.percentile(times, 95) * 1000), "observe_and_occasional_select_s": observe_s}


def _n(value: float | None, spec: str = ".3f") -> str:
    """A number, or '-' where a run was too short to measure it."""
    return "-" if value is None else format(value, spec)


def feeds(cpu_ms: float | None) -> str:
    if not cpu_ms:
        return "-"
    per_s = 1000 / cpu_ms
    return (f"{per_s:,.0f} candidates/s of scheduler CPU: {per_s * 60:,.0f} GPUs busy at 1 min per candidate, "
            f"{per_s * 600:,.0f} at 10 min")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--train-ms", type=float, default=20.0,
                    help="each null 'epoch' sleeps this long, as a worker waiting on a GPU would (0: workers compete "
                         "with the scheduler for this machine's cores)")
    ap.add_argument("--scheme", choices=[*SCHEMES, "both"], default="parent")
    ap.add_argument("--nearest-candidates", type=int, default=None,
                    help="candidates of the nearest search (default: --candidates)")
    ap.add_argument("--nearest-n", type=int, default=100_000, help="checkpointed candidates for the query timing")
    ap.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                    help="scheduler on a core of its own, workers on the others (default; --no-pin: anywhere)")
    ap.add_argument("--interval", type=float, default=2.0, help="seconds between samples")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--work", type=Path, default=None, help="work directory (default: a temporary one)")
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="wtnas-sched-"))
    work.mkdir(parents=True, exist_ok=True)
    result = {"date": time.strftime("%Y-%m-%d"), "cpu_count": os.cpu_count(), "searches": []}
    wake = result["wakeup"] = wakeup_cost()
    print(f"the same strategy.ask: {wake['back_to_back_us']:.0f} us back to back, {wake['after_sleep_us']:.0f} us after "
          f"a {wake['sleep_ms']:g} ms sleep (what waking up per result costs on this machine)", flush=True)
    q = nearest_queries(args.nearest_n)
    result["nearest_queries"] = q
    print(f"nearest over {q['checkpointed']:,} checkpointed candidates: {q['query_ms_median']:.2f} ms per query "
          f"(p95 {q['query_ms_p95']:.2f}; target <= 5 ms)", flush=True)
    for scheme in (SCHEMES if args.scheme == "both" else [args.scheme]):
        r = run_search(args, work, scheme)
        result["searches"].append(r)
        rss = r["rss_mb"]
        print(f"{scheme}: {r['candidates']:,} candidates in {r['wall_s']:.0f} s ({_n(r['candidates_per_s'], '.0f')}/s, "
              f"{r['workers']} workers, {r['train_ms']:g} ms per null epoch; scheduler on cores "
              f"{r['scheduler_cpus'] or 'any'}, workers on {r['worker_cpus'] or 'any'}), {r['with_provider']:,} with a provider, "
              f"{r['controls']:,} controls, {r['checkpoints_kept']:,} checkpoints kept"
              + (f", {r['promotions']:,} promotions (costs below are per job)" if r["promotions"] else ""))
        print(f"  scheduler CPU {_n(r['cpu_ms_per_candidate'])} ms per candidate (median window; max "
              f"{_n(r['cpu_ms_per_candidate_max_window'])}; overall {_n(r['cpu_ms_per_candidate_overall'])}; "
              f"target <= 1 ms)")
        print(f"  scheduler RSS {_n(rss['10%'], '.0f')} / {_n(rss['50%'], '.0f')} / {_n(rss['90%'], '.0f')} MB at "
              f"10/50/90% ({_n(r['rss_growth_kb_per_1k'], '.1f')} KB per 1,000 candidates in between), "
              f"peak {_n(rss['peak'], '.0f')} MB")
        print(f"  one scheduler feeds {feeds(r['cpu_ms_per_candidate'])}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"scheduler-{result['date']}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"raw numbers: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
