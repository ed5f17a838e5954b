"""`cifar10`: the paper's VGG-like space: three blocks of [Conv, Pool, BatchNorm] x 2, each block
closed by a fixed 2x2 max-pooling as in VGG, then three Dense variable nodes (21 variable nodes).

Reads the CIFAR-10 *binary* batches (cifar-10-batches-bin/data_batch_1.bin ... test_batch.bin)
or `cifar10.npz` (x_train, y_train, x_test, y_test) from --data-dir. The "python version" batches
are pickle files, which wtnas does not load (unpickling can execute code).
"""

from __future__ import annotations

from typing import cast

import numpy as np

from wtnas_cli.model import ops as O
from wtnas_cli.model.data import (TEST_FRACTION, need, split, synthetic_images, synthetic_options, test_split_option,
                                  with_official_test)
from wtnas_cli.errors import WtnasError
from wtnas_cli.plugins.hookspecs import hookimpl
from wtnas_cli.model.problem import Dataset, Problem
from wtnas_cli.model.space import ConstantNode, Input, Node, SearchSpace, VariableNode

FILES = ("cifar-10-batches-bin/ (data_batch_1.bin ... data_batch_5.bin, test_batch.bin)", "or cifar10.npz")


def cifar10_space() -> SearchSpace:
    nodes: list[Node] = []
    for block, filters in enumerate((32, 64, 128), start=1):
        conv = tuple(O.Conv2D(f, 3, padding=p, activation="relu", l2=l2)
                     for f in (filters // 2, filters, filters * 2) for p in ("valid", "same") for l2 in (0.0, 5e-4))
        pool = (O.Identity(),) + tuple(O.MaxPool2D(size, strides=stride) for size in (2, 3) for stride in (1, 2))
        for rep in (1, 2):
            nodes += [VariableNode(f"b{block}_conv{rep}", conv), VariableNode(f"b{block}_pool{rep}", pool),
                      VariableNode(f"b{block}_bn{rep}", (O.Identity(), O.BatchNorm()))]
        nodes.append(ConstantNode(f"b{block}_end", O.MaxPool2D(2)))  # VGG blocks end by halving: bounded width
    nodes.append(ConstantNode("flatten", O.Flatten()))
    dense = (O.Identity(),) + tuple(O.Dense(u, activation="relu") for u in (32, 64, 128, 256, 512, 1024, 2048, 4096))
    nodes += [VariableNode(f"dense{i}", dense) for i in (1, 2, 3)]
    nodes.append(ConstantNode("output", O.Dense(10, activation="softmax")))
    return SearchSpace("cifar10", (Input("image", (32, 32, 3)),), tuple(nodes))


def _read_bin(path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 3073:
        raise WtnasError(f"{path} is not a CIFAR-10 binary batch (size {raw.size} is not a multiple of 3073)")
    rec = raw.reshape(-1, 3073)
    return rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), rec[:, 0].astype(np.int64)


def load_cifar10(data_dir=None, synthetic: bool = False, samples: int | None = None, check_only: bool = False,
                 test_split: bool = True, **_) -> Dataset | None:
    if synthetic:
        if check_only:
            return None
        x, y = synthetic_images(samples or 3000, (32, 32, 3), 10, seed=0)
        return split([x], y, test_fraction=TEST_FRACTION if test_split else 0.0)
    d = need(data_dir, "cifar10", FILES)
    if (d / "cifar10.npz").is_file():
        if check_only:
            return None
        with np.load(d / "cifar10.npz") as z:
            xt, yt, xv, yv = z["x_train"], z["y_train"], z["x_test"], z["y_test"]
    else:
        b = d / "cifar-10-batches-bin" if (d / "cifar-10-batches-bin").is_dir() else d
        train = [b / f"data_batch_{i}.bin" for i in range(1, 6)]
        test = b / "test_batch.bin"
        if not all(p.is_file() for p in train + [test]):
            hint = (" (found pickled python batches: convert them to cifar10.npz, or use the binary version)"
                    if (d / "cifar-10-batches-py").is_dir() or (d / "data_batch_1").is_file() else "")
            raise WtnasError(f"--data-dir {d} holds no CIFAR-10 data: expected {' '.join(FILES)}{hint}")
        if check_only:
            return None
        parts = [_read_bin(p) for p in train]
        xt, yt = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        xv, yv = _read_bin(test)
    prep = lambda x: np.asarray(x, np.float32).reshape(-1, 32, 32, 3) / 255.0
    return with_official_test(prep(xt), np.asarray(yt, np.int64).ravel(), prep(xv), np.asarray(yv, np.int64).ravel(),
                              test_split)


# cast: the loader returns a Dataset unless check_only=True (only check_data passes it)
def cifar10_problem(**options) -> Problem:
    return Problem("cifar10", cifar10_space(), lambda: cast(Dataset, load_cifar10(**options)),
                   batch_size=64, min_delta=0.01,
                   description="CIFAR-10, the paper's VGG-like space", options=options,
                   check_data=lambda: load_cifar10(check_only=True, **options))


@hookimpl
def wtnas_register_problems(register):
    register("cifar10", cifar10_problem,
             description="CIFAR-10 (--data-dir with the binary batches or cifar10.npz, or --synthetic)",
             options=(*synthetic_options(3000), test_split_option("test_batch; --synthetic: 20%")))
