"""CUDA checks for the torch backend (skipped without a GPU; run on a GPU machine)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

from wtnas_cli.run.config import RunConfig  # noqa: E402
from wtnas_cli.search.scheduler import run_search  # noqa: E402
from wtnas_cli.run.store import RunStore  # noqa: E402
from wtnas_builtins.problems.digits import digits_problem  # noqa: E402
from wtnas_torch.backend import TorchBackend  # noqa: E402


def test_gpu_checkpoint_loads_on_cpu_with_same_predictions():
    problem = digits_problem()
    gpu, cpu = TorchBackend(), TorchBackend()
    gpu.configure(device="cuda")
    cpu.configure(device="cpu")
    arch = problem.space.resolve(problem.space.sample(np.random.default_rng(0)))
    g = gpu.build(problem, arch, seed=0)
    assert next(g.parameters()).is_cuda
    g.train_epoch(problem.data(), seed=1)
    c = cpu.build(problem, arch, seed=5)
    c.set_tensors(dict(enumerate(g.get_tensors())))
    x = problem.data().x_val
    diff = np.abs(g.predict(x) - c.predict(x)).max()
    assert diff < 1e-4, f"GPU and CPU predictions differ by {diff}"
    assert g.evaluate(problem.data()) == c.evaluate(problem.data())  # same predictions, same accuracy


def test_search_on_cuda(tmp_path):
    cfg = RunConfig(max_evals=12, population=4, sample=2, workers=2, device="cuda", run_dir=str(tmp_path / "r"))
    summary = run_search(cfg)
    assert summary.ok == 12 and summary.with_transfer > 0
    store = RunStore(tmp_path / "r" / "wtnas.sqlite")
    assert all(r["status"] == "ok" for r in store.candidates())
    store.close()


def test_local_devices_give_each_worker_a_gpu(tmp_path):
    cfg = RunConfig(max_evals=8, population=4, sample=2, workers=2, devices="auto", run_dir=str(tmp_path / "r"))
    summary = run_search(cfg)
    assert summary.ok == 8
    from wtnas_cli.weights.checkpoint import read_checkpoint_meta

    store = RunStore(tmp_path / "r" / "wtnas.sqlite")
    rows = store.candidates()
    store.close()
    assert all(r["status"] == "ok" for r in rows)
    assert read_checkpoint_meta(rows[0]["checkpoint"]).backend == "torch"


def test_safe_transfer_on_cuda(tmp_path):
    """On the GPU too: a role-blind copy into a BatchNorm variance fails the candidate (NaN
    predictions), and sliced transfer copies its blocks onto CUDA tensors and trains."""
    from wtnas_cli.search.evaluator import Evaluator
    from wtnas_cli.plugins.manager import default_plugins
    from test_safe_transfer import _cifar_job, _negative_variance_provider

    provider, _ = _negative_variance_provider(tmp_path, default_plugins(), "torch")
    ev = Evaluator()
    broken = ev.run(_cifar_job(tmp_path, provider, "lcs-shape", device="cuda"))
    assert broken.status == "failed" and "not finite" in broken.error
    safe = ev.run(_cifar_job(tmp_path, provider, "lcs", device="cuda"))
    assert safe.status == "ok" and safe.n_role_crossed == 0
    cfg = RunConfig(max_evals=16, population=4, sample=2, workers=2, device="cuda", matcher="lcs-slice",
                    run_dir=str(tmp_path / "r"))
    summary = run_search(cfg)
    assert summary.ok == 16 and summary.with_transfer > 0
    store = RunStore(tmp_path / "r" / "wtnas.sqlite")
    rows = store.candidates()
    store.close()
    assert sum(r["n_partial"] or 0 for r in rows) > 0
