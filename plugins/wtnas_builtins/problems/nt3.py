"""`nt3`: CANDLE NT3, normal vs tumor from RNA-seq profiles, with candlepb's 1D-conv space:
Conv, Act, Pool, Dense, Act, Dropout, Dense, Act, Dropout (9 variable nodes), two-class softmax.

Reads nt_train2.csv and nt_test2.csv (label in the first column, 60,483 features) from
--data-dir, or makes learnable synthetic profiles of the same shape with --synthetic
(`features` and `samples` options shrink them for quick tests).
"""

from __future__ import annotations

from typing import cast

import numpy as np

from wtnas_cli.model import ops as O
from wtnas_cli.model.data import (TEST_FRACTION, need, split, synthetic_options, synthetic_vectors, test_split_option,
                                  with_official_test)
from wtnas_cli.errors import WtnasError
from wtnas_cli.plugins.hookspecs import hookimpl
from wtnas_cli.plugins.option import Option
from wtnas_cli.model.problem import Dataset, Problem
from wtnas_cli.model.space import ConstantNode, Input, SearchSpace, VariableNode

FEATURES = 60483
ACTS = (O.Identity(),) + tuple(O.Activation(f) for f in ("relu", "tanh", "sigmoid"))


def nt3_space(features: int = FEATURES) -> SearchSpace:
    conv = (O.Identity(),) + tuple(O.Conv1D(8, k) for k in (3, 4, 5, 6))
    pool = (O.Identity(),) + tuple(O.MaxPool1D(k) for k in (3, 4, 5, 6))
    dense = (O.Identity(),) + tuple(O.Dense(u) for u in (10, 50, 100, 250, 500, 1000))
    dropout = (O.Identity(),) + tuple(O.Dropout(r) for r in (0.05, 0.1, 0.2, 0.3, 0.4, 0.5))
    return SearchSpace("nt3", (Input("expression", (features, 1)),), (
        VariableNode("conv", conv), VariableNode("act1", ACTS), VariableNode("pool", pool),
        ConstantNode("flatten", O.Flatten()),
        VariableNode("dense1", dense), VariableNode("act2", ACTS), VariableNode("dropout1", dropout),
        VariableNode("dense2", dense), VariableNode("act3", ACTS), VariableNode("dropout2", dropout),
        ConstantNode("output", O.Dense(2, activation="softmax")),
    ))


def _read_csv(path) -> tuple[np.ndarray, np.ndarray]:
    table = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
    return table[:, 1:], table[:, 0].astype(np.int64)


def load_nt3(data_dir=None, synthetic: bool = False, samples: int | None = None, features: int | None = None,
             check_only: bool = False, test_split: bool = True, **_) -> Dataset | None:
    if synthetic:
        if check_only:
            return None
        x, y = synthetic_vectors(samples or 1400, features or FEATURES, 2, seed=0)
        return split([x[..., None]], y, test_fraction=TEST_FRACTION if test_split else 0.0)
    d = need(data_dir, "nt3", ("nt_train2.csv", "nt_test2.csv"))
    train, test = d / "nt_train2.csv", d / "nt_test2.csv"
    if not (train.is_file() and test.is_file()):
        raise WtnasError(f"--data-dir {d} lacks nt_train2.csv and/or nt_test2.csv (CANDLE NT3, label in column 1)")
    if check_only:
        return None
    (xt, yt), (xv, yv) = _read_csv(train), _read_csv(test)
    if features and xt.shape[1] != features:
        raise WtnasError(f"{train} has {xt.shape[1]} features, the problem expects {features}")
    return with_official_test(xt[..., None], yt, xv[..., None], yv, test_split)


# cast: the loader returns a Dataset unless check_only=True (only check_data passes it)
def nt3_problem(features: int | None = None, **options) -> Problem:
    n = features or FEATURES
    return Problem("nt3", nt3_space(n), lambda: cast(Dataset, load_nt3(features=n, **options)),
                   batch_size=32, min_delta=0.005,
                   description="CANDLE NT3 (RNA-seq, 2 classes), candlepb's 1D-conv space",
                   options=dict(options, features=features),
                   check_data=lambda: load_nt3(features=n, check_only=True, **options))


@hookimpl
def wtnas_register_problems(register):
    register("nt3", nt3_problem, description="CANDLE NT3 (--data-dir with nt_train2.csv/nt_test2.csv, or --synthetic)",
             options=(*synthetic_options(1400),
                      Option("features", int, FEATURES, "feature count of the synthetic data, or the count the "
                                                        "files must have (alias --features)", min=1),
                      test_split_option("nt_test2.csv; --synthetic: 20%")))
