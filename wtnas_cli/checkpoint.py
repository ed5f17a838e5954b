"""HDF5 checkpoints: one file per candidate, canonical layout, atomic, sealed, versioned.

Layout (format version 1):
    bytes 0..511    the seal, in the HDF5 user block (HDF5 ignores it): magic, seal version,
                    length and XXH3-64 hash of everything after it
    /               attrs: format="wtnas-checkpoint", format_version, wtnas_version, candidate_id,
                    arch_seq, problem, backend, score, epochs, created, meta (JSON: tensor specs,
                    dtypes, extra fields)
    /tensors/tNNNN  one dataset per weight tensor, in shape-sequence order, canonical layout

The seal is checked *before* libhdf5 parses anything: a truncated, bit-flipped or foreign file is
refused with a one-line error instead of reaching HDF5's parser (which can crash on corrupt input).
It guards against corruption, not against a deliberately forged file. The tensor table lives in
one JSON attribute so reading a shape sequence costs one attribute read; tensors are then read
selectively (only the matched ones). Nothing here unpickles or evaluates anything. h5py is
imported lazily.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from . import __version__
from .errors import CheckpointError
from .shapes import TensorSpec

FORMAT = "wtnas-checkpoint"
FORMAT_VERSION = 1

SEAL_SIZE = 512  # an HDF5 user block: a power of two >= 512
SEAL_MAGIC = b"WTNAS-CHECKPOINT"
SEAL_VERSION = 1
_SEAL = struct.Struct("<16sHQQ")  # magic, seal version, payload length, XXH3-64 of the payload
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


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
    dtypes: list[str] = field(default_factory=list)

    def shape_sequence(self) -> list[tuple[int, ...]]:
        return [s.shape for s in self.specs]


def _payload_hash(f) -> tuple[int, int]:
    """(length, XXH3-64) of a file's bytes after the seal, hashed from a read-only mapping."""
    import xxhash

    size = os.fstat(f.fileno()).st_size
    if size <= SEAL_SIZE:
        return max(size - SEAL_SIZE, 0), 0
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = memoryview(mm)
        try:
            return size - SEAL_SIZE, xxhash.xxh3_64_intdigest(view[SEAL_SIZE:])
        finally:
            view.release()


def seal(path: str | os.PathLike) -> None:
    """Write the seal of a checkpoint file in place (after writing it, or after a deliberate edit)."""
    with open(path, "r+b") as f:
        length, digest = _payload_hash(f)
        f.seek(0)
        f.write(_SEAL.pack(SEAL_MAGIC, SEAL_VERSION, length, digest).ljust(SEAL_SIZE, b"\0"))


def verify_seal(path: Path) -> None:
    """Refuse anything that is not an intact wtnas checkpoint, without parsing it as HDF5."""
    with open(path, "rb") as f:
        head = f.read(SEAL_SIZE)
        if not head.startswith(SEAL_MAGIC):
            if head.startswith(HDF5_SIGNATURE):
                raise CheckpointError(f"{path} is an HDF5 file but not a wtnas checkpoint (no wtnas seal)")
            raise CheckpointError(f"{path} is not an HDF5 file, so not a wtnas checkpoint")
        if len(head) < _SEAL.size:
            raise CheckpointError(f"{path} is truncated or corrupt (damaged seal)")
        _, version, length, digest = _SEAL.unpack_from(head)
        if version > SEAL_VERSION:
            raise CheckpointError(f"{path} was sealed by a newer wtnas (seal version {version}); upgrade wtnas")
        actual_length, actual = _payload_hash(f)
        if actual_length != length:
            raise CheckpointError(f"{path} is truncated or corrupt ({actual_length + SEAL_SIZE:,} bytes, "
                                  f"expected {length + SEAL_SIZE:,})")
        if actual != digest:
            raise CheckpointError(f"{path} is corrupt or was modified after writing (checksum mismatch)")


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
    meta.dtypes = [a.dtype.str for a in arrays]
    table = {
        "tensors": [dict(s.to_dict(), dtype=d) for s, d in zip(meta.specs, meta.dtypes)],
        "extra": meta.extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w", userblock_size=SEAL_SIZE) as f:
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
        seal(tmp)
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
            verify_seal(self.path)
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise CheckpointError(f"{self.path} is unreadable: {_first_line(exc)}") from None
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
                extra=dict(table.get("extra", {})), dtypes=[str(e["dtype"]) for e in entries])
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise CheckpointError(f"{self.path}: damaged checkpoint metadata ({_first_line(exc)})") from None

    def read(self, indices: Iterable[int] | None = None) -> dict[int, np.ndarray]:
        """Read tensors by shape-sequence index (the seal already vouched for the bytes); shapes are
        checked against the tensor table all the same."""
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


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None:
        return ""
    return str(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
