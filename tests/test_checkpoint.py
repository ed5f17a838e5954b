import subprocess
import sys

import h5py
import numpy as np
import pytest

from wtnas_cli.weights import checkpoint as ck
from wtnas_cli.errors import CheckpointError
from wtnas_cli.model.shapes import TensorSpec


def _meta(shapes):
    specs = [TensorSpec(f"l{i}", "Dense", "kernel" if len(s) > 1 else "bias", s) for i, s in enumerate(shapes)]
    return ck.CheckpointMeta(arch_seq=(1, 0, 2), problem="digits", backend="torch", specs=specs, score=0.5,
                             epochs=1, candidate_id=7, extra={"provider_id": 3})


def _write(path, shapes=((4, 3), (3,), (3, 2))):
    rng = np.random.default_rng(0)
    tensors = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    ck.write_checkpoint(path, _meta(list(shapes)), tensors)
    return tensors


def test_round_trip(tmp_path):
    path = tmp_path / "c.h5"
    tensors = _write(path)
    meta, back = ck.read_checkpoint(path)
    assert meta.arch_seq == (1, 0, 2) and meta.problem == "digits" and meta.backend == "torch"
    assert meta.score == 0.5 and meta.epochs == 1 and meta.candidate_id == 7
    assert meta.extra == {"provider_id": 3}
    assert meta.shape_sequence() == [(4, 3), (3,), (3, 2)]
    for a, b in zip(tensors, back):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    with h5py.File(path) as f:
        assert f.attrs["format"] == "wtnas-checkpoint" and f.attrs["format_version"] == 1


def test_selective_read(tmp_path):
    path = tmp_path / "c.h5"
    tensors = _write(path)
    with ck.CheckpointReader(path) as r:
        got = r.read([2])
    assert list(got) == [2] and np.array_equal(got[2], tensors[2])


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "c.h5"
    original = h5py.Group.create_dataset
    calls = {"n": 0}

    def failing(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return original(self, *a, **k)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(OSError):
        _write(path)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "c.h5"
    first = _write(path)
    monkeypatch.setattr(h5py.Group, "create_dataset", lambda *a, **k: (_ for _ in ()).throw(OSError("boom")))
    with pytest.raises(OSError):
        _write(path, shapes=((2, 2),))
    _, back = ck.read_checkpoint(path)
    assert np.array_equal(back[0], first[0])
    assert [p.name for p in tmp_path.iterdir()] == ["c.h5"]


def test_not_hdf5(tmp_path):
    path = tmp_path / "x.h5"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match="is not an HDF5 file"):
        ck.read_checkpoint_meta(path)


def test_truncated(tmp_path):
    path = tmp_path / "c.h5"
    _write(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        ck.read_checkpoint(path)


def test_hdf5_but_not_wtnas(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(CheckpointError, match="HDF5 file but not a wtnas checkpoint"):
        ck.read_checkpoint_meta(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        ck.read_checkpoint_meta(tmp_path / "nope.h5")


def test_newer_format_refused(tmp_path):
    path = tmp_path / "c.h5"
    _write(path)
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = 99
    ck.seal(path)
    with pytest.raises(CheckpointError, match="upgrade wtnas"):
        ck.read_checkpoint_meta(path)


def test_seal_detects_a_changed_tensor(tmp_path):
    path = tmp_path / "c.h5"
    _write(path)
    with h5py.File(path, "a") as f:
        f["tensors/t0001"][0] = 123.0
    with ck.CheckpointReader(path) as reader:
        reader.read([0, 2])                                       # untouched tensors read fine
        with pytest.raises(CheckpointError, match="modified after writing .*tensor 1"):
            reader.read([1])


def test_seal_detects_a_flipped_bit(tmp_path):
    path = tmp_path / "c.h5"
    _write(path)
    data = bytearray(path.read_bytes())
    for pos in range(0, len(data), max(1, len(data) // 40)):     # the seal, HDF5 structures, tensors
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        path.write_bytes(bytes(flipped))
        with pytest.raises(CheckpointError, match="checksum mismatch|corrupt|damaged|not a"):
            ck.verify_seal(path)


def test_hand_edited_shape_refused(tmp_path):
    path = tmp_path / "c.h5"
    _write(path)
    with h5py.File(path, "a") as f:
        del f["tensors/t0000"]
        f["tensors/t0000"] = np.zeros((5, 3), np.float32)
    ck.seal(path)  # a deliberate, resealed edit gets past the seal but not the shape check
    with ck.CheckpointReader(path) as r, pytest.raises(CheckpointError, match="spec says"):
        r.read([0])


def test_readable_without_torch(tmp_path):
    path = tmp_path / "c.h5"
    _write(path)
    code = ("import sys; sys.modules['torch'] = None; sys.modules['tensorflow'] = None\n"
            "from wtnas_cli.weights.checkpoint import read_checkpoint\n"
            f"meta, t = read_checkpoint({str(path)!r}); print(len(t), meta.problem)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["3", "digits"]


def test_seal_version_1_files_stay_readable(tmp_path):
    """Checkpoints written before per-tensor seals (one hash of the whole payload, 512-byte
    block) are still read, and still refused when damaged."""
    new = tmp_path / "new.h5"
    tensors = _write(new)
    old = tmp_path / "old.h5"
    ck.copy_as_seal_v1(new, old)
    assert old.read_bytes()[16:18] == b"\x01\x00" and h5py.File(old, "r").userblock_size == 512
    meta, back = ck.read_checkpoint(old)
    assert meta.candidate_id == 7 and all(np.array_equal(a, b) for a, b in zip(tensors, back))
    data = bytearray(old.read_bytes())
    data[-10] ^= 1
    old.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        ck.read_checkpoint(old)


def test_a_transfer_reads_the_seal_and_the_matched_tensors_only(tmp_path, monkeypatch):
    """Every byte a reader asks the OS for: the seal and the tensors read, nothing else."""
    import os

    path = tmp_path / "c.h5"
    _write(path, shapes=((400, 300), (300,), (300, 200)))
    asked = []
    real = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, off: asked.append(n) or real(fd, n, off))
    with ck.CheckpointReader(path) as reader:
        reader.read([1])
    block = h5py.File(path, "r").userblock_size
    assert sum(asked) <= block + 300 * 4 < path.stat().st_size / 100
