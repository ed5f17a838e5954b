"""What a transfer copies, given a matcher's pairs: whole tensors where shapes agree, the
overlapping block where a partial matcher paired tensors of different sizes.

A block copy is parameter remapping (FNA, Fang et al. 2020): unit and channel axes keep their
leading entries (unit k of the provider seeds unit k of the receiver, and the next layer's
kernel rows follow the same order), spatial kernel axes are centred (a 3x3 kernel lands in the
middle of a 5x5 one). What the block does not cover keeps the receiver's fresh initialization.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..model.shapes import TensorSpec
from .matching import Pairs, role_class


@dataclass
class TransferStats:
    """What one transfer moved: tensors (how many only partly), elements, role crossings."""

    tensors: int = 0
    partial: int = 0
    elements: int = 0
    receiver_elements: int = 0
    role_crossings: int = 0  # pairs whose roles differ (only shape-only matchers make them)

    @property
    def share(self) -> float:
        """Share of the receiver's elements that came from the provider."""
        return self.elements / self.receiver_elements if self.receiver_elements else 0.0


def block_slices(src: tuple[int, ...], dst: tuple[int, ...], spatial: int) -> tuple[tuple, tuple]:
    """Index tuples (into src, into dst) of the overlapping block; the first `spatial` axes are
    centred, the others aligned at 0."""
    s_idx, d_idx = [], []
    for axis, (a, b) in enumerate(zip(src, dst)):
        n = min(a, b)
        if axis < spatial:
            s0, d0 = (a - n) // 2, (b - n) // 2
        else:
            s0 = d0 = 0
        s_idx.append(slice(s0, s0 + n))
        d_idx.append(slice(d0, d0 + n))
    return tuple(s_idx), tuple(d_idx)


def spatial_axes(spec: TensorSpec) -> int:
    """Conv kernels are (*kernel, in, out) in canonical layout: all but the last two axes are spatial."""
    return max(len(spec.shape) - 2, 0) if role_class(spec.role) == "kernel" else 0


def plan_stats(pairs: Pairs, provider: Sequence[TensorSpec], receiver: Sequence[TensorSpec]) -> TransferStats:
    """Count what `pairs` would move, from the specs alone (no tensors needed)."""
    stats = TransferStats(receiver_elements=sum(math.prod(s.shape) for s in receiver))
    for i, j in pairs:
        p, r = provider[i], receiver[j]
        stats.tensors += 1
        stats.role_crossings += role_class(p.role) != role_class(r.role)
        if p.shape == r.shape:
            stats.elements += math.prod(r.shape)
        else:
            stats.partial += 1
            stats.elements += math.prod(min(a, b) for a, b in zip(p.shape, r.shape))
    return stats


def assemble(pairs: Pairs, provider: Sequence[TensorSpec], receiver: Sequence[TensorSpec],
             tensors: dict[int, np.ndarray], fresh: Callable[[], list[np.ndarray]]) -> dict[int, np.ndarray]:
    """Receiver tensors to set: provider tensors where shapes agree, and for partial pairs the
    receiver's fresh tensor (`fresh()`, called only if needed) with the overlapping block copied in."""
    out: dict[int, np.ndarray] = {}
    current: list[np.ndarray] | None = None
    for i, j in pairs:
        src = tensors[i]
        if provider[i].shape == receiver[j].shape:
            out[j] = src
            continue
        if current is None:
            current = fresh()
        dst = np.array(current[j], dtype=np.float32, copy=True)
        s_idx, d_idx = block_slices(provider[i].shape, receiver[j].shape, spatial_axes(receiver[j]))
        dst[d_idx] = src[s_idx]
        out[j] = dst
    return out
