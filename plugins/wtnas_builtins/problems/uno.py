"""`uno`: CANDLE Uno (single-drug paclitaxel), multi-input regression with candlepb's space:
three variable nodes chained on each of cell RNA-seq (942), drug descriptors (5,270) and drug
fingerprints (2,048), concatenated with the dose (1), then four variable nodes with residual
add-by-padding cells (13 variable nodes, 13 choices each). Loss MAE, objective R^2.

Reads uno.npz or uno.h5 from --data-dir with arrays dose, cell_rnaseq, drug_descriptors,
drug_fingerprints, y (or each with _train/_val suffixes); --synthetic makes a learnable stand-in.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from wtnas_cli.model import ops as O
from wtnas_cli.model.data import TEST_FRACTION, need, split, synthetic_options, test_split_option
from wtnas_cli.errors import WtnasError
from wtnas_cli.plugins.hookspecs import hookimpl
from wtnas_cli.model.problem import Dataset, Problem
from wtnas_cli.model.space import ConstantNode, Input, Node, SearchSpace, VariableNode

INPUTS = (("dose", 1), ("cell_rnaseq", 942), ("drug_descriptors", 5270), ("drug_fingerprints", 2048))
CHOICES = ((O.Identity(),)
           + tuple(O.Dense(u, activation=a) for u in (100, 500, 1000) for a in ("relu", "tanh", "sigmoid"))
           + tuple(O.Dropout(r) for r in (0.3, 0.4, 0.5)))


def uno_space(dims: dict[str, int] | None = None) -> SearchSpace:
    dims = dims or dict(INPUTS)
    inputs = tuple(Input(name, (dims[name],)) for name, _ in INPUTS)
    nodes: list[Node] = []
    for name, _ in INPUTS[1:]:
        prev = name
        for i in (1, 2, 3):
            nodes.append(VariableNode(f"{name}_{i}", CHOICES, inputs=(prev,)))
            prev = f"{name}_{i}"
    nodes.append(ConstantNode("merge", O.Concatenate(),
                              inputs=("dose",) + tuple(f"{name}_3" for name, _ in INPUTS[1:])))
    prev = "merge"
    for i in (1, 2, 3, 4):
        nodes.append(VariableNode(f"bottom_{i}", CHOICES, inputs=(prev,)))
        nodes.append(ConstantNode(f"residual_{i}", O.AddByPadding(), inputs=(f"bottom_{i}", prev)))
        prev = f"residual_{i}"
    nodes.append(ConstantNode("output", O.Dense(1), inputs=(prev,)))
    return SearchSpace("uno", inputs, tuple(nodes))


def _synthetic(n: int, dims: dict[str, int], seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    xs = [rng.uniform(0, 1, size=(n, 1)).astype(np.float32)]
    signal = np.zeros(n, np.float32)
    for name, _ in INPUTS[1:]:
        x = rng.normal(0, 1, size=(n, dims[name])).astype(np.float32)
        w = np.zeros(dims[name], np.float32)
        w[rng.choice(dims[name], size=min(20, dims[name]), replace=False)] = rng.normal(0, 0.3, size=min(20, dims[name]))
        signal += np.tanh(x @ w)
        xs.append(x)
    y = (signal * (0.5 + xs[0][:, 0]) + rng.normal(0, 0.1, size=n)).astype(np.float32)
    return xs, y[:, None]


def load_uno(data_dir=None, synthetic: bool = False, samples: int | None = None, dims=None, check_only: bool = False,
             test_split: bool = True, **_) -> Dataset | None:
    dims = dims or dict(INPUTS)
    test_fraction = TEST_FRACTION if test_split else 0.0
    if synthetic:
        if check_only:
            return None
        xs, y = _synthetic(samples or 4000, dims)
        return split(xs, y, test_fraction=test_fraction)
    d = need(data_dir, "uno", ("uno.npz or uno.h5 with arrays " + ", ".join(n for n, _ in INPUTS) + ", y",))
    names = [n for n, _ in INPUTS]
    if check_only and ((d / "uno.npz").is_file() or (d / "uno.h5").is_file()):
        return None
    if (d / "uno.npz").is_file():
        with np.load(d / "uno.npz") as z:
            arrays = {k: z[k] for k in z.files}
        source = d / "uno.npz"
    elif (d / "uno.h5").is_file():
        import h5py

        with h5py.File(d / "uno.h5", "r") as f:
            arrays = {k: f[k][()] for k in f.keys()}
        source = d / "uno.h5"
    else:
        raise WtnasError(f"--data-dir {d} lacks uno.npz / uno.h5 (arrays {', '.join(names)}, y)")
    if all(n in arrays for n in names + ["y"]):
        data = split([np.asarray(arrays[n], np.float32).reshape(len(arrays["y"]), -1) for n in names],
                     np.asarray(arrays["y"], np.float32).reshape(-1, 1), test_fraction=test_fraction)
    elif all(f"{n}_{s}" in arrays for n in names + ["y"] for s in ("train", "val")):
        pick = lambda s: [np.asarray(arrays[f"{n}_{s}"], np.float32).reshape(len(arrays[f"y_{s}"]), -1) for n in names]
        data = Dataset(pick("train"), np.asarray(arrays["y_train"], np.float32).reshape(-1, 1),
                       pick("val"), np.asarray(arrays["y_val"], np.float32).reshape(-1, 1))
        if test_split and all(f"{n}_test" in arrays for n in names + ["y"]):   # else: no test split
            data.x_test, data.y_test = pick("test"), np.asarray(arrays["y_test"], np.float32).reshape(-1, 1)
    else:
        raise WtnasError(f"{source} must hold arrays {', '.join(names)}, y (or each with _train/_val); found "
                         f"{', '.join(sorted(arrays))}")
    for (name, dim), x in zip(INPUTS, data.x_train):
        if x.shape[1] != dims[name]:
            raise WtnasError(f"{source}: {name} has {x.shape[1]} features, the space expects {dims[name]}")
    return data


# cast: the loader returns a Dataset unless check_only=True (only check_data passes it)
def uno_problem(**options) -> Problem:
    return Problem("uno", uno_space(), lambda: cast(Dataset, load_uno(**options)),
                   loss="mae", objective="r2", batch_size=32,
                   min_delta=0.02, description="CANDLE Uno (paclitaxel), multi-input regression, R^2",
                   options=options, check_data=lambda: load_uno(check_only=True, **options))


@hookimpl
def wtnas_register_problems(register):
    register("uno", uno_problem, description="CANDLE Uno (--data-dir with uno.npz/uno.h5, or --synthetic)",
             options=(*synthetic_options(4000), test_split_option("20% of y, or the *_test arrays")))
