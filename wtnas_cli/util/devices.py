"""Which GPUs the local executor hands out, without importing any deep-learning library."""

from __future__ import annotations

import os
import shutil
import subprocess

from ..errors import ConfigError, WtnasError


def visible_gpus() -> list[str]:
    """GPU ids this process may use: CUDA_VISIBLE_DEVICES if set, else what nvidia-smi lists."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def resolve_devices(spec: str | None) -> list[str]:
    """'auto' → every visible GPU (none on a CPU machine); 'cpu' or None → none; '0,1' → those ids."""
    if spec is None or spec.strip().lower() in ("", "cpu", "none"):
        return []
    if spec.strip().lower() == "auto":
        return visible_gpus()
    ids = [d.strip() for d in spec.split(",") if d.strip()]
    if not all(d.isdigit() for d in ids):
        raise ConfigError(f"--devices {spec!r}: give GPU ids like 0,1, or 'auto', or 'cpu'")
    visible = visible_gpus()
    missing = [d for d in ids if d not in visible]
    if missing:
        raise ConfigError(f"--devices {spec!r}: GPU {', '.join(missing)} not visible (visible: "
                          f"{', '.join(visible) or 'none'}); use --devices auto, or cpu")
    return ids


def require_cuda_for_tf32(precision: str, device: str) -> None:
    """Refuse `--precision tf32` on anything but a CUDA device (every engine checks it the same way)."""
    if precision == "tf32" and not device.startswith("cuda"):
        raise WtnasError(f"--precision tf32 needs a CUDA device (TensorFloat-32 is an NVIDIA tensor-core format), "
                         f"not {device!r}; use --precision fp32 or bf16 on CPU")
