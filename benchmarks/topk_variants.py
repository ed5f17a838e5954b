"""The warm top-K of finished suite runs re-trained under other top-K settings, in copies of the
run directories (the suite's own results stay as they are).

    python benchmarks/topk_variants.py [RUNS_DIR]      # benchmarks/results/suite-runs by default

- `full` (the paper's Table III): the same early-stopping criterion, but training continues to
  the epoch cap, so each model has its objective at the early-stopping point *and* after full
  training. Training is deterministic, so its stop epochs equal the suite's.
- `strict`: patience 5 and min-delta 0. With patience 2 no model can stop before epoch 3; when the
  baseline's top-K also converge within a couple of epochs the ratio cannot show. A stricter
  criterion tells whether transfer still saves epochs there.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from schemes import SCHEMES
from wtnas_cli.results.runs import load_run
from wtnas_cli.run.rundir import CHECKPOINTS, checkpoint_path
from wtnas_cli.util.stats import bootstrap_ratio_ci, geometric_mean, mean_std, permutation_pvalue
from wtnas_cli.run.store import RunStore
from wtnas_cli.results.topk import TopKConfig, run_topk, select_candidates

VARIANTS = {"full": {"early_stop": False},                   # epoch cap: the suite's
            "strict": {"patience": 5, "min_delta": 0.0}}         # epoch cap: the suite's + 10


def copy_for_topk(run_dir: Path, dest: Path, k: int) -> None:
    """The run's store and config plus only the top-k checkpoints (all a warm top-K needs)."""
    store = RunStore(run_dir / "wtnas.sqlite")
    top = {r["id"] for r in select_candidates(store.candidates(), k, None)}
    store.close()
    keep = {checkpoint_path(run_dir, cid).name for cid in top}
    shutil.copytree(run_dir, dest, ignore=lambda d, names: [n for n in names if Path(d).name == CHECKPOINTS
                                                             and n not in keep])


def run_variant(problem_dir: Path, name: str, k: int = 5, seeds: int | None = None, max_epochs: int = 20) -> dict:
    settings = dict(VARIANTS[name], max_epochs=max_epochs + (10 if name == "strict" else 0))
    per: dict = {"settings": settings}
    for scheme in SCHEMES:
        models = []
        run_dirs = sorted(problem_dir.glob(f"{scheme}-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
        for run_dir in run_dirs[:seeds]:
            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(tmp) / run_dir.name
                copy_for_topk(run_dir, copy, k)
                run_topk(copy, TopKConfig(k=k, seed=int(run_dir.name.rsplit("-", 1)[1]), **settings))
                models += [{key: t[key] for key in ("candidate_id", "epochs_to_converge", "converged", "epochs_trained",
                                                     "objective_at_stop", "objective_final")}
                           for t in load_run(copy).trained["warm"].topk]
        epochs = [m["epochs_to_converge"] for m in models]
        per[scheme] = {"models": models, "epochs_gmean": geometric_mean(epochs),
                       "objective_at_stop": mean_std([m["objective_at_stop"] for m in models]),
                       "objective_final": mean_std([m["objective_final"] for m in models]),
                       "gain_after_stop": statistics.mean(m["objective_final"] - m["objective_at_stop"] for m in models)}
    base = [m["epochs_to_converge"] for m in per["none"]["models"]]
    for scheme in ("lp", "lcs"):
        cur = [m["epochs_to_converge"] for m in per[scheme]["models"]]
        per[scheme]["epoch_ratio_vs_baseline"] = bootstrap_ratio_ci(base, cur)
        per[scheme]["p_epochs"] = permutation_pvalue(base, cur, statistic="gmean")
        per[scheme]["p_objective_final"] = permutation_pvalue([m["objective_final"] for m in per["none"]["models"]],
                                                              [m["objective_final"] for m in per[scheme]["models"]])
    return per


def print_variant(problem: str, name: str, per: dict) -> None:
    print(f"{problem}, top-K variant {name!r} {per['settings']} (models pooled over seeds):")
    for scheme in SCHEMES:
        a = per[scheme]
        r = a.get("epoch_ratio_vs_baseline")
        extra = f", baseline/{scheme.upper()} {r[0]:.2f}x [{r[1]:.2f}, {r[2]:.2f}] p={a['p_epochs']:.3f}" if r else ""
        print(f"  {scheme:4} epochs (geo) {a['epochs_gmean']:.2f}{extra}; objective at stop "
              f"{a['objective_at_stop'][0]:.4f} ± {a['objective_at_stop'][1]:.4f}, final "
              f"{a['objective_final'][0]:.4f} ± {a['objective_final'][1]:.4f}", flush=True)


def main(runs: Path, problems: list[str] | None = None, seeds: int | None = None) -> dict:
    out = {}
    for problem_dir in sorted(p for p in runs.iterdir() if p.is_dir() and p.name != "data"):
        if problems and problem_dir.name not in problems:
            continue
        out[problem_dir.name] = {}
        for name in VARIANTS:
            out[problem_dir.name][name] = run_variant(problem_dir, name, seeds=seeds)
            print_variant(problem_dir.name, name, out[problem_dir.name][name])
    return out


if __name__ == "__main__":
    runs = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "results" / "suite-runs"
    print(json.dumps(main(runs), default=str)[:200])
