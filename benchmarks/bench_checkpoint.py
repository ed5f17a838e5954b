"""Checkpoint throughput for a 40 MB model (the paper's NT3 size): write (atomic, fsync) and read
from page cache, full and metadata-only (target: read >= 1 GB/s)."""

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from wtnas_cli.weights.checkpoint import CheckpointMeta, CheckpointReader, read_checkpoint, write_checkpoint
from wtnas_cli.model.shapes import TensorSpec


def main(repeats: int = 10) -> dict:
    rng = np.random.default_rng(0)
    shapes = [(60483 // 4, 128), (128,), (128, 512), (512,), (512, 2), (2,)] * 5   # ~40 MB of float32
    tensors = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    nbytes = sum(t.nbytes for t in tensors)
    specs = [TensorSpec(f"l{i}", "Dense", "kernel" if len(s) == 2 else "bias", s) for i, s in enumerate(shapes)]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.h5"
        writes, reads, metas = [], [], []
        for _ in range(repeats):
            t = time.perf_counter()
            write_checkpoint(path, CheckpointMeta((0,), "bench", "none", specs), tensors)
            writes.append(time.perf_counter() - t)
        read_checkpoint(path)  # warm the page cache
        for _ in range(repeats):
            t = time.perf_counter()
            read_checkpoint(path)
            reads.append(time.perf_counter() - t)
            t = time.perf_counter()
            with CheckpointReader(path) as r:
                r.meta.shape_sequence()
            metas.append(time.perf_counter() - t)
    w, r, m = statistics.median(writes), statistics.median(reads), statistics.median(metas)
    print(f"{nbytes / 1e6:.1f} MB checkpoint, {len(shapes)} tensors: write {w * 1000:.0f} ms "
          f"({nbytes / w / 1e9:.2f} GB/s, with fsync); read {r * 1000:.1f} ms ({nbytes / r / 1e9:.2f} GB/s, "
          f"target >= 1 GB/s, seal-verified); metadata only (seal check + table) {m * 1000:.2f} ms")
    return {"size_bytes": nbytes, "write_s": w, "read_s": r, "meta_s": m, "read_gb_s": nbytes / r / 1e9,
            "write_gb_s": nbytes / w / 1e9}


if __name__ == "__main__":
    main()
