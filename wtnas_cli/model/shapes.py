"""Tensor signatures: what a matcher compares and a checkpoint records for each weight tensor."""

from __future__ import annotations

from dataclasses import asdict, dataclass

Shape = tuple[int, ...]


@dataclass(frozen=True)
class TensorSpec:
    """One weight tensor in canonical (Keras) layout, with the layer it belongs to.

    Matchers compare `shape` only (the paper's shape sequence); the rest is provenance for
    humans and for refusing nonsensical copies.
    """

    layer: str
    op: str
    role: str
    shape: Shape
    trainable: bool = True

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TensorSpec":
        return cls(str(d["layer"]), str(d["op"]), str(d["role"]),
                   tuple(int(x) for x in d["shape"]), bool(d.get("trainable", True)))


def format_shape(shape: Shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
