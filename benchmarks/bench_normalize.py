"""data.normalize on raw, badly scaled data: scikit-learn's breast-cancer table (30 features,
values from ~0.001 to ~4,000; 63% majority class) as a CSV, with the documented 6-node space.

    OMP_NUM_THREADS=1 python benchmarks/bench_normalize.py [--evals 40] [--epochs 1,10] [--seeds 0,1]
                                                            [--methods none,standard,minmax] [--out F]

Each (method, epochs, seed) is one `wtnas run --backend torch --workers 1` of `--evals`
candidates (evolution, population 20); reported: best and median validation accuracy of the
candidates and how many scored at or below the validation split's majority-class rate (0.667). Nothing is downloaded
(the data set ships with scikit-learn).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def write_problem(directory: Path, method: str) -> tuple[Path, Path]:
    from sklearn.datasets import load_breast_cancer

    b = load_breast_cancer()
    names = [n.replace(" ", "_") for n in b.feature_names]
    data = directory / "breast_cancer.csv"
    np.savetxt(data, np.column_stack([b.data, b.target]), delimiter=",", header=",".join(names + ["diagnosis"]),
               comments="", fmt="%.10g")
    doc = (ROOT / "docs" / "search-spaces.md").read_text()
    toml = re.search(r"```toml\n(.*?)```", doc, re.S).group(1)
    for old, new in (('name = "wine"', 'name = "breast-cancer"'), ("shape = [13]", "shape = [30]"),
                     ("units = 3, activation", "units = 2, activation"), ('label = "cultivar"', 'label = "diagnosis"'),
                     ("val_fraction = 0.25", f'val_fraction = 0.2\nnormalize = "{method}"')):
        assert old in toml, old
        toml = toml.replace(old, new)
    space = directory / f"breast_cancer_{method}.toml"
    space.write_text(toml)
    return space, data


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--evals", type=int, default=40)
    ap.add_argument("--epochs", default="1,10")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--methods", default="none,standard,minmax")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
    from wtnas_cli.run.config import RunConfig
    from wtnas_cli.search.scheduler import run_search
    from wtnas_cli.run.store import RunStore

    from sklearn.datasets import load_breast_cancer
    from wtnas_cli.model.data import split

    y_val = split([load_breast_cancer().data], load_breast_cancer().target, 0.2, 0).y_val
    majority = float(np.bincount(y_val).max() / len(y_val))   # of the validation split (0.667)
    print(f"validation majority-class rate {majority:.4f}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(","):
            space, data = write_problem(Path(tmp), method)
            for epochs in map(int, args.epochs.split(",")):
                for seed in map(int, args.seeds.split(",")):
                    run_dir = Path(tmp) / f"{method}-{epochs}-{seed}"
                    t = time.perf_counter()
                    run_search(RunConfig(problem="file", space=str(space), data=str(data), backend="torch",
                                         max_evals=args.evals, epochs=epochs, workers=1, threads_per_worker=1,
                                         seed=seed, run_dir=str(run_dir)))
                    store = RunStore(run_dir / "wtnas.sqlite")
                    scores = [r["score"] for r in store.candidates(status="ok")]
                    store.close()
                    row = {"method": method, "epochs": epochs, "seed": seed, "candidates": len(scores),
                           "best": max(scores), "median": statistics.median(scores),
                           "at_or_below_majority": sum(s <= majority + 1e-9 for s in scores),
                           "wall_s": time.perf_counter() - t, "scores": scores}
                    rows.append(row)
                    print(json.dumps({k: v for k, v in row.items() if k != "scores"}), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
