"""Issue #32 on CPU: `--precision` (a run setting, checked against what the backend declares before
anything runs; bf16 training with real torch), workers per device (fake GPU ids), and a device
out of memory failing one candidate with its reason."""

import numpy as np
import pytest

pytest.importorskip("torch")

from conftest import run_cli  # noqa: E402
from wtnas_cli.weights.checkpoint import read_checkpoint  # noqa: E402


@pytest.mark.parametrize("args, message", [
    (("--precision", "tf32"), "--precision tf32 needs --device cuda"),
    (("--precision", "fp16"), "--precision must be one of fp32, tf32, bf16, got 'fp16'"),
    (("--workers-per-device", "0"), "--workers-per-device must be at least 1, got 0"),
])
def test_a_precision_the_run_cannot_train_in_is_refused_before_it_starts(tmp_path, args, message):
    out = run_cli("run", *args, "--run-dir", tmp_path / "r")
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 1 and len(lines) == 1 and message in lines[0], out.stderr
    assert not (tmp_path / "r").exists()


def test_a_backend_that_declares_no_precisions_trains_in_fp32_only(tmp_path):
    import worker_plugin_module
    from wtnas_cli.errors import ConfigError
    from wtnas_cli.testing import fresh_plugins, tiny_search

    with pytest.raises(ConfigError) as err:
        tiny_search(tmp_path / "r", plugins=fresh_plugins(worker_plugin_module), problem="worker-blobs",
                    backend="worker-torch", precision="bf16")
    assert str(err.value) == ("--precision bf16: backend 'worker-torch' trains in fp32; use --precision fp32 "
                              "or --backend torch")
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


def test_workers_per_device_multiplies_the_workers_of_the_visible_gpus(monkeypatch):
    """Fake device ids through CUDA_VISIBLE_DEVICES: 4 workers per GPU by default, the flag's
    number when given, and an explicit --workers wins; no GPU, no change."""
    from wtnas_cli.run.config import RunConfig

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert RunConfig(devices="auto").validate().executor_options()["workers"] == 8
    assert RunConfig(devices="auto", workers_per_device=2).validate().executor_options()["workers"] == 4
    assert RunConfig(devices="0", workers_per_device=3).validate().executor_options()["workers"] == 3
    assert RunConfig(devices="auto", workers=5).validate().executor_options()["workers"] == 5
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert RunConfig(devices="auto").validate().executor_options()["workers"] is None   # the CPU default


def test_a_worker_out_of_device_memory_fails_that_candidate_with_the_reason(monkeypatch, tmp_path):
    """A simulated CUDA out-of-memory error during training: the candidate fails with a reason
    that names the device and what to change, marked as the device's fault; nothing is written."""
    import torch
    from wtnas_cli.plugins.manager import default_plugins
    from wtnas_cli.run.job import Job
    from wtnas_cli.search.evaluator import Evaluator
    from wtnas_torch.backend import TorchModel

    def oom(self, data, seed):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 139.8 GiB total)")

    monkeypatch.setattr(TorchModel, "train_epoch", oom)
    plugins = default_plugins()
    seq = plugins.registry.create("problem", "digits").space.sample(np.random.default_rng(0))
    result = Evaluator(plugins).run(Job(candidate_id=0, arch_seq=list(seq), problem="digits", backend="torch",
                                        matcher="lcs", epochs=1, seed=1, checkpoint_path=str(tmp_path / "c.h5")))
    assert result.status == "failed" and result.fault == "device_oom"
    assert result.error.startswith("out of device memory on cpu") and "--workers-per-device" in result.error
    assert "Tried to allocate 2.00 GiB" in result.error and not (tmp_path / "c.h5").exists()


def _drain(pool, n: int) -> list:
    results: list = []
    while len(results) < n:
        results += pool.poll(timeout=5.0)
    return results


def test_a_gpu_out_of_memory_backs_off_one_worker_of_that_device(tmp_path):
    """Four local workers on two fake GPU ids; every model on GPU "1" runs out of memory. Its first
    out-of-memory failure parks one of GPU 1's two workers (the error says so), the second finds
    it down to one and leaves it; GPU 0 keeps both, and the pool goes on with three workers."""
    import worker_plugin_module
    from wtnas_cli.run.job import Job
    from wtnas_cli.search.workers import WorkerPool
    from wtnas_cli.testing import fresh_plugins

    plugins = fresh_plugins(worker_plugin_module)
    seq = plugins.registry.create("problem", "worker-blobs").space.sample(np.random.default_rng(0))

    def job(i: int) -> Job:
        return Job(candidate_id=i, arch_seq=list(seq), problem="worker-blobs", backend="worker-oom-torch",
                   matcher="lcs", epochs=1, seed=i, checkpoint_path=str(tmp_path / f"c{i}.h5"),
                   plugins=plugins.spec.to_dict())

    pool = WorkerPool(workers=4, threads_per_worker=1, devices=["0", "1"])   # GPU 0: workers 0, 2; GPU 1: 1, 3
    try:
        pool.start()
        for i in range(4):
            pool.submit(job(i))
        first = _drain(pool, 4)
        failed = [r for r in first if r.status == "failed"]
        assert sorted(r.candidate_id for r in failed) == [1, 3] and all(r.fault == "device_oom" for r in failed)
        assert all(r.status == "ok" for r in first if r.candidate_id in (0, 2))
        backed_off = [r for r in failed if "GPU 1 now runs 1 worker(s)" in r.error]
        assert len(backed_off) == 1 and "--workers-per-device" in backed_off[0].error
        assert pool.capacity == 3 and pool.idle() == 3
        assert pool.workers_on("0") == 2 and pool.workers_on("1") == 1

        for i in range(4, 7):   # the three live workers: GPU 1's last one still fails, alone
            pool.submit(job(i))
        second = _drain(pool, 3)
        assert sum(r.status == "ok" for r in second) == 2
        assert [r.fault for r in second if r.status == "failed"] == ["device_oom"]
        assert pool.capacity == 3 and pool.workers_on("1") == 1
    finally:
        pool.shutdown()


def test_evaluation_uses_the_largest_batch_that_fits():
    """Batches start at EVAL_BATCH and halve after each out-of-memory error; another error, or one
    that persists down to MIN_EVAL_BATCH, is the caller's."""
    from wtnas_cli.util.memory import EVAL_BATCH, MIN_EVAL_BATCH, in_fitting_batches

    class OutOfMemoryError(RuntimeError):
        pass

    tried: list[int] = []

    def predict(batch: int, fits: int) -> int:
        tried.append(batch)
        if batch > fits:
            raise OutOfMemoryError("CUDA out of memory")
        return batch

    assert in_fitting_batches(lambda b: predict(b, 1000)) == EVAL_BATCH // 16
    assert tried == [EVAL_BATCH, EVAL_BATCH // 2, EVAL_BATCH // 4, EVAL_BATCH // 8, EVAL_BATCH // 16]
    with pytest.raises(OutOfMemoryError):
        in_fitting_batches(lambda b: predict(b, MIN_EVAL_BATCH - 1))
    with pytest.raises(ValueError):
        in_fitting_batches(lambda b: (_ for _ in ()).throw(ValueError("not memory")))


def test_a_torch_evaluation_that_runs_out_of_memory_scores_the_same_in_smaller_batches(monkeypatch, tmp_path):
    import torch
    from wtnas_cli.plugins.manager import default_plugins
    from wtnas_torch.backend import TorchBackend, TorchModel

    plugins = default_plugins()
    problem = plugins.registry.create("problem", "digits")
    backend = TorchBackend()
    backend.configure(threads=1)
    model = backend.build(problem, problem.space.resolve(problem.space.sample(np.random.default_rng(2))), seed=3)
    data = problem.data()
    model.train_epoch(data, seed=3)
    whole = model.evaluate(data)
    real, batches = TorchModel.predict, []

    def small_device(self, x, batch=1024):
        batches.append(batch)
        if batch > 100:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return real(self, x, batch=batch)

    monkeypatch.setattr(TorchModel, "predict", small_device)
    assert model.evaluate(data) == pytest.approx(whole, abs=1e-6)
    assert batches[-1] <= 100 and batches == sorted(batches, reverse=True)


def test_a_run_whose_models_do_not_fit_the_gpu_even_alone_stops_with_the_reason(monkeypatch, tmp_path):
    """Fake GPU "1" on which every model runs out of memory, 2 workers on it: one is backed off,
    the other's failures go on, and the first candidates' out-of-memory failures (whatever sizes
    their messages name) stop the run with the reason, as any error every candidate shares does."""
    import worker_plugin_module
    from wtnas_cli.errors import RunFailedError
    from wtnas_cli.testing import fresh_plugins, tiny_search

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with pytest.raises(RunFailedError) as err:
        tiny_search(tmp_path / "r", plugins=fresh_plugins(worker_plugin_module), problem="worker-blobs",
                    backend="worker-oom-torch", devices="1", workers=None, workers_per_device=2, max_evals=12)
    message = str(err.value)
    assert "candidates all failed with the same error" in message and "out of device memory on cuda" in message
    assert "\n" not in message
