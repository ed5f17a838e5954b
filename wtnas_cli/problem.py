"""Problems: a search space, the data it is trained on, the loss and the objective to maximize."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .space import SearchSpace

LOSSES = ("categorical_crossentropy", "mse", "mae")
OBJECTIVES = ("accuracy", "r2", "neg_mse")


def as_inputs(x) -> list:
    """A model's inputs as a list: one array, or the list of arrays of a multi-input problem."""
    return list(x) if isinstance(x, (list, tuple)) else [x]


@dataclass
class Dataset:
    """Arrays in canonical layout (channels-last). Classification labels are class indices."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    @property
    def num_train(self) -> int:
        return len(self.y_train)


@dataclass
class Problem:
    """What a problem plugin registers: everything a backend needs to build, train and score."""

    name: str
    space: SearchSpace
    load_data: Callable[[], Dataset]
    loss: str = "categorical_crossentropy"
    objective: str = "accuracy"
    batch_size: int = 32
    min_delta: float = 0.001  # early-stopping threshold for top-K training (paper: 0.001 on MNIST)
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    # optional: load and validate the data in the scheduler before any worker trains
    check_data: Callable[[], Any] | None = field(default=None, repr=False)
    _data: Dataset | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"problem {self.name!r}: loss {self.loss!r} not in {LOSSES}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"problem {self.name!r}: objective {self.objective!r} not in {OBJECTIVES}")

    def data(self) -> Dataset:
        """Load once per process and keep it (workers evaluate many candidates)."""
        if self._data is None:
            self._data = self.load_data()
        return self._data


def objective_value(name: str, pred: np.ndarray, y: np.ndarray) -> float:
    """The problem's objective from predictions (larger is better), the same for every backend."""
    if name == "accuracy":
        return float((pred.argmax(axis=-1) == y.reshape(-1)).mean())
    y = y.reshape(pred.shape).astype(np.float64)
    mse = float(((pred - y) ** 2).mean())
    if name == "neg_mse":
        return -mse
    var = float(((y - y.mean(axis=0)) ** 2).mean())
    return 1.0 - mse / var if var > 0 else float("nan")


def extra_metrics(loss: str, pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Metrics reported beside the objective: MAE and MSE for regression problems (Uno)."""
    if loss == "categorical_crossentropy":
        return {}
    err = pred.astype(np.float64) - y.reshape(pred.shape).astype(np.float64)
    return {"mae": float(np.abs(err).mean()), "mse": float((err ** 2).mean())}
