"""Run directories: create, refuse to clobber, overwrite or reopen for resume (callers hold the
directory's lease, lease.py, before any of these writes)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from ..errors import RunDirError
from .config import RunConfig
from .lease import LEASE_NAME

STORE_NAME = "wtnas.sqlite"
CONFIG_NAME = "run.toml"
CHECKPOINTS = "checkpoints"


def default_run_dir(cfg: RunConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.problem}-{cfg.strategy}-{cfg.matcher}-{stamp}"


def is_run_dir(path: Path) -> bool:
    return (path / STORE_NAME).is_file()


def not_a_run(path: Path, hint: str) -> str:
    """Why `path` is not a run directory (missing, a file, or no store), then `hint`: one line."""
    if not path.exists():
        return f"{path} does not exist; {hint}"
    if not path.is_dir():
        return f"{path} is a file, not a run directory; {hint}"
    return f"{path} holds no wtnas run (no {STORE_NAME}); {hint}"


def prepare_run_dir(path: Path, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Return `path` ready for a new run (or an existing run when resuming)."""
    if resume and overwrite:
        raise RunDirError("--resume and --overwrite contradict each other; pick one")
    if resume:
        if not is_run_dir(path):
            raise RunDirError(not_a_run(path, "drop --resume to start a new run there"))
        remove_partial_files(path)
        return path
    contents = [p for p in path.iterdir() if p.name != LEASE_NAME] if path.exists() else []
    if contents:
        if not is_run_dir(path):
            raise RunDirError(f"{path} exists, is not empty and is not a wtnas run; choose another --run-dir")
        if not overwrite:
            raise RunDirError(f"{path} already holds a run; use --resume to continue it, --overwrite to "
                              f"replace it, or another --run-dir")
        for p in contents:   # the caller's lease file stays: it guards this very replacement
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    (path / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
    return path


def checkpoint_path(run_dir: Path, candidate_id: int) -> Path:
    return run_dir / CHECKPOINTS / f"c{candidate_id:05d}.h5"


def remove_partial_files(run_dir: Path) -> list[Path]:
    """Temporary files of writes that a crash interrupted (never under a final name)."""
    removed = []
    for pattern in (f"{CHECKPOINTS}/.*.tmp-*", "topk/.*.tmp-*", ".*.tmp", "report/.*.tmp"):
        for p in run_dir.glob(pattern):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
