"""`--precision`: a run setting (stored, refused as a change on resume), checked against what the
backend declares before anything runs, and bf16 training on CPU with real torch."""

import numpy as np
import pytest

pytest.importorskip("torch")

from conftest import run_cli  # noqa: E402
from wtnas_cli.weights.checkpoint import read_checkpoint  # noqa: E402


@pytest.mark.parametrize("args, message", [
    (("--precision", "tf32"), "--precision tf32 needs --device cuda"),
    (("--precision", "bf16", "--backend", "keras"), "backend 'keras' trains in fp32; use --precision fp32"),
    (("--precision", "fp16"), "--precision must be one of fp32, tf32, bf16, got 'fp16'"),
])
def test_a_precision_the_run_cannot_train_in_is_refused_before_it_starts(tmp_path, args, message):
    out = run_cli("run", *args, "--run-dir", tmp_path / "r")
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 1 and len(lines) == 1 and message in lines[0], out.stderr
    assert not (tmp_path / "r").exists()


def test_bf16_trains_on_cpu_keeps_float32_checkpoints_and_is_a_run_setting(tmp_path):
    run_dir = tmp_path / "r"
    out = run_cli("run", "--precision", "bf16", "--max-evals", "8", "--run-dir", run_dir)
    assert out.returncode == 0, out.stderr
    assert "8 of 8 candidates done (0 failed)" in out.stdout
    assert 'precision = "bf16"' in (run_dir / "run.toml").read_text()
    _, tensors = read_checkpoint(next((run_dir / "checkpoints").glob("c*.h5")))
    assert all(t.dtype == np.float32 and np.isfinite(t).all() for t in tensors)   # weights and Adam stay float32
    changed = run_cli("run", "--resume", run_dir, "--precision", "fp32", "--max-evals", "10")
    assert changed.returncode == 1 and "--precision fp32 (the run has bf16)" in changed.stderr
    resumed = run_cli("run", "--resume", run_dir, "--max-evals", "10")
    assert resumed.returncode == 0, resumed.stderr
