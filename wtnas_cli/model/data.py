"""Reading standard dataset files and making learnable synthetic data; nothing is downloaded.

Every reader names the files it expected when they are missing. Arrays come back channels-last
as float32 inputs and int64 class labels (or float32 regression targets).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import WtnasError
from ..plugins.option import Option
from .problem import Dataset


def synthetic_options(samples: int) -> tuple[Option, Option]:
    """The options of a problem that can make synthetic data of its shape: `synthetic` (aliases
    --synthetic) and `samples` (--samples), whose default is the problem's own."""
    return (Option("synthetic", bool, False, "learnable synthetic data of the problem's shape (offline runs, "
                                             "tests) instead of --data-dir (alias --synthetic)"),
            Option("samples", int, samples, "synthetic data: number of samples (alias --samples)", min=1))


# a problem whose data has no official test set holds out this share of it as its test split
TEST_FRACTION = 0.2
# ...and one that has (MNIST's t10k, CIFAR-10's test_batch, NT3's test file) carves its validation
# split from the training files: 10% is 6,000 MNIST or 5,000 CIFAR-10 images, enough to rank
# candidates to ~0.3% (one standard error at 95% accuracy), while training keeps 90% of its data
VAL_FRACTION_OF_TRAIN = 0.1


def test_split_option(held_out: str) -> Option:
    """The `test_split` option of a built-in problem: `held_out` says what its test split is."""
    return Option("test_split", bool, True, f"hold out a test split ({held_out}) that neither the search nor top-K "
                                            f"selection sees; false: none, as in runs made before wtnas had test splits",
                  before=False)


def split(xs: Sequence[np.ndarray], y: np.ndarray, val_fraction: float = 0.2, seed: int = 0,
          test_fraction: float = 0.0) -> Dataset:
    """Shuffle with a fixed seed and hold out `test_fraction` as the test split, then
    `val_fraction` (of the whole) as validation; one input stays an array, several a list. With
    no test fraction the split is exactly the one of runs made before test splits existed."""
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(len(y) * test_fraction))
    test, rest = order[:n_test], order[n_test:]
    n_val = max(1, int(round(len(y) * val_fraction)))
    val, train = rest[:n_val], rest[n_val:]
    pick = (lambda idx: xs[0][idx]) if len(xs) == 1 else (lambda idx: [x[idx] for x in xs])
    data = Dataset(pick(train), y[train], pick(val), y[val])
    if n_test:
        data.x_test, data.y_test = pick(test), y[test]
    return data


def with_official_test(x_train, y_train, x_test, y_test, test_split: bool, seed: int = 0) -> Dataset:
    """Data that comes as a training and a test file: with `test_split`, the test file is the test
    split and validation is carved from the training files (VAL_FRACTION_OF_TRAIN, fixed seed);
    without, the test file is the validation split (the layout of runs made before test splits)."""
    if not test_split:
        return Dataset(x_train, y_train, x_test, y_test)
    xs = x_train if isinstance(x_train, list) else [x_train]
    data = split(xs, y_train, VAL_FRACTION_OF_TRAIN, seed)
    data.x_test, data.y_test = x_test, y_test
    return data


def need(data_dir: str | Path | None, problem: str, names: Sequence[str]) -> Path:
    """The data directory, or a one-line error naming the files `problem` expects there."""
    if not data_dir:
        raise WtnasError(f"problem {problem!r} reads {', '.join(names)} from --data-dir DIR (nothing is "
                         f"downloaded); or run it offline with --synthetic")
    path = Path(data_dir)
    if not path.is_dir():
        raise WtnasError(f"--data-dir {path}: no such directory")
    return path


def first_existing(directory: Path, candidates: Sequence[str]) -> Path | None:
    for name in candidates:
        if (directory / name).is_file():
            return directory / name
    return None


# -- IDX (MNIST) -------------------------------------------------------------------------------
def read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise WtnasError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise WtnasError(f"{path} is truncated: {body.size} values for dimensions {dims}")
    return body.reshape(dims)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write unsigned-byte IDX (used by tests to make real-format files)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


# -- synthetic, learnable data -----------------------------------------------------------------
def synthetic_images(n: int, shape: tuple[int, ...], classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class prototypes (smooth random patterns) shifted by up to 2 pixels plus noise: a
    convolutional net learns them, a constant predictor scores 1/classes."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    protos = rng.random((classes, h + 4, w + 4, c)).astype(np.float32)
    kernel = np.ones(5, np.float32) / 5
    for axis in (1, 2):
        protos = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, protos)
    protos = (protos - protos.mean()) / (protos.std() + 1e-6)
    y = rng.integers(classes, size=n)
    dy, dx = rng.integers(0, 5, size=n), rng.integers(0, 5, size=n)
    x = np.stack([protos[k, a:a + h, b:b + w] for k, a, b in zip(y, dy, dx)])
    x = x + rng.normal(0, 0.8, size=x.shape).astype(np.float32)
    return x.astype(np.float32), y.astype(np.int64)


def synthetic_vectors(n: int, features: int, classes: int, seed: int, informative: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Gene-expression-like vectors: each class shifts a few informative features, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(classes, size=n)
    x = rng.normal(0, 1, size=(n, features)).astype(np.float32)
    idx = rng.choice(features, size=min(informative, features), replace=False)
    shifts = rng.normal(0, 1.5, size=(classes, len(idx))).astype(np.float32)
    x[:, idx] += shifts[y]
    return x, y.astype(np.int64)
