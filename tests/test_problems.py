"""Built-in problems (real file formats, synthetic data, every space buildable) and
user-defined problems from a space file (the documented example, and every validation error)."""

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from conftest import ROOT, run_cli  # noqa: E402
from wtnas_cli.model.data import write_idx  # noqa: E402
from wtnas_cli.testing import check_backend  # noqa: E402

SIZES = {"mnist": (11, 8.4e7), "cifar10": (21, 2.18e15), "nt3": (9, 3.84e6), "uno": (13, 3.03e14)}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_space_sizes(plugins, name):
    nodes, size = SIZES[name]
    space = plugins.registry.create("problem", name).space
    assert len(space.variable_nodes) == nodes
    assert space.size == pytest.approx(size, rel=0.01)


@pytest.mark.parametrize("name, options", [("mnist", {}), ("cifar10", {}), ("nt3", {"features": 300}), ("uno", {})])
def test_torch_builds_every_space_in_canonical_layout(plugins, name, options):
    problem = plugins.registry.create("problem", name, **options)
    backend = plugins.registry.create("backend", "torch")
    backend.configure(threads=1)
    check_backend(backend, problem, samples=4, seed=1)


@pytest.mark.parametrize("name, extra", [
    ("mnist", ["--samples", "600"]), ("cifar10", ["--samples", "300"]),
    ("nt3", ["--samples", "300", "--features", "400"]), ("uno", ["--samples", "400"]),
])
def test_short_synthetic_search(tmp_path, name, extra):
    out = run_cli("run", "--problem", name, "--synthetic", *extra, "--max-evals", "6", "--population", "3",
                  "--sample", "2", "--workers", "2", "--run-dir", tmp_path / "r")
    assert out.returncode == 0, out.stderr
    assert "6 of 6 candidates done (0 failed)" in out.stdout


def test_synthetic_data_is_learnable(plugins):
    """A few epochs of a fixed mnist architecture beat chance by far (the data is not noise)."""
    problem = plugins.registry.create("problem", "mnist", synthetic=True, samples=1500)
    backend = plugins.registry.create("backend", "torch")
    backend.configure(threads=2)
    model = backend.build(problem, problem.space.resolve([1, 0, 1, 1, 0, 1, 3, 0, 0, 0, 0]), seed=0)
    for epoch in range(3):
        model.train_epoch(problem.data(), seed=epoch)
    assert model.evaluate(problem.data()) > 0.5


def test_mnist_reads_idx_and_npz(tmp_path, plugins):
    rng = np.random.default_rng(0)
    imgs, labels = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), rng.integers(0, 10, 20, dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", imgs)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", imgs[:5])
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels[:5])
    data = plugins.registry.create("problem", "mnist", data_dir=str(tmp_path)).data()
    # t10k is the held-out test split; validation is 10% of the training files
    assert data.x_train.shape == (18, 28, 28, 1) and data.x_val.shape == (2, 28, 28, 1)
    assert np.allclose(data.x_test[:, :, :, 0], imgs[:5] / 255.0) and list(data.y_test) == list(labels[:5])
    old = plugins.registry.create("problem", "mnist", data_dir=str(tmp_path), test_split=False).data()
    assert old.x_train.shape == (20, 28, 28, 1) and old.x_val.shape == (5, 28, 28, 1) and not old.has_test
    assert np.allclose(old.x_train[3, :, :, 0], imgs[3] / 255.0) and list(old.y_train) == list(labels)
    npz = tmp_path / "npz"
    npz.mkdir()
    np.savez(npz / "mnist.npz", x_train=imgs, y_train=labels, x_test=imgs[:5], y_test=labels[:5])
    data = plugins.registry.create("problem", "mnist", data_dir=str(npz)).data()
    assert data.x_train.shape == (18, 28, 28, 1) and data.x_test.shape == (5, 28, 28, 1)


def test_cifar10_reads_binary_batches(tmp_path, plugins):
    rng = np.random.default_rng(1)
    d = tmp_path / "cifar-10-batches-bin"
    d.mkdir()
    recs = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        rec = rng.integers(0, 256, (4, 3073), dtype=np.uint8)
        rec[:, 0] = rng.integers(0, 10, 4)
        rec.tofile(d / name)
        recs[name] = rec
    data = plugins.registry.create("problem", "cifar10", data_dir=str(tmp_path)).data()
    assert data.x_train.shape == (18, 32, 32, 3) and data.x_val.shape == (2, 32, 32, 3)
    assert data.x_test.shape == (4, 32, 32, 3) and list(data.y_test) == list(recs["test_batch.bin"][:, 0])
    data = plugins.registry.create("problem", "cifar10", data_dir=str(tmp_path), test_split=False).data()
    assert data.x_train.shape == (20, 32, 32, 3) and data.x_val.shape == (4, 32, 32, 3)
    first = recs["data_batch_1.bin"][0]
    assert data.y_train[0] == first[0]
    assert np.allclose(data.x_train[0, 0, 0], first[1:].reshape(3, 32, 32)[:, 0, 0] / 255.0)  # channels last


def test_nt3_reads_csv(tmp_path, plugins):
    rng = np.random.default_rng(2)
    for name, n in (("nt_train2.csv", 12), ("nt_test2.csv", 4)):
        table = np.column_stack([rng.integers(0, 2, n), rng.normal(size=(n, 50))])
        np.savetxt(tmp_path / name, table, delimiter=",")
    data = plugins.registry.create("problem", "nt3", data_dir=str(tmp_path), features=50).data()
    assert data.x_train.shape == (11, 50, 1) and set(data.y_train) <= {0, 1}
    assert data.x_val.shape == (1, 50, 1) and data.x_test.shape == (4, 50, 1)
    old = plugins.registry.create("problem", "nt3", data_dir=str(tmp_path), features=50, test_split=False).data()
    assert old.x_train.shape == (12, 50, 1) and old.x_val.shape == (4, 50, 1) and not old.has_test


def test_uno_reads_npz_and_h5(tmp_path, plugins):
    import h5py

    rng = np.random.default_rng(3)
    arrays = {"dose": rng.random((30, 1)), "cell_rnaseq": rng.random((30, 942)),
              "drug_descriptors": rng.random((30, 5270)), "drug_fingerprints": rng.random((30, 2048)),
              "y": rng.random(30)}
    np.savez(tmp_path / "uno.npz", **arrays)
    data = plugins.registry.create("problem", "uno", data_dir=str(tmp_path)).data()
    assert [x.shape[1] for x in data.x_train] == [1, 942, 5270, 2048] and data.y_train.shape[1] == 1
    h5dir = tmp_path / "h5"
    h5dir.mkdir()
    with h5py.File(h5dir / "uno.h5", "w") as f:
        for k, v in arrays.items():
            f[k] = v
    data = plugins.registry.create("problem", "uno", data_dir=str(h5dir)).data()
    assert len(data.y_train) == 18 and len(data.y_val) == len(data.y_test) == 6


@pytest.mark.parametrize("problem, expected", [("mnist", "mnist.npz"), ("cifar10", "cifar-10-batches-bin"),
                                               ("nt3", "nt_train2.csv"), ("uno", "uno.npz")])
def test_missing_data_names_the_expected_files(tmp_path, problem, expected):
    for args in (["--data-dir", tmp_path], []):
        out = run_cli("run", "--problem", problem, *args, "--run-dir", tmp_path / "r", "--max-evals", 2)
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert out.returncode == 1 and len(lines) == 1 and expected in lines[0], out.stderr
    assert not (tmp_path / "r").exists()


# -- user-defined problems ----------------------------------------------------------------------
def _docs_example(tmp_path) -> tuple[Path, Path]:
    doc = (ROOT / "docs" / "search-spaces.md").read_text()
    toml_text = re.search(r"```toml\n(.*?)```", doc, re.S).group(1)
    python_text = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    (tmp_path / "wine.toml").write_text(toml_text)
    subprocess.run(["python", "-c", python_text], cwd=tmp_path, check=True)
    return tmp_path / "wine.toml", tmp_path / "wine.csv"


def test_documented_example_runs(tmp_path):
    space, data = _docs_example(tmp_path)
    out = run_cli("run", "--space", space, "--data", data, "--max-evals", "12", "--population", "4", "--sample", "2",
                  "--epochs", "3", "--run-dir", tmp_path / "r")
    assert out.returncode == 0, out.stderr
    assert "12 of 12 candidates done (0 failed)" in out.stdout
    best = float(re.search(r"│ \d+\s+│ (0\.\d+) │", out.stdout).group(1))
    assert best > 0.8
    out = run_cli("spaces", "--space", space)
    assert out.returncode == 0 and "wine: 4 variable nodes" in out.stdout
    topk = run_cli("topk", tmp_path / "r", "--k", "2", "--max-epochs", "3")
    assert topk.returncode == 0, topk.stderr


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('op = "Dense", units = 16', 'op = "Dens", units = 16'),
     "nodes[0].choices[0]: unknown op 'Dens'"),
    (lambda t: t.replace("units = 64, activation = \"relu\"", "units = \"64\", activation = \"relu\""),
     "nodes[0].choices[1].units: must be an integer, got '64'"),
    (lambda t: t.replace("units = 16,", "unit = 16,"), "Dense has no parameter 'unit'"),
    (lambda t: t.replace("shape = [13]", "shape = [12]"),
     "input 'chem' has shape [12] but the data"),
    (lambda t: t.replace("units = 3, activation", "units = 2, activation"), "labels go up to 2"),
    (lambda t: t.replace('name = "wine"', 'name = "wine"\nmax_evals = 3'), "max_evals: unknown key"),
    (lambda t: t.replace('activation = "tanh"', 'activation = "tanhh"'), "unknown activation 'tanhh'"),
    (lambda t: t.replace('inputs = ["wide", "deep2"]', 'inputs = ["wide", "deeep"]'), "reads ['deeep']"),
    (lambda t: t + "\n[[nodes]]\nname = \"x\"\n", "give exactly one of choices"),
])
def test_space_file_errors(tmp_path, edit, message):
    space, data = _docs_example(tmp_path)
    space.write_text(edit(space.read_text()))
    out = run_cli("run", "--space", space, "--data", data, "--run-dir", tmp_path / "r")
    assert out.returncode == 1, out.stdout
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and (space.name in lines[0] or data.name in lines[0]), out.stderr
    assert message in lines[0], lines[0]
    assert not (tmp_path / "r").exists(), "nothing may be written before the space and data are valid"


def test_yaml_space_and_npz_data(tmp_path):
    yaml_text = """
name: two-inputs
loss: mse
objective: r2
inputs:
  - {name: a, shape: [4]}
  - {name: b, shape: [3]}
nodes:
  - {name: ha, inputs: [a], choices: [{op: Dense, units: 8, activation: tanh}, {op: Identity}]}
  - {name: hb, inputs: [b], choices: [{op: Dense, units: 8, activation: relu}, {op: Dense, units: 4}]}
  - {name: sum, op: {op: AddByPadding}, inputs: [ha, hb]}
  - {name: out, op: {op: Dense, units: 1}}
"""
    (tmp_path / "s.yaml").write_text(yaml_text)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 4)), rng.normal(size=(300, 3))
    np.savez(tmp_path / "d.npz", a=a, b=b, y=(a[:, :1] * 2 - b[:, 1:2]))
    out = run_cli("run", "--space", tmp_path / "s.yaml", "--data", tmp_path / "d.npz", "--max-evals", "6",
                  "--population", "2", "--sample", "1", "--epochs", "5", "--run-dir", tmp_path / "r")
    assert out.returncode == 0, out.stderr
    assert "6 of 6 candidates done (0 failed)" in out.stdout


def test_regression_reports_mae_and_mse(tmp_path):
    from wtnas_cli.search.evaluator import Evaluator
    from wtnas_cli.run.job import Job

    seq = [1] * 13
    job = Job(0, seq, "uno", "torch", "lcs", epochs=1, seed=0, checkpoint_path=str(tmp_path / "c.h5"),
              problem_options={"synthetic": True, "samples": 300})
    result = Evaluator(threads=1).run(job)
    assert result.status == "ok", result.error
    assert set(result.metrics) == {"mae", "mse"} and result.metrics["mse"] >= 0
