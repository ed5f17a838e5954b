"""The operation vocabulary of search spaces, backend-neutral.

Each op knows the shape it produces and the weight tensors it owns, in the canonical (Keras)
layout: Dense kernel (in, out), ConvND kernel (*kernel, in, out), channels-last activations.
Shapes exclude the batch dimension. Backends build the same ops; because shape inference lives
here, the shape sequence of an architecture is known without building any model.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

from ..errors import InvalidArchitecture, WtnasError

Shape = tuple[int, ...]

ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "softmax", "elu", "selu")


@dataclass(frozen=True)
class WeightSpec:
    """One weight tensor an op owns: its role (kernel, bias, gamma, ...) and canonical shape."""

    role: str
    shape: Shape
    trainable: bool = True


def _check_activation(name: str | None) -> None:
    if name is not None and name not in ACTIVATIONS:
        raise WtnasError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")


def _check_positive(op, *names: str) -> None:
    for name in names:
        value = getattr(op, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise WtnasError(f"{op.kind} {name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class Op:
    """Base class: an operation with at most one input (merges override `arity`)."""

    kind: ClassVar[str] = "op"

    def output_shape(self, shape: Shape) -> Shape:
        return shape

    def weights(self, shape: Shape) -> list[WeightSpec]:
        return []

    def label(self) -> str:
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                         if getattr(self, f.name) != f.default)
        return f"{self.kind}({args})"

    def to_dict(self) -> dict:
        return {"op": self.kind, **{k: v for k, v in asdict(self).items()}}


@dataclass(frozen=True)
class Identity(Op):
    kind: ClassVar[str] = "Identity"

    def label(self) -> str:
        return "Identity"


@dataclass(frozen=True)
class Flatten(Op):
    kind: ClassVar[str] = "Flatten"

    def output_shape(self, shape: Shape) -> Shape:
        return (math.prod(shape),)

    def label(self) -> str:
        return "Flatten"


@dataclass(frozen=True)
class Activation(Op):
    kind: ClassVar[str] = "Activation"
    function: str = "relu"

    def __post_init__(self):
        _check_activation(self.function)

    def label(self) -> str:
        return f"Activation({self.function})"


@dataclass(frozen=True)
class Dropout(Op):
    kind: ClassVar[str] = "Dropout"
    rate: float = 0.5

    def __post_init__(self):
        if not 0.0 <= self.rate < 1.0:
            raise WtnasError(f"Dropout rate {self.rate} must be in [0, 1)")

    def label(self) -> str:
        return f"Dropout({self.rate:g})"


@dataclass(frozen=True)
class Dense(Op):
    """Fully connected layer on the last axis (as Keras does)."""

    kind: ClassVar[str] = "Dense"
    units: int = 32
    activation: str | None = None
    l2: float = 0.0

    def __post_init__(self):
        _check_activation(self.activation)
        _check_positive(self, "units")

    def output_shape(self, shape: Shape) -> Shape:
        return shape[:-1] + (self.units,)

    def weights(self, shape: Shape) -> list[WeightSpec]:
        return [WeightSpec("kernel", (shape[-1], self.units)), WeightSpec("bias", (self.units,))]

    def label(self) -> str:
        act = f", {self.activation}" if self.activation else ""
        reg = f", l2={self.l2:g}" if self.l2 else ""
        return f"Dense({self.units}{act}{reg})"


def _conv_length(length: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "same":
        return -(-length // stride)
    return (length - kernel) // stride + 1


@dataclass(frozen=True)
class _Conv(Op):
    filters: int = 8
    kernel_size: int = 3
    strides: int = 1
    padding: str = "valid"
    activation: str | None = None
    l2: float = 0.0
    rank: ClassVar[int] = 0

    def __post_init__(self):
        if self.padding not in ("valid", "same"):
            raise WtnasError(f"{self.kind} padding {self.padding!r} must be 'valid' or 'same'")
        if self.padding == "same" and self.strides != 1:
            raise WtnasError(f"{self.kind}: padding 'same' is supported with strides 1 only")
        _check_activation(self.activation)
        _check_positive(self, "filters", "kernel_size", "strides")

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) != self.rank + 1:
            raise InvalidArchitecture(f"{self.label()} needs a rank-{self.rank + 1} input (spatial + channels), got {shape}")
        spatial = tuple(_conv_length(n, self.kernel_size, self.strides, self.padding) for n in shape[:-1])
        if min(spatial) < 1:
            raise InvalidArchitecture(f"{self.label()} does not fit an input of shape {shape}")
        return spatial + (self.filters,)

    def weights(self, shape: Shape) -> list[WeightSpec]:
        kernel = (self.kernel_size,) * self.rank + (shape[-1], self.filters)
        return [WeightSpec("kernel", kernel), WeightSpec("bias", (self.filters,))]

    def label(self) -> str:
        k = "x".join([str(self.kernel_size)] * self.rank)
        extra = f", {self.activation}" if self.activation else ""
        extra += f", stride {self.strides}" if self.strides != 1 else ""
        extra += ", l2" if self.l2 else ""
        return f"{self.kind}({self.filters}, {k}, {self.padding}{extra})"


@dataclass(frozen=True)
class Conv1D(_Conv):
    kind: ClassVar[str] = "Conv1D"
    rank: ClassVar[int] = 1


@dataclass(frozen=True)
class Conv2D(_Conv):
    kind: ClassVar[str] = "Conv2D"
    rank: ClassVar[int] = 2


@dataclass(frozen=True)
class _Pool(Op):
    pool_size: int = 2
    strides: int | None = None
    rank: ClassVar[int] = 0

    def __post_init__(self):
        _check_positive(self, "pool_size")
        if self.strides is not None:
            _check_positive(self, "strides")

    @property
    def stride(self) -> int:
        return self.strides or self.pool_size

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) != self.rank + 1:
            raise InvalidArchitecture(f"{self.label()} needs a rank-{self.rank + 1} input, got {shape}")
        spatial = tuple(_conv_length(n, self.pool_size, self.stride, "valid") for n in shape[:-1])
        if min(spatial) < 1:
            raise InvalidArchitecture(f"{self.label()} does not fit an input of shape {shape}")
        return spatial + (shape[-1],)

    def label(self) -> str:
        s = f", stride {self.strides}" if self.strides and self.strides != self.pool_size else ""
        return f"{self.kind}({self.pool_size}{s})"


@dataclass(frozen=True)
class MaxPool1D(_Pool):
    kind: ClassVar[str] = "MaxPool1D"
    rank: ClassVar[int] = 1


@dataclass(frozen=True)
class MaxPool2D(_Pool):
    kind: ClassVar[str] = "MaxPool2D"
    rank: ClassVar[int] = 2


@dataclass(frozen=True)
class AvgPool1D(_Pool):
    kind: ClassVar[str] = "AvgPool1D"
    rank: ClassVar[int] = 1


@dataclass(frozen=True)
class AvgPool2D(_Pool):
    kind: ClassVar[str] = "AvgPool2D"
    rank: ClassVar[int] = 2


@dataclass(frozen=True)
class BatchNorm(Op):
    """Batch normalization on the channel (last) axis, Keras defaults (momentum 0.99, eps 1e-3)."""

    kind: ClassVar[str] = "BatchNorm"

    def weights(self, shape: Shape) -> list[WeightSpec]:
        c = (shape[-1],)
        return [WeightSpec("gamma", c), WeightSpec("beta", c),
                WeightSpec("moving_mean", c, trainable=False),
                WeightSpec("moving_variance", c, trainable=False)]

    def label(self) -> str:
        return "BatchNorm"


@dataclass(frozen=True)
class Merge(Op):
    """An op that reads two or more nodes (everything else reads exactly one)."""

    def merge_shape(self, shapes: list[Shape]) -> Shape:
        raise NotImplementedError


@dataclass(frozen=True)
class Concatenate(Merge):
    """Concatenate on the last axis; the other axes must agree."""

    kind: ClassVar[str] = "Concatenate"

    def merge_shape(self, shapes: list[Shape]) -> Shape:
        if len({s[:-1] for s in shapes}) != 1:
            raise InvalidArchitecture(f"Concatenate needs equal shapes except the last axis, got {shapes}")
        return shapes[0][:-1] + (sum(s[-1] for s in shapes),)

    def label(self) -> str:
        return "Concatenate"


@dataclass(frozen=True)
class AddByPadding(Merge):
    """Add, zero-padding every input's last axis to the largest (DeepHyper's residual cells)."""

    kind: ClassVar[str] = "AddByPadding"

    def merge_shape(self, shapes: list[Shape]) -> Shape:
        if len({s[:-1] for s in shapes}) != 1:
            raise InvalidArchitecture(f"AddByPadding needs equal shapes except the last axis, got {shapes}")
        return shapes[0][:-1] + (max(s[-1] for s in shapes),)

    def label(self) -> str:
        return "AddByPadding"


OPS: dict[str, type[Op]] = {cls.kind: cls for cls in (
    Identity, Flatten, Activation, Dropout, Dense, Conv1D, Conv2D,
    MaxPool1D, MaxPool2D, AvgPool1D, AvgPool2D, BatchNorm, Concatenate, AddByPadding)}


def op_from_dict(data: dict) -> Op:
    """Rebuild an op from `Op.to_dict()` output (used by space files and run metadata)."""
    data = dict(data)
    kind = data.pop("op", None)
    if not isinstance(kind, str) or kind not in OPS:
        raise WtnasError(f"unknown op {kind!r}; choose one of {', '.join(OPS)}")
    try:
        return OPS[kind](**data)
    except TypeError as exc:
        raise WtnasError(f"bad arguments for op {kind}: {exc}") from None
