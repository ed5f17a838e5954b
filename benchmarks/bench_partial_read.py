"""What a transfer reads from a cold checkpoint: seal version 2 (per-tensor hashes) vs version 1.

    python benchmarks/bench_partial_read.py          # a ~100 MB checkpoint, 5 cold reads each

Per trial the file's pages are dropped from the page cache (fsync, then
`posix_fadvise(POSIX_FADV_DONTNEED)`), a reader opens it and reads one 16 KB tensor, and
`mincore(2)` counts the file's pages the kernel then holds: the bytes the read brought in. The
target: at most 1.2 x (matched tensor + metadata). Seal version 1 (the format before) hashed the
whole payload before anything was read. Raw numbers: benchmarks/results/partial-read-<date>.json.
Linux only (mincore, fadvise).
"""

from __future__ import annotations

import ctypes
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from wtnas_cli.weights import checkpoint as ck
from wtnas_cli.model.shapes import TensorSpec

PAGE = os.sysconf("SC_PAGE_SIZE")
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


def resident_bytes(path: Path) -> int:
    """Bytes of the file in the page cache (mapping it touches no page)."""
    size = path.stat().st_size
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = _libc.mmap(None, size, 1, 1, fd, 0)   # PROT_READ, MAP_SHARED
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap failed")
        try:
            pages = (size + PAGE - 1) // PAGE
            vec = ctypes.create_string_buffer(pages)
            if _libc.mincore(addr, size, vec) != 0:
                raise OSError(ctypes.get_errno(), "mincore failed")
            return sum(b & 1 for b in vec.raw) * PAGE
        finally:
            _libc.munmap(addr, size)
    finally:
        os.close(fd)


def drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def write_files(directory: Path, n_big: int = 24) -> tuple[Path, Path, int, int]:
    """A ~100 MB checkpoint (24 x 4 MB tensors and a 16 KB one in the middle) in seal version 2,
    and the same file sealed the old way (version 1)."""
    import h5py

    shapes = [(1024, 1024)] * (n_big // 2) + [(64, 64)] + [(1024, 1024)] * (n_big // 2)
    rng = np.random.default_rng(0)
    specs = [TensorSpec(f"l{i}", "Dense", "kernel", s) for i, s in enumerate(shapes)]
    meta = ck.CheckpointMeta(arch_seq=(1, 2, 3), problem="bench", backend="torch", specs=specs)
    v2 = directory / "v2.h5"
    ck.write_checkpoint(v2, meta, [rng.standard_normal(s).astype(np.float32) for s in shapes])
    v1 = directory / "v1.h5"
    ck.copy_as_seal_v1(v2, v1)
    small = n_big // 2
    with h5py.File(v2, "r") as f:
        block = f.userblock_size
    return v2, v1, small, block


def main(argv=None) -> dict:
    trials = int(argv[0]) if argv else 5
    out: dict = {"trials": trials}
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:   # on disk: /tmp may be tmpfs
        v2, v1, index, block = write_files(Path(tmp))
        tensor_bytes = 64 * 64 * 4
        needed = tensor_bytes + block
        out.update({"file_bytes": v2.stat().st_size, "tensor_bytes": tensor_bytes, "seal_bytes": block})
        for label, path in (("seal v2", v2), ("seal v1", v1)):
            brought, times = [], []
            for _ in range(trials):
                drop_cache(path)
                before = resident_bytes(path)
                t = time.perf_counter()
                with ck.CheckpointReader(path) as reader:
                    reader.read([index])
                times.append(time.perf_counter() - t)
                brought.append(resident_bytes(path) - before)
            out[label] = {"brought_in_median": statistics.median(brought), "cold_read_ms_median":
                          1000 * statistics.median(times), "resident_before_last": before}
            print(f"{label}: {statistics.median(brought):,.0f} bytes brought into the page cache of a "
                  f"{path.stat().st_size / 1e6:.0f} MB file to read a {tensor_bytes:,}-byte tensor "
                  f"({statistics.median(brought) / needed:.2f} x tensor + seal); cold read "
                  f"{1000 * statistics.median(times):.1f} ms (median of {trials})", flush=True)
    out["ratio_v2"] = out["seal v2"]["brought_in_median"] / needed
    path = Path(__file__).parent / "results" / f"partial-read-{time.strftime('%Y-%m-%d')}.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"target <= 1.2 x (tensor + metadata): {out['ratio_v2']:.2f} x; saved {path}")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
