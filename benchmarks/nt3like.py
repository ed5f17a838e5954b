"""An informative NT3-shaped problem that runs offline (benchmarks only).

The built-in `nt3 --synthetic` stand-in is too easy to rank architectures: every good model reaches
accuracy 1.0. This one keeps NT3's search space (candlepb's 1D-conv space, 9 variable nodes, here
at 1,000 features) and makes the signal weak and local, like co-expressed gene blocks: 8 blocks of
16 adjacent features shift by ±0.18 standard deviations between the two classes. One epoch
leaves most candidates near chance, fully trained models reach ~0.86-0.90, so scores, top-K
epochs and Kendall tau all carry information. It runs through wtnas's user-defined-space path
(`--space spaces/nt3like.toml --data nt3like.npz`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPACE = Path(__file__).parent / "spaces" / "nt3like.toml"


def make_data(path: Path, n: int = 1200, features: int = 1000, blocks: int = 8, width: int = 16,
              signal: float = 0.18, seed: int = 0) -> Path:
    """Write the dataset (x: n x features x 1, y: 0/1) as .npz; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    y = rng.integers(2, size=n)
    x = rng.normal(0, 1, size=(n, features)).astype(np.float32)
    starts = rng.choice(features // width, size=blocks, replace=False) * width
    pattern = rng.choice([-1.0, 1.0], size=(2, blocks))
    for b, start in enumerate(starts):
        x[:, start:start + width] += (signal * pattern[y, b])[:, None].astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=x[..., None], y=y.astype(np.int64))
    return path


def run_options(data_dir: Path) -> dict:
    """RunConfig fields that select this problem (the data is written on first use)."""
    data = data_dir / "nt3like.npz"
    if not data.is_file():
        make_data(data)
    return {"problem": "file", "space": str(SPACE), "data": str(data)}
