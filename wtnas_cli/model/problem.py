"""Problems: a search space, the data it is trained on, the loss and the objective to maximize."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import NonFiniteModel
from .space import SearchSpace

LOSSES = ("categorical_crossentropy", "mse", "mae")
OBJECTIVES = ("accuracy", "r2", "neg_mse")


def as_inputs(x) -> list:
    """A model's inputs as a list: one array, or the list of arrays of a multi-input problem."""
    return list(x) if isinstance(x, (list, tuple)) else [x]


@dataclass
class Dataset:
    """Arrays in canonical layout (channels-last). Classification labels are class indices.

    Training fits the weights, validation scores candidates and stops top-K training (it selects),
    and the optional test split is held out from both: scored once per trained top-K model, after
    its training, never to choose anything."""

    x_train: np.ndarray | list[np.ndarray]   # several arrays for a multi-input problem
    y_train: np.ndarray
    x_val: np.ndarray | list[np.ndarray]
    y_val: np.ndarray
    x_test: np.ndarray | list[np.ndarray] | None = None
    y_test: np.ndarray | None = None
    _test_view: "Dataset | None" = field(default=None, init=False, repr=False, compare=False)

    @property
    def num_train(self) -> int:
        return len(self.y_train)

    @property
    def has_test(self) -> bool:
        return self.x_test is not None and self.y_test is not None and len(self.y_test) > 0

    def test_view(self) -> "Dataset":
        """The test split where a backend's `evaluate` reads (x_val, y_val), so any backend can
        score held-out data without knowing about test splits. Made once and kept."""
        if self.x_test is None or self.y_test is None:
            raise ValueError("this dataset has no test split")
        if self._test_view is None:
            self._test_view = Dataset(self.x_train, self.y_train, self.x_test, self.y_test)
        return self._test_view


@dataclass
class Problem:
    """What a problem plugin registers: everything a backend needs to build, train and score."""

    name: str
    space: SearchSpace
    load_data: Callable[[], Dataset]
    loss: str = "categorical_crossentropy"
    # a built-in name, or your own function objective(pred, y) -> float (larger is better)
    objective: str | Callable[[np.ndarray, np.ndarray], float] = "accuracy"
    batch_size: int = 32
    min_delta: float = 0.001  # early-stopping threshold for top-K training (paper: 0.001 on MNIST)
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    # optional: load and validate the data in the scheduler before any worker trains; it may
    # return a list of one-line warnings, which the run shows once (e.g. badly scaled features)
    check_data: Callable[[], Any] | None = field(default=None, repr=False)
    # the statistics applied to the raw inputs (normalize.Normalization), set when the data is
    # loaded; None for problems that scale their own data (every built-in problem)
    normalization: Any = field(default=None, init=False, repr=False)
    # optional: the data as the user's file holds it, before `normalization` (exports take raw
    # inputs and verify on them); None when `load_data` returns the raw data itself
    load_raw_data: Callable[[], Dataset] | None = field(default=None, init=False, repr=False)
    # the class names behind labels 0..n-1 when the user's data labels classes by name ("no",
    # "yes"); set when the data is loaded; None for numbered classes
    class_names: list[str] | None = field(default=None, init=False, repr=False)
    _data: Dataset | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"problem {self.name!r}: loss {self.loss!r} not in {LOSSES}")
        if not callable(self.objective) and self.objective not in OBJECTIVES:
            raise ValueError(f"problem {self.name!r}: objective {self.objective!r} not in {OBJECTIVES}")

    def data(self) -> Dataset:
        """Load once per process and keep it (workers evaluate many candidates)."""
        if self._data is None:
            self._data = self.load_data()
        return self._data

    def raw_data(self) -> Dataset:
        """The data before any normalization wtnas applied (loaded again, not kept): what a user
        feeds an exported model. The same as `data()` for problems that normalize nothing."""
        return self.load_raw_data() if self.load_raw_data is not None else self.data()


def objective_name(objective) -> str:
    """How reports and tables name an objective (a function by its name)."""
    return objective if isinstance(objective, str) else getattr(objective, "__name__", "custom")


def check_finite_predictions(pred: np.ndarray) -> None:
    """A model whose predictions hold NaN or inf is broken, whatever its objective would score:
    argmax of a NaN row is class 0, so accuracy alone would call it the class-0 share."""
    rows = np.atleast_2d(np.asarray(pred, dtype=np.float64).reshape(len(pred), -1)) if np.ndim(pred) else np.array([[pred]])
    bad = int((~np.isfinite(rows)).any(axis=1).sum())
    if bad:
        raise NonFiniteModel(f"predictions are not finite ({bad} of {len(rows)} validation samples NaN/inf, e.g. "
                             f"from a negative BatchNorm variance); candidate discarded, no checkpoint")


def objective_value(name, pred: np.ndarray, y: np.ndarray) -> float:
    """The problem's objective from predictions (larger is better), the same for every backend;
    `name` is a built-in objective or a function objective(pred, y). Non-finite predictions or
    a non-finite objective raise NonFiniteModel."""
    pred = np.asarray(pred)
    check_finite_predictions(pred)
    value = float(name(pred, y)) if callable(name) else _builtin_objective(name, pred, y)
    if not np.isfinite(value):
        raise NonFiniteModel(f"objective {objective_name(name)} is {value} (not finite); candidate discarded, "
                             f"no checkpoint")
    return value


def _builtin_objective(name: str, pred: np.ndarray, y: np.ndarray) -> float:
    if name == "accuracy":
        return float((pred.argmax(axis=-1) == y.reshape(-1)).mean())
    y = y.reshape(pred.shape).astype(np.float64)
    mse = float(((pred - y) ** 2).mean())
    if name == "neg_mse":
        return -mse
    var = float(((y - y.mean(axis=0)) ** 2).mean())
    return 1.0 - mse / var if var > 0 else float("nan")


def constant_score(problem: Problem) -> float | None:
    """The objective of a model that learned nothing: it predicts the training set's majority class
    (classification) or mean (regression) for every validation sample. A from-scratch check that
    does not beat it learned nothing (results/selection.py); None where the objective cannot score it
    (a custom objective that expects something else)."""
    data = problem.data()
    y_train, y_val = np.asarray(data.y_train), np.asarray(data.y_val)
    if problem.loss == "categorical_crossentropy":
        labels = y_train.reshape(-1).astype(int)
        classes = int(max(labels.max(), int(np.asarray(y_val).max()))) + 1
        pred = np.zeros((len(y_val), classes))
        pred[:, np.bincount(labels, minlength=classes).argmax()] = 1.0
    else:
        mean = y_train.reshape(len(y_train), -1).astype(np.float64).mean(axis=0)
        pred = np.tile(mean, (len(y_val), 1))
    try:
        return objective_value(problem.objective, pred, y_val)
    except Exception:   # a custom objective's own rules; the run's quartile alone then sets the bar
        return None


def extra_metrics(loss: str, pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Metrics reported beside the objective: MAE and MSE for regression problems (Uno)."""
    if loss == "categorical_crossentropy":
        return {}
    err = pred.astype(np.float64) - y.reshape(pred.shape).astype(np.float64)
    return {"mae": float(np.abs(err).mean()), "mse": float((err ** 2).mean())}
