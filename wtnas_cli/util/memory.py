"""Device memory: recognising an out-of-memory error without importing a framework, and
evaluating in batches as large as the device allows (a GPU is only busy with large batches)."""

from __future__ import annotations

import sys
from typing import Callable, TypeVar

T = TypeVar("T")

# the first evaluation batch tried: the validation splits of the built-in problems fit in one on a
# GPU; halved after each out-of-memory error down to MIN_EVAL_BATCH
EVAL_BATCH = 8192
MIN_EVAL_BATCH = 64


def is_out_of_memory(exc: BaseException) -> bool:
    """A device out of memory: torch's `OutOfMemoryError`, TensorFlow's `ResourceExhaustedError`,
    or an error saying so (checked by name and text: no framework is imported here)."""
    name = type(exc).__name__
    text = str(exc)
    return (name in ("OutOfMemoryError", "ResourceExhaustedError") or "CUDA out of memory" in text
            or "OOM when allocating" in text)


def release_device_memory() -> None:
    """After an out-of-memory error, hand torch's cached blocks back so the next try has them."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def in_fitting_batches(predict: Callable[[int], T], first: int = EVAL_BATCH) -> T:
    """`predict(batch)` with the largest batch that fits: `first`, halved after each
    out-of-memory error; below MIN_EVAL_BATCH the error is the caller's (the model itself does
    not fit)."""
    batch = first
    while True:
        try:
            return predict(batch)
        except Exception as exc:
            if not is_out_of_memory(exc) or batch // 2 < MIN_EVAL_BATCH:
                raise
            release_device_memory()
            batch //= 2
