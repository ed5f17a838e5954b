"""The Keras 3 backends: same shape sequences as torch, exact cross-backend checkpoints, real runs.

`keras` (Keras on PyTorch) runs in this process; `keras-tensorflow` runs in subprocesses, because
Keras fixes its engine per process.
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

if importlib.util.find_spec("keras") is None:  # not importorskip: importing Keras here would fix its engine
    pytest.skip("keras is not installed", allow_module_level=True)
pytest.importorskip("torch")

from conftest import run_cli  # noqa: E402
from wtnas_cli.weights.checkpoint import CheckpointMeta, read_checkpoint, seal, write_checkpoint  # noqa: E402
from wtnas_cli.search.evaluator import Evaluator  # noqa: E402
from wtnas_cli.run.job import Job  # noqa: E402
from wtnas_cli.util.install import source_checkout  # noqa: E402

SPACES = [("digits", {}), ("mnist", {}), ("cifar10", {}), ("nt3", {"features": 64}), ("uno", {})]


@pytest.fixture(scope="module")
def backends():
    from wtnas_keras.backend import KerasBackend
    from wtnas_torch.backend import TorchBackend

    k, t = KerasBackend("torch", "keras"), TorchBackend()
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


def test_the_headline_command_with_a_first_try_budget_transfers(tmp_path):
    """`wtnas run --backend keras --matcher lcs --max-evals 20`: the population follows the small
    budget, so most candidates start from transferred weights (a population of 20 would transfer none)."""
    import csv

    out = run_cli("run", "--backend", "keras", "--matcher", "lcs", "--max-evals", "20", "--run-dir", tmp_path / "r")
    assert out.returncode == 0, out.stderr
    assert "20 of 20 candidates done (0 failed)" in out.stdout
    rows = list(csv.DictReader((tmp_path / "r" / "results.csv").open()))
    warm = [r for r in rows if int(r["n_transferred"]) > 0]
    assert len(rows) == 20 and len(warm) > 0


@pytest.mark.parametrize("backend, missing, extra", [("keras-tensorflow", "tensorflow", "keras-tensorflow"),
                                                     ("keras", "keras", "keras")])
def test_keras_backend_without_its_engine_says_how_to_install(tmp_path, backend, missing, extra):
    code = (f"import sys; sys.modules[{missing!r}] = None\nfrom wtnas_cli.cli import main\n"
            f"main(['run', '--backend', {backend!r}, '--run-dir', {str(tmp_path / 'r')!r}])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 1 and len(lines) == 1, out.stderr
    checkout = source_checkout()   # run from this repository: the hint installs the extra from it
    assert f"pip install -e '{checkout}[{extra}]'" in lines[0] and missing in lines[0]


@pytest.mark.parametrize("backend, keras_loaded", [("torch", "False"), ("keras", "True")])
def test_torch_and_keras_runs_never_import_tensorflow(tmp_path, backend, keras_loaded):
    code = ("import sys\nfrom wtnas_cli.search.evaluator import Evaluator\nfrom wtnas_cli.run.job import Job\n"
            f"r = Evaluator(threads=1).run(Job(0, [0]*11, 'digits', {backend!r}, 'lcs', 1, 0, "
            f"{str(tmp_path / 'c.h5')!r}))\n"
            "print(r.status, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["ok", "False", keras_loaded], out.stderr


def test_in_place_adam_is_keras_adam(backends):
    """The torch engine's Adam takes the same steps as keras.optimizers.Adam (same Keras rule)."""
    import keras
    import torch
    from wtnas_keras.engines import ADAM, InPlaceAdam

    rng = np.random.default_rng(0)
    shapes = [(64, 32), (32,), (3, 3, 4, 8)]
    start = [rng.normal(size=s).astype(np.float32) for s in shapes]
    ours = [torch.tensor(a) for a in start]
    theirs = [keras.Variable(a) for a in start]
    adam, reference = InPlaceAdam(torch, ours), keras.optimizers.Adam(**ADAM)
    reference.build(theirs)
    for _ in range(20):
        grads = [rng.normal(size=s).astype(np.float32) for s in shapes]
        adam.step([torch.tensor(g) for g in grads])
        reference.apply([torch.tensor(g) for g in grads], theirs)
    for a, b, s in zip(ours, theirs, start):
        assert np.abs(a.numpy() - np.asarray(b.value.detach())).max() < 1e-6
        assert np.abs(a.numpy() - s).max() > 1e-3  # it did move


def test_keras_refuses_a_second_engine_in_one_process():
    """TensorFlow imports Keras on itself; the `keras` backend (PyTorch) then says why it cannot run."""
    code = ("import tensorflow\nfrom wtnas_keras.backend import KerasBackend\n"
            "from wtnas_cli.errors import WtnasError\n"
            "try:\n    KerasBackend('torch', 'keras').configure(threads=1)\n"
            "except WtnasError as exc:\n    print(exc)\n")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}  # Keras' default: tensorflow
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert "already runs Keras on tensorflow" in out.stdout and "its own process" in out.stdout, out.stderr


KERAS_TENSORFLOW_CHECK = textwrap.dedent("""
    import json, sys
    import numpy as np
    from wtnas_cli.weights.checkpoint import CheckpointMeta, read_checkpoint, write_checkpoint
    from wtnas_cli.plugins.manager import load_plugins
    from wtnas_keras.backend import KerasBackend
    from wtnas_torch.backend import TorchBackend

    plugins = load_plugins()
    k, t = KerasBackend("tensorflow", "keras-tensorflow"), TorchBackend()
    k.configure(threads=2)
    t.configure(threads=2)
    import keras
    out = {"engine": keras.backend.backend(), "diffs": []}
    for name, options, seq in json.loads(sys.argv[1]):
        problem = plugins.registry.create("problem", name, **options)
        arch = problem.space.resolve(seq)
        for a, b in ((k, t), (t, k)):
            m = a.build(problem, arch, seed=1)
            m.train_epoch(problem.data(), seed=2)
            path = sys.argv[2] + "/c.h5"
            write_checkpoint(path, CheckpointMeta(arch.arch_seq, name, a.name, arch.tensor_specs()), m.get_tensors())
            n = b.build(problem, arch, seed=7)
            n.set_tensors(dict(enumerate(read_checkpoint(path)[1])))
            x = problem.data().x_val
            out["diffs"].append(float(np.abs(m.predict(x) - n.predict(x)).max()))
    print(json.dumps(out))
""")


def test_keras_tensorflow_checkpoints_are_exact_both_ways(plugins, tmp_path):
    """Keras on TensorFlow (run in its own process, with KERAS_BACKEND=jax in its environment to
    show the backend picks its engine itself): BatchNorm, Conv1D/pooling and multi-input models
    move to and from torch with equal predictions."""
    cases = []
    for name, options, want in [
        ("cifar10", {"synthetic": True, "samples": 200}, lambda a: sum(l.op.kind == "BatchNorm" for l in a.layers) >= 2
         and any(l.op.kind == "Dense" and l.op.units < 5000 for l in a.layers[:-1])),
        ("nt3", {"synthetic": True, "samples": 200, "features": 64},
         lambda a: any(l.op.kind == "Conv1D" for l in a.layers) and any(l.op.kind == "MaxPool1D" for l in a.layers)),
        ("uno", {"synthetic": True, "samples": 200}, lambda a: sum(l.op.kind == "Dense" for l in a.layers) >= 4),
    ]:
        problem = plugins.registry.create("problem", name, **options)
        cases.append((name, options, list(_arch_with(problem, want, np.random.default_rng(0)).arch_seq)))
    env = dict(os.environ, KERAS_BACKEND="jax")
    out = subprocess.run([sys.executable, "-c", KERAS_TENSORFLOW_CHECK, json.dumps(cases), str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["engine"] == "tensorflow"
    assert len(result["diffs"]) == 6 and max(result["diffs"]) < 1e-4, result


def test_run_with_keras_tensorflow_backend(tmp_path):
    out = run_cli("run", "--backend", "keras-tensorflow", "--max-evals", "4", "--population", "2", "--sample", "1",
                  "--workers", "2", "--run-dir", tmp_path / "r")
    assert out.returncode == 0, out.stderr
    assert "4 of 4 candidates done (0 failed)" in out.stdout


def test_keras_training_is_deterministic_under_a_seed(plugins, backends):
    """Same seed, same weights after an epoch (initializers and dropout draw from the seed)."""
    problem = plugins.registry.create("problem", "digits")
    arch = _arch_with(problem, lambda a: any(l.op.kind == "Dropout" for l in a.layers), np.random.default_rng(4))
    runs = []
    for _ in range(2):
        model = backends["keras"].build(problem, arch, seed=11)
        loss = model.train_epoch(problem.data(), seed=12)
        runs.append((loss, model.get_tensors()))
    assert runs[0][0] == runs[1][0] and np.isfinite(runs[0][0])
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
    other = backends["keras"].build(problem, arch, seed=13).get_tensors()
    assert not np.array_equal(other[0], runs[0][1][0])


@pytest.mark.parametrize("backend", ["keras", "keras-tensorflow"])
def test_keras_trains_in_bf16_on_cpu_with_float32_weights(tmp_path, backend):
    """`--precision bf16` on both Keras engines: the same seeded run as in fp32 trains to other
    weights (the step really ran in bfloat16: torch autocast, or TensorFlow's mixed policy),
    its checkpoints stay float32, and every candidate scores."""
    tensors = {}
    for precision in ("fp32", "bf16"):
        run_dir = tmp_path / precision
        out = run_cli("run", "--backend", backend, "--precision", precision, "--max-evals", "3", "--seed", "5",
                      "--workers", "1", "--run-dir", run_dir)
        assert out.returncode == 0 and "3 of 3 candidates done (0 failed)" in out.stdout, out.stderr
        _, tensors[precision] = read_checkpoint(run_dir / "checkpoints" / "c00000.h5")
    assert all(t.dtype == np.float32 and np.isfinite(t).all() for t in tensors["bf16"])
    assert [t.shape for t in tensors["bf16"]] == [t.shape for t in tensors["fp32"]]
    assert any(not np.array_equal(a, b) for a, b in zip(tensors["fp32"], tensors["bf16"]))
