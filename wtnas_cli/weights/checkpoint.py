"""HDF5 checkpoints: one file per candidate, canonical layout, atomic, sealed, versioned.

Layout (format version 1, seal version 2):
    bytes 0..U-1    the seal, in the HDF5 user block (HDF5 ignores it; U a power of two >= 512):
                    magic, seal version, payload length, a copy of the metadata (JSON), and per
                    tensor the byte range of its raw data in the file and its XXH3-64 hash; a
                    hash of the seal itself closes it
    /               attrs: format="wtnas-checkpoint", format_version, wtnas_version, candidate_id,
                    arch_seq, problem, backend, score, epochs, created, meta (JSON: tensor specs,
                    dtypes, extra fields)
    /tensors/tNNNN  one dataset per weight tensor (contiguous), in shape-sequence order,
                    canonical layout
    /optimizer/oNNNN  optional: the optimizer's state (e.g. Adam's moments) in the backend's own
                    layout, so that a promotion (more epochs for the same candidate) continues
                    exactly where training stopped; described by meta's "optimizer" entry and
                    sealed like the tensors (their ranges follow the tensors' in the seal)

A reader checks the seal's own hash, then reads only what it needs, verifying each tensor's
bytes against their hash as it reads them: a transfer reads the seal and the matched tensors,
not the whole file. libhdf5 never parses a checkpoint on this path (it can crash on corrupt
input); h5py and HDF5 tools read the same file as plain HDF5. Seal version 1 files (one hash of
the whole payload, metadata read through h5py after the hash matched) stay readable.
The seal guards against corruption, not against a deliberately forged file. Nothing here
unpickles or evaluates anything. h5py is imported lazily, and only for writing and for seal-1
files.
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

from .. import __version__
from ..errors import CheckpointError
from ..model.shapes import TensorSpec

FORMAT = "wtnas-checkpoint"
FORMAT_VERSION = 1

SEAL_SIZE = 512  # seal version 1's user block; version 2 uses a power of two >= 512 that fits
SEAL_MAGIC = b"WTNAS-CHECKPOINT"
SEAL_VERSION = 2
_SEAL = struct.Struct("<16sHQQ")   # v1: magic, seal version, payload length, XXH3-64 of the payload
# v2: magic, version, payload length, user block size, n tensors, meta length, XXH3-64 of the bytes
# outside the seal and the tensors (HDF5's own structures: only a full verification reads them)
_SEAL2 = struct.Struct("<16sHQIIIQ")
_RANGE = struct.Struct("<QQQ")     # v2, per tensor: offset, length, XXH3-64 of those bytes
_TAIL = struct.Struct("<Q")        # v2: XXH3-64 of the seal's bytes before it
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
    # the optimizer state's description, {} when the file holds none: "state" (the backend's
    # own, e.g. {"kind": "torch-adam", "step": 120}) and "tensors" (shape and dtype of each array)
    optimizer: dict = field(default_factory=dict)

    def shape_sequence(self) -> list[tuple[int, ...]]:
        return [s.shape for s in self.specs]


def _payload_hash(f) -> tuple[int, int]:
    """(length, XXH3-64) of a file's bytes after seal version 1's block, from a read-only mapping."""
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


def _user_block_size(n_tensors: int, meta_bytes: int) -> int:
    """The smallest power of two >= 512 that holds seal version 2 with room for small edits."""
    need = _SEAL2.size + n_tensors * _RANGE.size + meta_bytes + _TAIL.size + 256
    size = SEAL_SIZE
    while size < need:
        size *= 2
    return size


def _header_json(attrs) -> bytes:
    """Root attributes (a mapping, or an open file's attrs) as the seal's JSON copy."""
    doc = {key: (np.asarray(attrs[key]).tolist() if key == "arch_seq" else
                 _text(attrs[key]) if isinstance(attrs[key], (str, bytes)) else np.asarray(attrs[key]).item())
           for key in attrs.keys()}
    return json.dumps(doc, sort_keys=True).encode()


def seal(path: str | os.PathLike) -> None:
    """Write the seal of a checkpoint file in place (after writing it, or after a deliberate edit
    with h5py): the metadata copy, and each tensor's byte range and hash."""
    import h5py
    import xxhash

    path = Path(path)
    with h5py.File(path, "r") as f:
        block = f.userblock_size
        meta = _header_json(f.attrs)
        datasets = [group[name] for key in ("tensors", "optimizer") if (group := f.get(key)) is not None
                    for name in sorted(group.keys())]
        ranges = []
        for ds in datasets:
            name = ds.name.rsplit("/", 1)[-1]
            length = ds.id.get_storage_size()
            offset = ds.id.get_offset() if length else 0
            if length and offset is None:
                raise CheckpointError(f"{path}: tensor {name} is not stored contiguously; write it with write_checkpoint")
            ranges.append((offset or 0, length))
    if block < _user_block_size(len(ranges), len(meta)) - 256:
        raise CheckpointError(f"{path}: its {block}-byte user block cannot hold the seal of {len(ranges)} tensors; "
                              f"write the checkpoint again with wtnas_cli.weights.checkpoint.write_checkpoint")
    with open(path, "r+b") as fh:
        size = os.fstat(fh.fileno()).st_size
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            table = b"".join(_RANGE.pack(o, n, xxhash.xxh3_64_intdigest(mm[o:o + n])) for o, n in ranges)
            rest = _rest_hash(lambda o, n: mm[o:o + n], block, size, ranges)
        head = _SEAL2.pack(SEAL_MAGIC, SEAL_VERSION, size - block, block, len(ranges), len(meta), rest) + table + meta
        head += _TAIL.pack(xxhash.xxh3_64_intdigest(head))
        fh.seek(0)
        fh.write(head.ljust(block, b"\0"))


def _rest_hash(read, block: int, size: int, ranges) -> int:
    """XXH3-64 of the file's bytes after the seal that belong to no tensor, in file order."""
    import xxhash

    h = xxhash.xxh3_64()
    pos = block
    for offset, length, *_ in sorted(r for r in ranges if r[1]):
        if offset > pos:
            h.update(read(pos, offset - pos))
        pos = max(pos, offset + length)
    if size > pos:
        h.update(read(pos, size - pos))
    return h.intdigest()


@dataclass
class _Seal:
    """A verified seal version 2: where each tensor's bytes are and what they hash to."""

    block: int
    ranges: list[tuple[int, int, int]]
    header: dict
    rest: int


def _read_seal(path: Path, fd: int) -> _Seal | None:
    """Check the seal (version 2: its own hash and the file's length; version 1: the whole
    payload's hash) before anything else reads the file; None for version 1."""
    import xxhash

    head = os.pread(fd, SEAL_SIZE, 0)
    if not head.startswith(SEAL_MAGIC):
        if head.startswith(HDF5_SIGNATURE):
            raise CheckpointError(f"{path} is an HDF5 file but not a wtnas checkpoint (no wtnas seal)")
        raise CheckpointError(f"{path} is not an HDF5 file, so not a wtnas checkpoint")
    if len(head) < _SEAL.size:
        raise CheckpointError(f"{path} is truncated or corrupt (damaged seal)")
    version = struct.unpack_from("<H", head, 16)[0]
    if version > SEAL_VERSION:
        raise CheckpointError(f"{path} was sealed by a newer wtnas (seal version {version}); upgrade wtnas")
    size = os.fstat(fd).st_size
    if version == 1:
        _, _, length, digest = _SEAL.unpack_from(head)
        with open(path, "rb") as f:
            actual_length, actual = _payload_hash(f)
        if actual_length != length:
            raise CheckpointError(f"{path} is truncated or corrupt ({actual_length + SEAL_SIZE:,} bytes, "
                                  f"expected {length + SEAL_SIZE:,})")
        if actual != digest:
            raise CheckpointError(f"{path} is corrupt or was modified after writing (checksum mismatch)")
        return None
    if len(head) < _SEAL2.size:
        raise CheckpointError(f"{path} is truncated or corrupt (damaged seal)")
    _, _, length, block, n, meta_len, rest = _SEAL2.unpack_from(head)
    end = _SEAL2.size + n * _RANGE.size + meta_len
    if block < SEAL_SIZE or block & (block - 1) or end + _TAIL.size > block or block > size:
        raise CheckpointError(f"{path} is truncated or corrupt (damaged seal)")
    if block > len(head):
        head += os.pread(fd, block - len(head), len(head))
    if (len(head) < block or _TAIL.unpack_from(head, end)[0] != xxhash.xxh3_64_intdigest(head[:end])
            or head[end + _TAIL.size:block].strip(b"\0")):
        raise CheckpointError(f"{path} is corrupt or was modified after writing (checksum mismatch in its seal)")
    if size != block + length:
        raise CheckpointError(f"{path} is truncated or corrupt ({size:,} bytes, expected {block + length:,})")
    ranges = [_RANGE.unpack_from(head, _SEAL2.size + i * _RANGE.size) for i in range(n)]
    if any(n_bytes and (off < block or off + n_bytes > size) for off, n_bytes, _ in ranges):
        raise CheckpointError(f"{path} is corrupt (a tensor's byte range lies outside the file)")
    try:
        header = json.loads(head[end - meta_len:end])
    except ValueError as exc:
        raise CheckpointError(f"{path}: damaged checkpoint metadata ({_first_line(exc)})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: damaged checkpoint metadata (not a JSON object)")
    return _Seal(block, ranges, header, rest)


def copy_as_seal_v1(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Rewrite a checkpoint in the previous seal format (version 1: 512-byte block, one hash of
    the whole payload): what older wtnas wrote, for compatibility tests and benchmarks."""
    import h5py

    with h5py.File(src, "r") as s_file, h5py.File(dst, "w", userblock_size=SEAL_SIZE) as d_file:
        for key, value in s_file.attrs.items():
            d_file.attrs[key] = value
        for name, ds in s_file["tensors"].items():
            d_file.create_dataset(f"tensors/{name}", data=ds[()])
    with open(dst, "r+b") as f:
        length, digest = _payload_hash(f)
        f.write(_SEAL.pack(SEAL_MAGIC, 1, length, digest).ljust(SEAL_SIZE, b"\0"))


def verify_seal(path: Path) -> None:
    """Refuse anything that is not an intact wtnas checkpoint, reading all of it but parsing none
    of it as HDF5: the seal, every tensor, and (version 2) HDF5's own structures in between."""
    with CheckpointReader(path) as reader:
        reader.read()
        seal2 = reader._seal
        if seal2 is not None:
            size = os.fstat(reader._fd).st_size
            fd = reader._fd
            if _rest_hash(lambda o, n: os.pread(fd, n, o), seal2.block, size, seal2.ranges) != seal2.rest:
                raise CheckpointError(f"{path} is corrupt or was modified after writing (checksum mismatch "
                                      f"outside its tensors)")


def write_checkpoint(path: str | os.PathLike, meta: CheckpointMeta, tensors: Sequence[np.ndarray],
                     durable: bool = True, optimizer: tuple[dict, Sequence[np.ndarray]] | None = None) -> int:
    """Write atomically (temp file + fsync + rename); return the file size in bytes. `optimizer`:
    (its state's JSON description, its arrays), stored beside the tensors for a promotion."""
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
    # (np.asarray, not ascontiguousarray: a scalar such as a step count keeps its shape ())
    state = [np.asarray(a, order="C") for a in optimizer[1]] if optimizer is not None else []
    if optimizer is not None:
        meta.optimizer = table["optimizer"] = {
            "state": optimizer[0], "tensors": [{"shape": list(a.shape), "dtype": a.dtype.str} for a in state]}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    attrs = {"format": FORMAT, "format_version": FORMAT_VERSION, "wtnas_version": meta.wtnas_version,
             "candidate_id": -1 if meta.candidate_id is None else int(meta.candidate_id),
             "arch_seq": np.asarray(meta.arch_seq, dtype=np.int64), "problem": meta.problem, "backend": meta.backend,
             "score": np.nan if meta.score is None else float(meta.score), "epochs": int(meta.epochs),
             "created": float(meta.created), "meta": json.dumps(table)}
    block = _user_block_size(len(arrays) + len(state), len(_header_json(attrs)))
    try:
        with h5py.File(tmp, "w", userblock_size=block) as f:
            for key, value in attrs.items():
                f.attrs[key] = value
            group = f.create_group("tensors")
            for i, arr in enumerate(arrays):
                group.create_dataset(f"t{i:04d}", data=arr)
            if optimizer is not None:
                group = f.create_group("optimizer")
                for i, arr in enumerate(state):
                    group.create_dataset(f"o{i:04d}", data=arr)
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

    Seal version 2: only the seal and the tensors asked for are read (each verified against
    its hash), so a transfer costs metadata + matched tensors of I/O, not the file. Seal
    version 1 (older files): the whole payload is hashed, then h5py reads it. Use as a context
    manager; every problem surfaces as a one-line CheckpointError.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file = None
        if not self.path.is_file():
            raise CheckpointError(f"{self.path}: no such checkpoint file")
        try:
            self._fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise CheckpointError(f"{self.path} is unreadable: {_first_line(exc)}") from None
        try:
            if hasattr(os, "posix_fadvise"):   # we read scattered ranges: no readahead of the rest
                os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_RANDOM)
            self._seal = _read_seal(self.path, self._fd)
            if self._seal is None:
                import h5py

                self._file = h5py.File(self.path, "r")
                self.meta = self._meta(dict(self._file.attrs))
            else:
                self.meta = self._meta(self._seal.header)
                stored = len(self.meta.specs) + len(self.meta.optimizer.get("tensors", ()))
                if len(self._seal.ranges) != stored:
                    raise CheckpointError(f"{self.path}: damaged checkpoint, {len(self._seal.ranges)} tensors "
                                          f"stored for {stored} tensor specs")
        except OSError as exc:
            self.close()
            raise CheckpointError(f"{self.path} is unreadable: {_first_line(exc)}") from None
        except BaseException:
            self.close()
            raise

    def _meta(self, a: dict) -> CheckpointMeta:
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
                extra=dict(table.get("extra", {})), dtypes=[str(e["dtype"]) for e in entries],
                optimizer=_optimizer_entry(table.get("optimizer")))
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, OSError, AttributeError) as exc:
            raise CheckpointError(f"{self.path}: damaged checkpoint metadata ({_first_line(exc)})") from None

    def read(self, indices: Iterable[int] | None = None) -> dict[int, np.ndarray]:
        """Read tensors by shape-sequence index, each checked against its hash (seal version 2)
        and its spec's shape."""
        wanted = range(len(self.meta.specs)) if indices is None else indices
        out = {}
        for i in wanted:
            if not 0 <= i < len(self.meta.specs):
                raise CheckpointError(f"{self.path}: no tensor {i} (checkpoint has {len(self.meta.specs)})")
            arr = self._read_v2(i) if self._seal is not None else self._read_v1(i)
            if tuple(arr.shape) != self.meta.specs[i].shape:
                raise CheckpointError(f"{self.path}: tensor {i} has shape {arr.shape} but its spec says "
                                      f"{self.meta.specs[i].shape}")
            out[i] = arr
        return out

    def read_optimizer(self) -> tuple[dict, list[np.ndarray]] | None:
        """The optimizer state stored with the weights (its description's "state" and its
        arrays, each checked against its hash), or None when the file holds none."""
        entries = self.meta.optimizer.get("tensors")
        if not entries or self._seal is None:
            return None
        first = len(self.meta.specs)
        arrays = [self._read_v2(first + k, tuple(e["shape"]), e["dtype"]) for k, e in enumerate(entries)]
        return dict(self.meta.optimizer.get("state") or {}), arrays

    def _read_v2(self, i: int, shape: tuple[int, ...] | None = None, dtype_str: str | None = None) -> np.ndarray:
        import xxhash

        assert self._seal is not None   # only called for sealed (v2) files
        offset, length, digest = self._seal.ranges[i]
        shape = self.meta.specs[i].shape if shape is None else shape
        try:
            dtype = np.dtype(self.meta.dtypes[i] if dtype_str is None else dtype_str)
        except (TypeError, ValueError, IndexError):
            raise CheckpointError(f"{self.path}: damaged checkpoint metadata (tensor {i} has no valid dtype)") from None
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if length != expected or dtype.hasobject:
            raise CheckpointError(f"{self.path}: tensor {i} holds {length} bytes but its spec says {shape} {dtype.str} "
                                  f"({expected} bytes)")
        data = os.pread(self._fd, length, offset) if length else b""
        if len(data) != length:
            raise CheckpointError(f"{self.path} is truncated or corrupt (tensor {i} is short)")
        if xxhash.xxh3_64_intdigest(data) != digest:
            raise CheckpointError(f"{self.path} is corrupt or was modified after writing (checksum mismatch in "
                                  f"tensor {i})")
        return np.frombuffer(data, dtype=dtype).reshape(shape).copy()

    def _read_v1(self, i: int) -> np.ndarray:
        assert self._file is not None   # v1 files are opened with h5py in __init__
        group = self._file.get("tensors")
        if group is None:
            raise CheckpointError(f"{self.path}: damaged checkpoint, no 'tensors' group")
        try:
            ds = group[f"t{i:04d}"]
            arr = np.empty(ds.shape, dtype=ds.dtype)
            if arr.size:
                ds.read_direct(arr)
        except (KeyError, OSError, TypeError) as exc:
            raise CheckpointError(f"{self.path}: tensor {i} unreadable ({_first_line(exc)})") from None
        return arr

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            del self._fd   # closed: the getattr above makes a second close a no-op

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


def _optimizer_entry(entry) -> dict:
    """The meta table's "optimizer" entry, checked: {} when absent."""
    if entry is None:
        return {}
    if not isinstance(entry, dict) or not isinstance(entry.get("tensors"), list) or not all(
            isinstance(e, dict) and isinstance(e.get("shape"), list) and isinstance(e.get("dtype"), str)
            for e in entry["tensors"]):
        raise ValueError("its optimizer entry is malformed")
    return entry


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None:
        return ""
    return str(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
