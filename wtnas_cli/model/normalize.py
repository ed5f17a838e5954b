"""Input normalization for user data (space files: `data.normalize`).

Statistics come from the training split only, per input and per channel (the last axis: a
feature of a table, a channel of a sequence or an image), and are stored with the run as
`normalization.json`, so that exports and later tools apply exactly what training saw:

    from wtnas_cli.model.normalize import load_normalization
    norm = load_normalization("runs/my-run")      # None: the problem scales its own data
    x_ready = norm.apply(x_raw)                    # an array, or a list of arrays (one per input)

Every process (scheduler, each worker, `wtnas topk`) computes the statistics with the same
function from the same training split, so they agree to the bit; the scheduler writes them to
the run directory and a resume refuses statistics that changed (the data changed under the run).
The file is plain JSON (no pickle) and is readable without wtnas: `(x - shift) / scale` per channel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

METHODS = ("standard", "minmax", "none")
# the default for user data files (space files); built-in problems scale their own data and
# never normalize. Measured in docs/search-spaces.md ("Scaling the data").
DEFAULT_METHOD = "standard"
FILE_NAME = "normalization.json"
# feature scales (root mean square per channel) further apart than this are "badly scaled"
SCALE_RATIO_WARN = 100.0


@dataclass
class Normalization:
    """`(x - shift) / scale` per channel of each input; `method` "none" holds no inputs."""

    method: str
    inputs: list[dict[str, Any]] = field(default_factory=list)   # [{"name", "shift": [...], "scale": [...]}]

    def apply(self, x):
        """Raw inputs → normalized float32 inputs: one array, a list/tuple of arrays (one per
        input, in the space's order) or a dict keyed by input name. The structure is kept."""
        if self.method == "none":
            return x
        if isinstance(x, dict):
            by_name = {spec["name"]: spec for spec in self.inputs}
            return {k: _apply(v, by_name[k]) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            if len(x) != len(self.inputs):
                raise ValueError(f"{len(x)} input arrays for a normalization of {len(self.inputs)} inputs")
            return [_apply(a, spec) for a, spec in zip(x, self.inputs)]
        if len(self.inputs) != 1:
            raise ValueError(f"one array for a normalization of {len(self.inputs)} inputs; pass a list")
        return _apply(x, self.inputs[0])

    def to_dict(self) -> dict:
        return {"method": self.method, "formula": "(x - shift) / scale, per channel (last axis)",
                "inputs": self.inputs}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalization":
        return cls(d["method"], [dict(spec) for spec in d.get("inputs", [])])

    def __eq__(self, other) -> bool:
        return isinstance(other, Normalization) and self.to_dict() == other.to_dict()


def _apply(x: np.ndarray, spec: dict) -> np.ndarray:
    shift = np.asarray(spec["shift"], np.float64)
    scale = np.asarray(spec["scale"], np.float64)
    x = np.asarray(x, np.float64)
    if x.shape[-1] != shift.shape[0]:
        raise ValueError(f"input {spec['name']!r}: {x.shape[-1]} channels, the statistics have {shift.shape[0]}")
    return ((x - shift) / scale).astype(np.float32)


def _channels(x: np.ndarray) -> np.ndarray:
    """(samples, ..., channels) → (samples * positions, channels) in float64."""
    x = np.asarray(x, np.float64)
    return x.reshape(-1, x.shape[-1]) if x.ndim > 1 else x.reshape(-1, 1)


def fit(method: str, x_train: Sequence[np.ndarray], names: Sequence[str]) -> Normalization:
    """Statistics of `method` from the training arrays (one per input). A constant channel gets
    scale 1 (it becomes 0 for standard and minmax), never a division by zero."""
    if method not in METHODS:
        raise ValueError(f"normalize {method!r} is not one of {', '.join(METHODS)}")
    if method == "none":
        return Normalization("none")
    specs = []
    for name, x in zip(names, x_train):
        flat = _channels(x)
        if method == "standard":
            shift, scale = flat.mean(axis=0), flat.std(axis=0)
        else:
            shift = flat.min(axis=0)
            scale = flat.max(axis=0) - shift
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        specs.append({"name": name, "shift": [float(v) for v in shift], "scale": [float(v) for v in scale]})
    return Normalization(method, specs)


def scale_spread(x_train: Sequence[np.ndarray]) -> tuple[float, int, int] | None:
    """(ratio, largest channel, smallest channel) of the per-channel root mean square over all
    inputs' channels (constant-zero channels ignored; indices count across inputs), or None."""
    rms = np.concatenate([np.sqrt((_channels(x) ** 2).mean(axis=0)) for x in x_train])
    live = np.flatnonzero(rms > 0)
    if len(live) < 2:
        return None
    hi, lo = live[rms[live].argmax()], live[rms[live].argmin()]
    return float(rms[hi] / rms[lo]), int(hi), int(lo)


def scale_warning(x_train: Sequence[np.ndarray], labels: Sequence[str], data_path, space_path) -> str | None:
    """The one-line warning for badly scaled, unnormalized data, or None; `labels` name every
    channel of every input in order (CSV column names, or input[channel])."""
    spread = scale_spread(x_train)
    if spread is None or spread[0] <= SCALE_RATIO_WARN:
        return None
    ratio, hi, lo = spread
    return (f"{data_path}: feature scales differ {ratio:,.0f}x ({labels[hi]} vs {labels[lo]}) and nothing "
            f"normalizes them, so training may stall at the majority class: set data.normalize = \"standard\" "
            f"in {space_path}")


def channel_labels(x_train: Sequence[np.ndarray], names: Sequence[str], columns: Sequence[str] | None = None) -> list[str]:
    """How the warning names channels: CSV column names for a table, else input[channel]."""
    if columns is not None and len(x_train) == 1 and np.ndim(x_train[0]) == 2 and len(columns) == x_train[0].shape[1]:
        return list(columns)
    return [f"{name}[{c}]" for name, x in zip(names, x_train) for c in range(_channels(x[:1]).shape[1])]


# -- with the run ----------------------------------------------------------------------------------
def save_normalization(run_dir: str | Path, norm: Normalization) -> Path:
    path = Path(run_dir) / FILE_NAME
    tmp = path.with_name(f".{FILE_NAME}.tmp")
    tmp.write_text(json.dumps(norm.to_dict(), indent=1) + "\n")
    tmp.replace(path)
    return path


def load_normalization(source) -> Normalization | None:
    """The statistics a run (or a problem) applies to raw inputs: `source` is a run directory
    (reads its normalization.json) or a Problem (loads its data once). None when the problem
    scales its own data (built-in problems, runs made before normalization existed); a
    Normalization with method "none" when the space file asked for none."""
    from .problem import Problem

    if isinstance(source, Problem):
        source.data()
        return getattr(source, "normalization", None)
    path = Path(source) / FILE_NAME
    if not path.is_file():
        return None
    return Normalization.from_dict(json.loads(path.read_text()))
