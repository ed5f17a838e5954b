"""Scope and effectiveness of weight transfer (the paper's Fig. 4 and Fig. 5).

    python benchmarks/bench_pairs.py [--problem digits] [--pairs 200] [--per-distance 40]

Providers are real checkpoints of a search (1 epoch from scratch, matcher none; a small random
search is run first unless --providers RUN_DIR names one). For each pair the receiver is trained
for one epoch with the same seed (so the same initial weights and batch order): from scratch,
and with each matcher's tensors (default LP and LCS; any registered matcher, e.g. lcs-shape or
lcs-slice). A pair is *transferable* under a matcher when it maps at least one tensor; among
those, *positive* when transfer gives a better objective after one epoch, *negative* when worse
or when the receiver fails (a non-finite model), *tie* when equal. Each matcher's share of
tensors and of parameters moved, partial copies and role-crossing copies are counted too.

- random pairs (Fig. 4): receiver = a random architecture of the space;
- by distance (Fig. 5): receiver = the provider with exactly d variable nodes changed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from wtnas_cli.run.config import RunConfig
from wtnas_cli.search.evaluator import Evaluator
from wtnas_cli.run.job import Job
from wtnas_cli.weights.matching import apply_matcher
from wtnas_cli.plugins.manager import default_plugins
from wtnas_cli.run.rundir import checkpoint_path
from wtnas_cli.search.scheduler import run_search
from wtnas_cli.run.store import RunStore
from wtnas_cli.weights.transfer import plan_stats

MAX_DISTANCE = 6
_evaluator: Evaluator | None = None


def _train_receiver(spec: dict) -> dict:
    """One pair, in a worker process: the receiver trained from scratch and with each matcher."""
    global _evaluator
    if _evaluator is None:
        _evaluator = Evaluator(threads=1)
    problem = _evaluator.problem(spec["problem"], spec["options"])
    provider_specs = problem.space.resolve(spec["provider"]).tensor_specs()
    receiver_specs = problem.space.resolve(spec["receiver"]).tensor_specs()
    out = {"d": spec["d"], "kind": spec["kind"], "n_tensors": len(receiver_specs)}

    def train(matcher: str) -> float | None:
        job = Job(0, list(spec["receiver"]), spec["problem"], "torch", matcher, 1, spec["seed"],
                  str(Path(spec["tmp"]) / f"r{spec['seed']}.h5"), problem_options=spec["options"],
                  provider_id=0 if matcher != "none" else None,
                  provider_checkpoint=spec["checkpoint"] if matcher != "none" else None)
        result = _evaluator.run(job)
        Path(job.checkpoint_path).unlink(missing_ok=True)
        if result.status != "ok":
            if matcher == "none":
                raise RuntimeError(f"receiver {spec['receiver']} failed from scratch: {result.error}")
            return None   # a transfer that broke the model (e.g. NaN): counted as harm
        return float(result.score)

    out["scratch"] = train("none")
    trained: dict[tuple, float | None] = {}
    for name in spec["matchers"]:
        pairs = apply_matcher(_evaluator.matcher(name), provider_specs, receiver_specs, name)
        stats = plan_stats(pairs, provider_specs, receiver_specs)
        out[f"{name}_tensors"] = len(pairs)
        out[f"{name}_share"] = stats.share
        out[f"{name}_partial"] = stats.partial
        out[f"{name}_crossings"] = stats.role_crossings
        if not pairs:
            out[name] = None
            continue
        key = tuple(pairs) if not stats.partial else (name, tuple(pairs))
        if key not in trained:             # the same whole tensors copied: the same training
            trained[key] = train(name)
        out[name] = trained[key]
        out[f"{name}_failed"] = trained[key] is None
    return out


def _mutate(space, seq, d: int, rng) -> tuple[int, ...] | None:
    """`seq` with exactly `d` variable nodes changed to another choice (None if none buildable)."""
    mutable = [i for i, n in enumerate(space.num_choices) if n > 1]
    if d > len(mutable):
        return None
    for _ in range(200):
        new = list(seq)
        for i in rng.choice(mutable, size=d, replace=False):
            c = int(rng.integers(space.num_choices[i] - 1))
            new[i] = c if c < seq[i] else c + 1
        if space.is_valid(new):
            return tuple(new)
    return None


def provider_pool(run_dir: Path) -> list[tuple[tuple[int, ...], str]]:
    store = RunStore(run_dir / "wtnas.sqlite")
    rows = store.candidates(status="ok")
    store.close()
    return [(tuple(r["arch_seq"]), str(checkpoint_path(run_dir, r["id"]))) for r in rows]


def summarize(rows: list[dict], matchers=("lp", "lcs")) -> dict:
    """Shares per matcher: transferable among all pairs; positive/negative/tie among transferable
    (a failed receiver counts as negative); tensors and parameters moved; role crossings."""
    out = {"pairs": len(rows)}
    for m in matchers:
        moved = [r for r in rows if r[f"{m}_tensors"]]
        failed = sum(r.get(f"{m}_failed", False) for r in moved)
        scored = [r for r in moved if r[m] is not None]
        pos = sum(r[m] > r["scratch"] for r in scored)
        neg = sum(r[m] < r["scratch"] for r in scored) + failed
        gain = [r[m] - r["scratch"] for r in scored]
        share = lambda n: n / len(moved) if moved else float("nan")
        out[m] = {"transferable": len(moved) / len(rows) if rows else float("nan"),
                  "positive": share(pos), "negative": share(neg), "tie": share(len(moved) - pos - neg),
                  "failed": share(failed), "mean_gain": float(np.mean(gain)) if gain else float("nan"),
                  "tensor_share": float(np.mean([r[f"{m}_tensors"] / r["n_tensors"] for r in rows])) if rows else 0.0,
                  "param_share": float(np.mean([r[f"{m}_share"] for r in rows])) if rows else 0.0,
                  "partial_tensors": int(sum(r[f"{m}_partial"] for r in rows)),
                  "role_crossings": int(sum(r[f"{m}_crossings"] for r in rows)),
                  "pairs_with_crossing": share(sum(r[f"{m}_crossings"] > 0 for r in moved))}
    return out


def main(problem: str = "digits", options: dict | None = None, providers: Path | None = None, pairs: int = 200,
         per_distance: int = 40, workers: int = 2, seed: int = 0, quiet: bool = False, label: str | None = None,
         matchers: tuple[str, ...] = ("lp", "lcs")) -> dict:
    options = options or {}
    plugins = default_plugins()
    space = plugins.registry.create("problem", problem, **options).space
    rng = np.random.default_rng(seed)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        if providers is None:
            providers = Path(tmp) / "providers"
            run_search(RunConfig(problem=problem, strategy="random", matcher="none", max_evals=max(60, pairs // 3),
                                 workers=workers, seed=seed + 1, run_dir=str(providers), keep="all",
                                 **{k: v for k, v in options.items() if k in RunConfig.__dataclass_fields__}),
                       overwrite=True)
        pool = provider_pool(Path(providers))
        specs = []
        for _ in range(pairs):
            seq, ckpt = pool[int(rng.integers(len(pool)))]
            receiver = space.sample(rng)
            specs.append({"kind": "random", "provider": seq, "receiver": receiver, "checkpoint": ckpt,
                          "d": space.distance(seq, receiver)})
        for d in range(1, MAX_DISTANCE + 1):
            for _ in range(per_distance):
                seq, ckpt = pool[int(rng.integers(len(pool)))]
                receiver = _mutate(space, seq, d, rng)
                if receiver is not None:
                    specs.append({"kind": "distance", "provider": seq, "receiver": receiver, "checkpoint": ckpt,
                                  "d": d})
        for s in specs:
            s.update(problem=problem, options=options, seed=int(rng.integers(1, 2**31)), tmp=tmp, matchers=matchers)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as ex:
            rows = list(ex.map(_train_receiver, specs, chunksize=4))
    random_rows = [r for r in rows if r["kind"] == "random"]
    out = {"problem": label or problem, "matchers": list(matchers), "random": summarize(random_rows, matchers),
           "by_distance": {}, "wall_s": time.time() - t0, "rows": rows}
    for d in range(1, MAX_DISTANCE + 1):
        group = [r for r in rows if r["kind"] == "distance" and r["d"] == d]
        if group:
            out["by_distance"][d] = summarize(group, matchers)
    if not quiet:
        print_summary(out)
    return out


def print_summary(out: dict) -> None:
    def line(label, s):
        return (f"  {label:10} n={s['pairs']:4} | " + " | ".join(
            f"{m}: transferable {s[m]['transferable']:4.0%}, params {s[m]['param_share']:4.0%}, + {s[m]['positive']:4.0%} "
            f"- {s[m]['negative']:4.0%} = {s[m]['tie']:4.0%}, gain {s[m]['mean_gain']:+.3f}, "
            f"crossings {s[m]['role_crossings']}" for m in out.get("matchers", ("lp", "lcs"))))
    print(f"{out['problem']}: transferable pairs and effect of transfer after 1 epoch ({out['wall_s']:.0f} s)")
    print(line("random", out["random"]))
    for d, s in out["by_distance"].items():
        print(line(f"d = {d}", s))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", default="digits")
    ap.add_argument("--providers", type=Path, help="a run directory whose checkpoints are the providers")
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--per-distance", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--matchers", default="lp,lcs", help="comma-separated matcher names")
    a = ap.parse_args(sys.argv[1:])
    main(a.problem, providers=a.providers, pairs=a.pairs, per_distance=a.per_distance, workers=a.workers,
         matchers=tuple(a.matchers.split(",")))
