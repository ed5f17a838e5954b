"""How every torch-driven engine (the torch backend, Keras on torch) sets up a worker's process:
threads, the device, and full float32 on CUDA. One place, so that checkpoints reproduce across
backends and devices. torch is imported only when this is called."""

from __future__ import annotations

from typing import Any

from ..errors import WtnasError
from .devices import require_cuda_for_tf32


def configure_torch(*, threads: int | None = None, device: str = "cpu", precision: str = "fp32") -> Any:
    """Set torch's thread count and return the `torch.device` to train on (`auto`: CUDA when torch
    sees a GPU). A CUDA device torch cannot see is a one-line error. `precision` "tf32" lets CUDA
    matmuls and convolutions use TensorFloat-32 (a CUDA-only format: refused on CPU)."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise WtnasError(f"device {device!r} asked for but torch sees no CUDA GPU; use --device cpu")
    chosen = torch.device(device)
    require_cuda_for_tf32(precision, device)
    if chosen.type == "cuda":
        # fp32: full float32 as on CPU (and in Keras): TF32 would change predictions by ~1e-3, so
        # a checkpoint would not reproduce its scores on another device; tf32 when asked for
        tf32 = precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    return chosen
