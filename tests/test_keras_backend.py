"""The Keras 3 backend: same shape sequences as torch, exact cross-backend checkpoints, real runs."""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("torch")

from conftest import run_cli  # noqa: E402
from wtnas_cli.checkpoint import CheckpointMeta, read_checkpoint, seal, write_checkpoint  # noqa: E402
from wtnas_cli.evaluator import Evaluator  # noqa: E402
from wtnas_cli.job import Job  # noqa: E402

SPACES = [("digits", {}), ("mnist", {}), ("cifar10", {}), ("nt3", {"features": 64}), ("uno", {})]


@pytest.fixture(scope="module")
def backends():
    from wtnas_keras.backend import KerasBackend
    from wtnas_torch.backend import TorchBackend

    k, t = KerasBackend(), TorchBackend()
    k.configure(threads=2)
    t.configure(threads=2)
    return {"keras": k, "torch": t}


@pytest.mark.parametrize("name, options", SPACES)
def test_same_shape_sequence_on_both_backends(plugins, backends, name, options):
    problem = plugins.registry.create("problem", name, **options)
    rng = np.random.default_rng(3)
    for _ in range(3):
        arch = problem.space.resolve(problem.space.sample(rng))
        shapes = {b: [t.shape for t in backends[b].build(problem, arch, seed=0).get_tensors()] for b in backends}
        assert shapes["keras"] == shapes["torch"] == arch.shape_sequence()


def _arch_with(problem, want, rng, tries=3000):
    for _ in range(tries):
        seq = problem.space.sample(rng)
        arch = problem.space.resolve(seq)
        if want(arch):
            return arch
    raise AssertionError("no such architecture found")


@pytest.mark.parametrize("name, options, want", [
    ("uno", {"synthetic": True, "samples": 200}, lambda a: sum(l.op.kind == "Dense" for l in a.layers) >= 4),
    ("nt3", {"synthetic": True, "samples": 200, "features": 64},
     lambda a: any(l.op.kind == "Conv1D" for l in a.layers) and any(l.op.kind == "MaxPool1D" for l in a.layers)),
    ("cifar10", {"synthetic": True, "samples": 200},
     lambda a: sum(l.op.kind == "BatchNorm" for l in a.layers) >= 2 and any(l.op.kind == "Dense" and l.op.units < 5000
                                                                              for l in a.layers[:-1])),
])
@pytest.mark.parametrize("source, target", [("torch", "keras"), ("keras", "torch")])
def test_cross_backend_transfer_is_exact(plugins, backends, tmp_path, name, options, want, source, target):
    problem = plugins.registry.create("problem", name, **options)
    arch = _arch_with(problem, want, np.random.default_rng(0))
    a = backends[source].build(problem, arch, seed=1)
    a.train_epoch(problem.data(), seed=2)  # non-trivial weights and BatchNorm moving statistics
    path = tmp_path / "c.h5"
    write_checkpoint(path, CheckpointMeta(arch.arch_seq, name, source, arch.tensor_specs()), a.get_tensors())
    _, tensors = read_checkpoint(path)
    b = backends[target].build(problem, arch, seed=7)
    b.set_tensors(dict(enumerate(tensors)))
    x = problem.data().x_val
    diff = np.abs(a.predict(x) - b.predict(x)).max()
    assert diff < 1e-4, f"{source} -> {target} on {name}: predictions differ by {diff}"


def _job(tmp_path, cid, seq, backend, provider=None):
    return Job(cid, list(seq), "digits", backend, "lcs", epochs=1, seed=cid,
               checkpoint_path=str(tmp_path / f"c{cid}.h5"), provider_id=provider,
               provider_checkpoint=str(tmp_path / f"c{provider}.h5") if provider is not None else None)


def test_a_keras_candidate_starts_from_a_torch_checkpoint(tmp_path, plugins):
    ev = Evaluator(threads=2)
    seq = plugins.registry.create("problem", "digits").space.sample(np.random.default_rng(5))
    first = ev.run(_job(tmp_path, 1, seq, "torch"))
    second = ev.run(_job(tmp_path, 2, seq, "keras", provider=1))
    third = ev.run(_job(tmp_path, 3, seq, "torch", provider=2))
    assert first.status == second.status == third.status == "ok"
    assert second.n_transferred == second.n_tensors and third.n_transferred == third.n_tensors


def test_hand_edited_checkpoint_is_refused_and_training_goes_on(tmp_path, plugins):
    import h5py

    ev = Evaluator(threads=2)
    seq = plugins.registry.create("problem", "digits").space.sample(np.random.default_rng(6))
    assert ev.run(_job(tmp_path, 1, seq, "keras")).status == "ok"
    path = tmp_path / "c1.h5"
    with h5py.File(path, "a") as f:  # a tensor that no longer fits its place, re-sealed to get past the seal
        shape = f["tensors/t0000"].shape
        del f["tensors/t0000"]
        f["tensors/t0000"] = np.zeros((shape[0] + 1,) + shape[1:], np.float32)
    seal(path)
    result = ev.run(_job(tmp_path, 2, seq, "keras", provider=1))
    assert result.status == "ok" and result.n_transferred == 0
    assert "trained from scratch" in result.events[0] and "spec says" in result.events[0]


def test_run_with_keras_backend_lcs_and_lp(tmp_path):
    for matcher in ("lcs", "lp"):
        out = run_cli("run", "--backend", "keras", "--matcher", matcher, "--max-evals", "6", "--population", "3",
                      "--sample", "2", "--workers", "2", "--run-dir", tmp_path / matcher)
        assert out.returncode == 0, out.stderr
        assert "6 of 6 candidates done (0 failed)" in out.stdout


def test_keras_backend_without_tensorflow_says_how_to_install(tmp_path):
    code = ("import sys; sys.modules['tensorflow'] = None\nfrom wtnas_cli.cli import main\n"
            f"main(['run', '--backend', 'keras', '--run-dir', {str(tmp_path / 'r')!r}])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 1 and len(lines) == 1
    assert "pip install 'wtnas[keras]'" in lines[0] and "tensorflow" in lines[0]


def test_torch_runs_never_import_tensorflow(tmp_path):
    code = ("import sys\nfrom wtnas_cli.evaluator import Evaluator\nfrom wtnas_cli.job import Job\n"
            f"r = Evaluator(threads=1).run(Job(0, [0]*11, 'digits', 'torch', 'lcs', 1, 0, {str(tmp_path / 'c.h5')!r}))\n"
            "print(r.status, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["ok", "False", "False"], out.stderr
