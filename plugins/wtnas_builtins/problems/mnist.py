"""`mnist`: the paper's LeNet-5-inspired space (11 variable nodes) on MNIST.

Reads `mnist.npz` (keys x_train, y_train, x_test, y_test) or the four IDX files from --data-dir;
`--synthetic` makes learnable 28x28 data of the same shape. Some architectures do not fit 28x28
(e.g. three 5x5 valid convolutions after 5x5 pooling): they fail at build time, as in DeepHyper.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from wtnas_cli.model import ops as O
from wtnas_cli.model.data import (TEST_FRACTION, first_existing, need, read_idx, split, synthetic_images,
                                  synthetic_options, test_split_option, with_official_test)
from wtnas_cli.errors import WtnasError
from wtnas_cli.plugins.hookspecs import hookimpl
from wtnas_cli.model.problem import Dataset, Problem
from wtnas_cli.model.space import ConstantNode, Input, SearchSpace, VariableNode

ACTS = tuple(O.Activation(f) for f in ("relu", "tanh", "sigmoid"))
FILES = ("mnist.npz", "or train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
                      "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]")


def mnist_space() -> SearchSpace:
    conv = tuple(O.Conv2D(f, k, padding=p) for k in (3, 5) for f in (8, 16, 32) for p in ("valid", "same"))
    pool = (O.Identity(),) + tuple(O.MaxPool2D(s) for s in (2, 3, 4, 5))
    dense = (O.Identity(),) + tuple(O.Dense(u) for u in (32, 64, 128, 256, 512))
    dropout = (O.Identity(),) + tuple(O.Dropout(r) for r in (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5))
    return SearchSpace("mnist", (Input("image", (28, 28, 1)),), (
        VariableNode("conv1", conv), VariableNode("act1", ACTS), VariableNode("pool1", pool),
        VariableNode("conv2", conv), VariableNode("act2", ACTS), VariableNode("pool2", pool),
        ConstantNode("flatten", O.Flatten()),
        VariableNode("dense1", dense), VariableNode("act3", ACTS),
        VariableNode("dense2", dense), VariableNode("act4", ACTS), VariableNode("dropout", dropout),
        ConstantNode("output", O.Dense(10, activation="softmax")),
    ))


def load_mnist(data_dir=None, synthetic: bool = False, samples: int | None = None, check_only: bool = False,
               test_split: bool = True, **_) -> Dataset | None:
    if synthetic:
        if check_only:
            return None
        x, y = synthetic_images(samples or 3000, (28, 28, 1), 10, seed=0)
        return split([x], y, test_fraction=TEST_FRACTION if test_split else 0.0)
    d = need(data_dir, "mnist", FILES)
    if (d / "mnist.npz").is_file():
        if check_only:
            return None
        with np.load(d / "mnist.npz") as z:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in z]
            if missing:
                raise WtnasError(f"{d / 'mnist.npz'} lacks arrays {missing}; expected x_train, y_train, x_test, y_test")
            xt, yt, xv, yv = z["x_train"], z["y_train"], z["x_test"], z["y_test"]
    else:
        names = [("train-images-idx3-ubyte", "train-images.idx3-ubyte"), ("train-labels-idx1-ubyte",),
                 ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"), ("t10k-labels-idx1-ubyte",)]
        paths = [first_existing(d, [n + ext for n in group for ext in ("", ".gz")]) for group in names]
        if None in paths:
            raise WtnasError(f"--data-dir {d} holds no MNIST files: expected {' '.join(FILES)}")
        if check_only:
            return None
        xt, yt, xv, yv = (read_idx(p) for p in paths if p is not None)   # a None raised above
    prep = lambda x: (np.asarray(x, np.float32) / 255.0).reshape(-1, 28, 28, 1)
    return with_official_test(prep(xt), np.asarray(yt, np.int64), prep(xv), np.asarray(yv, np.int64), test_split)


# cast: the loader returns a Dataset unless check_only=True (only check_data passes it)
def mnist_problem(**options) -> Problem:
    return Problem("mnist", mnist_space(), lambda: cast(Dataset, load_mnist(**options)),
                   batch_size=64, min_delta=0.001,
                   description="MNIST digits, the paper's LeNet-5-like space", options=options,
                   check_data=lambda: load_mnist(check_only=True, **options))


@hookimpl
def wtnas_register_problems(register):
    register("mnist", mnist_problem, description="MNIST (--data-dir with mnist.npz or IDX files, or --synthetic)",
             options=(*synthetic_options(3000), test_split_option("t10k; --synthetic: 20%")))
