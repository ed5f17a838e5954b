"""Labels given as class names ("benign"/"malignant") in a CSV or NPZ: numbered in one order for
every split, a separate test file and `wtnas evaluate --data`; a name that is not a class, a
missing label and a missing or non-numeric feature are one-line errors naming line and column."""

import json

import numpy as np
import pytest

from conftest import run_cli
from wtnas_cli.errors import WtnasError
from wtnas_cli.model.spacefile import file_problem

SPACE = """
name = "bc-named"
batch_size = 16
[data]
label = "diagnosis"
{extra}
[[inputs]]
name = "x"
shape = [30]
[[nodes]]
name = "h"
choices = [{{op = "Dense", units = 16, activation = "relu"}}, {{op = "Dense", units = 32, activation = "tanh"}}]
[[nodes]]
name = "out"
op = {{op = "Dense", units = 2, activation = "softmax"}}
"""
NAMES = np.array(["malignant", "benign"])   # sklearn's target 0 = malignant, 1 = benign


def _write(tmp_path, x, labels, name="bc.csv"):
    header = ",".join([f"f{i}" for i in range(x.shape[1])] + ["diagnosis"])
    lines = [header] + [",".join([*(f"{v:.10g}" for v in row), str(label)]) for row, label in zip(x, labels)]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def bc():
    datasets = pytest.importorskip("sklearn.datasets")
    b = datasets.load_breast_cancer()
    return b.data, b.target


def _problem(tmp_path, data, extra=""):
    space = tmp_path / "bc.toml"
    space.write_text(SPACE.format(extra=extra))
    return file_problem(space=str(space), data=str(data))


def test_named_labels_are_numbered_like_numbers(tmp_path, bc):
    """Sorted names: benign = 0, malignant = 1, in every split; the numbered twin gives the same
    splits (same rows, same features), labels mapped through the names."""
    x, target = bc
    named = _problem(tmp_path, _write(tmp_path, x, NAMES[target]))
    data = named.data()
    assert named.class_names == ["benign", "malignant"]
    (tmp_path / "n").mkdir()
    numbered = _problem(tmp_path / "n", _write(tmp_path / "n", x, 1 - target))   # benign (1) -> 0, malignant (0) -> 1
    twin = numbered.data()
    assert numbered.class_names is None
    for a, b in ((data.y_train, twin.y_train), (data.y_val, twin.y_val), (data.y_test, twin.y_test)):
        assert a.dtype == np.int64 and np.array_equal(a, b)
    np.testing.assert_array_equal(data.x_train, twin.x_train)

    # data.classes fixes the order (the output units'): malignant = 0 now
    ordered = _problem(tmp_path, _write(tmp_path, x, NAMES[target]), 'classes = ["malignant", "benign"]')
    assert ordered.data().y_train.tolist() == [1 - v for v in data.y_train.tolist()]


@pytest.mark.parametrize("edit, message", [
    (lambda rows: rows.__setitem__(3, rows[3].rsplit(",", 1)[0] + ",maybe"),
     "line 4, label column 'diagnosis': 'maybe' is not one of the classes benign, malignant"),
    (lambda rows: rows.__setitem__(5, rows[5].rsplit(",", 1)[0] + ","), "line 6, label column 'diagnosis': missing value"),
    (lambda rows: rows.__setitem__(7, ",".join(["", *rows[7].split(",")[1:]])), "line 8, column 'f0': missing value"),
    (lambda rows: rows.__setitem__(2, ",".join(["n/a", *rows[2].split(",")[1:]])),
     "line 3, column 'f0': 'n/a' is not a number"),
])
def test_bad_values_name_line_and_column(tmp_path, bc, edit, message):
    x, target = bc
    path = _write(tmp_path, x[:40], NAMES[target[:40]])
    rows = path.read_text().splitlines()
    edit(rows)
    path.write_text("\n".join(rows) + "\n")
    extra = 'classes = ["benign", "malignant"]' if "maybe" in message else ""
    with pytest.raises(WtnasError) as err:
        _problem(tmp_path, path, extra).data()
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_search_on_named_labels_and_evaluate_on_a_named_file(tmp_path, bc):
    """A real run on named labels; a separate test file whose rows are all one class is numbered
    as the run's data (not by its own names), and `wtnas evaluate --data` scores it."""
    x, target = bc
    data = _write(tmp_path, x[:450], NAMES[target[:450]])
    benign = target[450:] == 1
    held = _write(tmp_path, x[450:][benign], NAMES[target[450:][benign]], "benign.csv")
    space = tmp_path / "bc.toml"
    space.write_text(SPACE.format(extra=""))
    run = tmp_path / "run"
    out = run_cli("run", "--space", space, "--data", data, "--max-evals", "6", "--workers", "2", "--run-dir", run)
    assert out.returncode == 0, out.stderr
    assert "problem=bc-named (--space bc.toml)" in out.stderr   # the space's own name on the start line
    ev = run_cli("evaluate", run, "--from", "search", "--data", held, "--json")
    assert ev.returncode == 0, ev.stderr
    result = json.loads(ev.stdout)
    assert result["samples"] == int(benign.sum()) and 0.5 < result["value"] <= 1.0   # benign = class 0, learnt
    exported = run_cli("export", run, "--from", "search", "-o", tmp_path / "m.pt2")   # unit i is class i's name
    assert exported.returncode == 0, exported.stderr
    assert "outputs: class probabilities in the order benign, malignant" in exported.stdout
    other = _write(tmp_path, x[:5], ["maybe"] * 5, "bad.csv")
    bad = run_cli("evaluate", run, "--from", "search", "--data", other)
    assert bad.returncode == 1 and "'maybe' is not one of the classes benign, malignant" in bad.stderr
