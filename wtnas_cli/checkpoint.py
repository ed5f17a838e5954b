"""HDF5 checkpoints: one file per candidate, canonical layout, atomic, checksummed, versioned.

Layout (format version 1):
    /            attrs: format="wtnas-checkpoint", format_version, wtnas_version, candidate_id,
                        arch_seq, problem, backend, score, epochs, created, meta (JSON: tensor specs,
                        dtypes and CRC32 per tensor, extra fields)
    /tensors/tNNNN  one dataset per weight tensor, in shape-sequence order, canonical layout

The tensor table lives in one JSON attribute so reading a checkpoint's shape sequence costs one
attribute read; tensors are then read selectively (only the matched ones). Nothing here unpickles
or evaluates anything: a checkpoint is data only. h5py is imported lazily.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from . import __version__
from .errors import CheckpointError
from .shapes import TensorSpec

FORMAT = "wtnas-checkpoint"
FORMAT_VERSION = 1


@dataclass
class CheckpointMeta:
    arch_seq: tuple[int, ...]
    problem: str
    backend: str
    specs: list[TensorSpec]
    score: float | None = None
    epochs: int = 0
    candidate_id: int | None = None
    created: float = field(default_factory=time.time)
    wtnas_version: str = __version__
    format_version: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)
    checksums: list[int] = field(default_factory=list)
    dtypes: list[str] = field(default_factory=list)

    def shape_sequence(self) -> list[tuple[int, ...]]:
        return [s.shape for s in self.specs]


def _crc(array: np.ndarray) -> int:
    return zlib.crc32(memoryview(np.ascontiguousarray(array)).cast("B"))


def write_checkpoint(path: str | os.PathLike, meta: CheckpointMeta, tensors: Sequence[np.ndarray],
                     durable: bool = True) -> int:
    """Write atomically (temp file + fsync + rename); return the file size in bytes."""
    import h5py

    path = Path(path)
    if len(tensors) != len(meta.specs):
        raise CheckpointError(f"{path}: {len(tensors)} tensors for {len(meta.specs)} tensor specs")
    arrays = [np.ascontiguousarray(t) for t in tensors]
    for i, (a, spec) in enumerate(zip(arrays, meta.specs)):
        if tuple(a.shape) != spec.shape:
            raise CheckpointError(f"{path}: tensor {i} has shape {a.shape}, spec says {spec.shape}")
    meta.checksums = [_crc(a) for a in arrays]
    meta.dtypes = [a.dtype.str for a in arrays]
    table = {
        "tensors": [dict(s.to_dict(), dtype=d, crc32=c)
                    for s, d, c in zip(meta.specs, meta.dtypes, meta.checksums)],
        "extra": meta.extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            a = f.attrs
            a["format"] = FORMAT
            a["format_version"] = FORMAT_VERSION
            a["wtnas_version"] = meta.wtnas_version
            a["candidate_id"] = -1 if meta.candidate_id is None else int(meta.candidate_id)
            a["arch_seq"] = np.asarray(meta.arch_seq, dtype=np.int64)
            a["problem"] = meta.problem
            a["backend"] = meta.backend
            a["score"] = np.nan if meta.score is None else float(meta.score)
            a["epochs"] = int(meta.epochs)
            a["created"] = float(meta.created)
            a["meta"] = json.dumps(table)
            group = f.create_group("tensors")
            for i, arr in enumerate(arrays):
                group.create_dataset(f"t{i:04d}", data=arr)
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
        if durable:
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path.stat().st_size


class CheckpointReader:
    """Open a checkpoint, read its metadata at once and its tensors on demand.

    Use as a context manager; every problem surfaces as a one-line CheckpointError.
    """

    def __init__(self, path: str | os.PathLike):
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"{self.path}: no such checkpoint file")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            if not _looks_like_hdf5(self.path):
                raise CheckpointError(f"{self.path} is not an HDF5 file, so not a wtnas checkpoint") from None
            raise CheckpointError(f"{self.path} is truncated or corrupt: {_first_line(exc)}") from None
        try:
            self.meta = self._read_meta()
        except BaseException:
            self._file.close()
            raise

    def _read_meta(self) -> CheckpointMeta:
        a = self._file.attrs
        try:
            fmt = _text(a.get("format"))
            if fmt != FORMAT:
                raise CheckpointError(f"{self.path} is an HDF5 file but not a wtnas checkpoint (no format={FORMAT!r} attribute)")
            version = int(a["format_version"])
            if version > FORMAT_VERSION:
                raise CheckpointError(f"{self.path} uses checkpoint format {version}; this wtnas reads up to "
                                      f"{FORMAT_VERSION}: upgrade wtnas")
            table = json.loads(_text(a["meta"]))
            entries = table["tensors"]
            specs = [TensorSpec.from_dict(e) for e in entries]
            score = float(a["score"])
            cid = int(a["candidate_id"])
            return CheckpointMeta(
                arch_seq=tuple(int(x) for x in np.asarray(a["arch_seq"]).ravel()),
                problem=_text(a["problem"]), backend=_text(a["backend"]), specs=specs,
                score=None if np.isnan(score) else score, epochs=int(a["epochs"]),
                candidate_id=None if cid < 0 else cid, created=float(a["created"]),
                wtnas_version=_text(a.get("wtnas_version", "?")), format_version=version,
                extra=dict(table.get("extra", {})),
                checksums=[int(e["crc32"]) for e in entries], dtypes=[str(e["dtype"]) for e in entries])
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise CheckpointError(f"{self.path}: damaged checkpoint metadata ({_first_line(exc)})") from None

    def read(self, indices: Iterable[int] | None = None) -> dict[int, np.ndarray]:
        """Read tensors by shape-sequence index, verifying shape and CRC32 of each."""
        wanted = range(len(self.meta.specs)) if indices is None else indices
        out = {}
        group = self._file.get("tensors")
        if group is None:
            raise CheckpointError(f"{self.path}: damaged checkpoint, no 'tensors' group")
        for i in wanted:
            if not 0 <= i < len(self.meta.specs):
                raise CheckpointError(f"{self.path}: no tensor {i} (checkpoint has {len(self.meta.specs)})")
            try:
                ds = group[f"t{i:04d}"]
                arr = np.empty(ds.shape, dtype=ds.dtype)
                if arr.size:
                    ds.read_direct(arr)
            except (KeyError, OSError, TypeError) as exc:
                raise CheckpointError(f"{self.path}: tensor {i} unreadable ({_first_line(exc)})") from None
            if tuple(arr.shape) != self.meta.specs[i].shape:
                raise CheckpointError(f"{self.path}: tensor {i} has shape {arr.shape} but its spec says "
                                      f"{self.meta.specs[i].shape}")
            if _crc(arr) != self.meta.checksums[i]:
                raise CheckpointError(f"{self.path}: tensor {i} fails its CRC32 checksum (corrupt file)")
            out[i] = arr
        return out

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "CheckpointReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_checkpoint_meta(path: str | os.PathLike) -> CheckpointMeta:
    with CheckpointReader(path) as reader:
        return reader.meta


def read_checkpoint(path: str | os.PathLike) -> tuple[CheckpointMeta, list[np.ndarray]]:
    with CheckpointReader(path) as reader:
        tensors = reader.read()
        return reader.meta, [tensors[i] for i in range(len(reader.meta.specs))]


def _looks_like_hdf5(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(8)
    return head == b"\x89HDF\r\n\x1a\n"


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None:
        return ""
    return str(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
