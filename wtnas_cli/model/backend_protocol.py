"""What a backend plugin provides (documentation of the protocol; plugins duck-type it)."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from .problem import Dataset, Problem
from .shapes import TensorSpec
from .space import Architecture


class CandidateModel(Protocol):
    """A built model. Tensors go in and out as numpy arrays in canonical (Keras) layout, indexed
    by position in `specs`, the shape sequence."""

    specs: list[TensorSpec]
    num_params: int

    def get_tensors(self) -> list[np.ndarray]: ...

    def set_tensors(self, tensors: dict[int, np.ndarray]) -> None: ...

    def train_epoch(self, data: Dataset, seed: int) -> float:
        """One pass over the training data (shuffled by `seed`); returns the mean training loss."""

    def evaluate(self, data: Dataset) -> float:
        """The problem's objective on the validation data (larger is better). May set
        `self.last_metrics` (e.g. MAE and MSE for regression), which is stored with the result."""

    def native(self, normalization=None):
        """Optional: this model as the framework's own model object (e.g. a torch `nn.Module`, a
        Keras `Model`), weights included, computing what `predict` computes; with `normalization`
        (a `wtnas_cli.model.normalize.Normalization`) in front, so it takes raw inputs. Used by
        `wtnas_cli.api.load_model`; a backend without it cannot give native models."""

    # Optional, for promoting strategies (asha): `optimizer_state() -> (dict, list[np.ndarray])`,
    # the optimizer's state (JSON-able description, arrays in any layout the backend reads back),
    # and `load_optimizer_state(state, arrays)`. With them a promotion continues the optimizer
    # exactly; without them it restarts it (the result says so). Not declared here so that a
    # backend without them still satisfies the protocol.


class Backend(Protocol):
    name: str

    def configure(self, *, threads: int | None = None, device: str = "cpu") -> None:
        """Called once per worker process before any build."""

    def build(self, problem: Problem, arch: Architecture, seed: int) -> CandidateModel: ...


class Exporter(Protocol):
    """A model file format for `wtnas export` (registered with `wtnas_register_export_formats`).
    The file must load without wtnas: plain framework layers, no wtnas classes inside."""

    @property
    def backend(self) -> str:
        """The backend whose built model this exporter writes (e.g. "torch")."""

    @property
    def suffix(self) -> str:
        """The file name's ending, e.g. ".pt2"."""

    @property
    def layout(self) -> str:
        """One line on what the file takes and returns, for users."""

    def export(self, model: Any, path: str, inputs: list[np.ndarray], normalization=None) -> None:
        """Write `model` (a `CandidateModel` built by `backend`, so an exporter may take that
        backend's own model class; checkpoint loaded) as the inference function its
        `predict` computes; `inputs` are example arrays, one per model input, in canonical layout.
        `normalization` (a `wtnas_cli.model.normalize.Normalization`, passed only for runs that
        normalize) must be written in front of the model, so the file takes raw inputs; an
        exporter without this parameter refuses such runs (one line)."""

    def predict(self, path: str, inputs: list[np.ndarray]) -> np.ndarray:
        """Load the file at `path` as a user would and predict `inputs`."""
