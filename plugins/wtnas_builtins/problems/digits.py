"""`digits`: the embedded default problem.

scikit-learn's bundled 8x8 handwritten digits (1,797 images, no download), 80/20 split with a
fixed seed, and a LeNet-like space in the spirit of the paper's MNIST space: Conv, Act, Pool,
Conv, Act, Pool, Dense, Act, Dense, Act, Dropout, then a fixed softmax output. Every arch_seq
of this space is a valid model on 8x8 inputs.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from wtnas_cli.model import ops as O
from wtnas_cli.plugins.hookspecs import hookimpl
from wtnas_cli.model.data import TEST_FRACTION, split, test_split_option
from wtnas_cli.model.problem import Dataset, Problem
from wtnas_cli.model.space import ConstantNode, Input, SearchSpace, VariableNode

ACTS = tuple(O.Activation(f) for f in ("relu", "tanh", "sigmoid"))


def digits_space() -> SearchSpace:
    conv1 = tuple(O.Conv2D(f, k, padding=p) for f in (8, 16, 32) for k in (3, 5) for p in ("same", "valid"))
    conv2 = tuple(O.Conv2D(f, k, padding="same") for f in (8, 16, 32) for k in (1, 3))
    pool = (O.Identity(), O.MaxPool2D(2))
    dense1 = (O.Identity(),) + tuple(O.Dense(u) for u in (16, 32, 64, 128))
    dense2 = (O.Identity(),) + tuple(O.Dense(u) for u in (16, 32, 64))
    dropout = (O.Identity(),) + tuple(O.Dropout(r) for r in (0.1, 0.2, 0.3))
    return SearchSpace("digits", inputs=(Input("image", (8, 8, 1)),), nodes=(
        VariableNode("conv1", conv1), VariableNode("act1", ACTS), VariableNode("pool1", pool),
        VariableNode("conv2", conv2), VariableNode("act2", ACTS), VariableNode("pool2", pool),
        ConstantNode("flatten", O.Flatten()),
        VariableNode("dense1", dense1), VariableNode("act3", ACTS),
        VariableNode("dense2", dense2), VariableNode("act4", ACTS),
        VariableNode("dropout", dropout),
        ConstantNode("output", O.Dense(10, activation="softmax")),
    ))


def _read_digits() -> tuple[np.ndarray, np.ndarray]:
    """Read sklearn's bundled CSV directly (fast, no sklearn import); fall back to its loader."""
    spec = importlib.util.find_spec("sklearn")
    if spec and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path, "rt") as f:
                table = np.loadtxt(f, delimiter=",", dtype=np.float32)
            return table[:, :-1], table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data.astype(np.float32), bunch.target.astype(np.int64)


def load_digits_data(val_fraction: float = 0.2, split_seed: int = 0, test_split: bool = True) -> Dataset:
    """1,797 images: 20% test (held out), 20% validation, the rest training; without `test_split`
    20% validation and the rest training, as runs made before test splits had it."""
    x, y = _read_digits()
    x = (x / 16.0).reshape(-1, 8, 8, 1).astype(np.float32)
    return split([x], y, val_fraction, split_seed, test_fraction=TEST_FRACTION if test_split else 0.0)


def digits_problem(test_split: bool = True, **_) -> Problem:
    return Problem("digits", digits_space(), lambda: load_digits_data(test_split=test_split),
                   loss="categorical_crossentropy", objective="accuracy", batch_size=32,
                   description="8x8 handwritten digits bundled with scikit-learn; LeNet-like space",
                   options={"test_split": test_split})


@hookimpl
def wtnas_register_problems(register):
    register("digits", digits_problem, requires=("sklearn",), install_hint="pip install scikit-learn",
             description="embedded default: sklearn's 8x8 digits, LeNet-like conv space, accuracy",
             options=[test_split_option("20% of the images")])
