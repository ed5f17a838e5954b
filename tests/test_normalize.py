"""data.normalize for user data: statistics from the training split only, exact values, constant
columns, several inputs, the one-line error and the one-time warning, the statistics stored with
the run (what exports apply), resume integrity, and a real run on raw breast-cancer data."""

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from wtnas_cli.model.normalize import Normalization, fit, load_normalization, scale_warning
from wtnas_cli.model.problem import Dataset
from wtnas_cli.model.spacefile import file_problem, normalized

SPACE = """
name = "bc"
batch_size = 16
[data]
label = "diagnosis"
{normalize}
[[inputs]]
name = "x"
shape = [30]
[[nodes]]
name = "h"
choices = [{{op = "Dense", units = 16, activation = "relu"}}, {{op = "Dense", units = 32, activation = "tanh"}}]
[[nodes]]
name = "d"
choices = [{{op = "Identity"}}, {{op = "Dropout", rate = 0.1}}]
[[nodes]]
name = "out"
op = {{op = "Dense", units = 2, activation = "softmax"}}
"""


def breast_cancer(tmp_path: Path, normalize: str | None) -> tuple[Path, Path]:
    """The issue's case: sklearn's breast-cancer table as a raw CSV (values ~0.001 to ~4,000)."""
    datasets = pytest.importorskip("sklearn.datasets")
    b = datasets.load_breast_cancer()
    names = [n.replace(" ", "_") for n in b.feature_names]
    data = tmp_path / "bc.csv"
    if not data.exists():
        np.savetxt(data, np.column_stack([b.data, b.target]), delimiter=",", comments="", fmt="%.10g",
                   header=",".join(names + ["diagnosis"]))
    space = tmp_path / "bc.toml"
    space.write_text(SPACE.format(normalize=f'normalize = "{normalize}"' if normalize else ""))
    return space, data


# -- the statistics --------------------------------------------------------------------------------
X = np.array([[1.0, 10.0, -2.0], [3.0, 10.0, 0.0], [5.0, 10.0, 8.0]], np.float32)


def test_standard_minmax_none_exact_and_constant_column_safe():
    std = fit("standard", [X], ["x"])
    assert std.inputs[0]["shift"] == [3.0, 10.0, 2.0]
    assert std.inputs[0]["scale"] == pytest.approx([np.sqrt(8 / 3), 1.0, np.sqrt(56 / 3)], rel=1e-15)
    out = std.apply(X)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 0], [-np.sqrt(1.5), 0, np.sqrt(1.5)], rtol=1e-6)
    assert (out[:, 1] == 0).all()                       # the constant column: 0, not NaN
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-6)

    mm = fit("minmax", [X], ["x"])
    assert mm.inputs[0]["shift"] == [1.0, 10.0, -2.0] and mm.inputs[0]["scale"] == [4.0, 1.0, 10.0]
    np.testing.assert_array_equal(mm.apply(X), np.array([[0, 0, 0], [0.5, 0, 0.2], [1, 0, 1]], np.float32))

    none = fit("none", [X], ["x"])
    assert none.inputs == [] and none.apply(X) is X

    for method in ("standard", "minmax"):   # every column constant, and a single row
        for arr in (np.full((4, 3), 7.0, np.float32), X[:1]):
            assert np.isfinite(fit(method, [arr], ["x"]).apply(arr)).all()


def test_statistics_come_from_the_training_split_only():
    rng = np.random.default_rng(0)
    xt = rng.normal(5, 2, size=(50, 3)).astype(np.float32)
    far = np.full((10, 3), 1e6, np.float32)            # validation rows far away must not move them
    data = Dataset(xt, np.zeros(50, np.int64), far, np.zeros(10, np.int64))
    out, norm, warnings = normalized(data, "standard", ["x"], "d.npz", "s.toml")
    assert norm == fit("standard", [xt], ["x"])
    np.testing.assert_allclose(out.x_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out.x_train.std(0), 1, atol=1e-5)
    assert (out.x_val > 1e4).all() and warnings == []
    # the same through a space file whose data brings its own split (_train / _val arrays)
    out2, norm2, _ = normalized(Dataset(xt, data.y_train, -far, data.y_val), "standard", ["x"], "d", "s")
    assert norm2 == norm


def test_several_inputs_each_with_its_own_channels():
    rng = np.random.default_rng(1)
    a = rng.normal(100, 50, size=(40, 5)).astype(np.float32)
    b = rng.normal(0.01, 0.002, size=(40, 6, 3)).astype(np.float32)   # a sequence: statistics per channel
    norm = fit("standard", [a, b], ["a", "b"])
    assert [s["name"] for s in norm.inputs] == ["a", "b"]
    assert len(norm.inputs[0]["shift"]) == 5 and len(norm.inputs[1]["shift"]) == 3
    out_a, out_b = norm.apply([a, b])
    assert out_b.shape == b.shape
    np.testing.assert_allclose(out_b.reshape(-1, 3).mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out_a.std(0), 1, atol=1e-4)
    by_name = norm.apply({"b": b, "a": a})
    np.testing.assert_array_equal(by_name["a"], out_a)
    np.testing.assert_array_equal(by_name["b"], out_b)
    with pytest.raises(ValueError):
        norm.apply(a)    # two inputs need two arrays
    data = Dataset([a, b], np.zeros(40, np.int64), [a[:5], b[:5]], np.zeros(5, np.int64))
    out, _, warnings = normalized(data, "none", ["a", "b"], "d.npz", "s.toml")
    assert out is data and len(warnings) == 1 and "b[" in warnings[0] and "a[" in warnings[0]


def test_scale_warning_threshold():
    rng = np.random.default_rng(2)
    ok = rng.normal(size=(30, 4)) * np.array([1, 5, 20, 60])
    assert scale_warning([ok], list("abcd"), "d.csv", "s.toml") is None
    bad = ok * np.array([1, 1, 1, 100])
    line = scale_warning([bad], list("abcd"), "d.csv", "s.toml")
    assert line is not None and "\n" not in line and "d.csv" in line and "s.toml" in line
    assert "data.normalize = \"standard\"" in line and "(d vs a)" in line
    assert scale_warning([np.zeros((5, 3))], list("abc"), "d", "s") is None   # nothing to compare


# -- through the CLI -------------------------------------------------------------------------------
@pytest.mark.parametrize("line, message", [
    ('normalize = "zscore"', "data.normalize: 'zscore' is not a valid choice"),
    ('normalize = "Standard"', "(did you mean 'standard'?)"),
    ('normalize = 1', "data.normalize: 1 is not a valid choice"),
    ('normalise = "standard"', "data.normalise: unknown key (did you mean 'normalize'?)"),
])
def test_bad_normalize_is_one_line_naming_file_and_field(tmp_path, line, message):
    space, data = breast_cancer(tmp_path, None)
    space.write_text(space.read_text().replace('label = "diagnosis"', f'label = "diagnosis"\n{line}'))
    out = run_cli("run", "--space", space, "--data", data, "--run-dir", tmp_path / "r")
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert out.returncode == 1 and len(lines) == 1, out.stderr
    assert str(space) in lines[0] and message in lines[0], lines[0]
    if "not a valid choice" in message:
        assert "'standard', 'minmax', 'none'" in lines[0]
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_warning_once_from_the_scheduler_not_per_worker(tmp_path):
    space, data = breast_cancer(tmp_path, "none")
    out = run_cli("run", "--space", space, "--data", data, "--max-evals", "2", "--population", "2", "--sample", "1",
                  "--workers", "2", "--threads-per-worker", "1", "--run-dir", tmp_path / "r")
    assert out.returncode == 0, out.stderr
    text = out.stdout + out.stderr
    assert text.count("feature scales differ") == 1, text      # once, though two workers loaded the data
    line = next(x for x in out.stderr.splitlines() if "feature scales differ" in x)
    assert str(data) in line and 'data.normalize = "standard"' in line and str(space) in line
    assert "(worst_area vs fractal_dimension_error)" in line
    assert load_normalization(tmp_path / "r").method == "none"


@pytest.mark.slow
def test_resume_refuses_a_changed_normalize(tmp_path):
    space, data = breast_cancer(tmp_path, "none")
    run = tmp_path / "r"
    out = run_cli("run", "--space", space, "--data", data, "--max-evals", "2", "--population", "2", "--sample", "1",
                  "--workers", "1", "--threads-per-worker", "1", "--run-dir", run)
    assert out.returncode == 0, out.stderr
    # (resumes below ask for no new candidates: the check is what is tested, not training)
    space.write_text("# a comment changes nothing a candidate is\n" + space.read_text())
    ok = run_cli("run", "--resume", run, "--max-evals", "2")
    assert ok.returncode == 0, ok.stderr
    space.write_text(space.read_text().replace('normalize = "none"', 'normalize = "minmax"'))
    refused = run_cli("run", "--resume", run, "--max-evals", "2")
    lines = [x for x in refused.stderr.splitlines() if x.strip()]
    assert refused.returncode == 1 and len(lines) == 1, refused.stderr
    assert "space file data.normalize 'none' -> 'minmax'" in lines[0] and "--force-change" in lines[0]
    assert load_normalization(run).method == "none"
    forced = run_cli("run", "--resume", run, "--max-evals", "2", "--force-change")
    assert forced.returncode == 0, forced.stderr
    assert "feature scales differ" not in forced.stdout + forced.stderr
    assert load_normalization(run).method == "minmax"
    with sqlite3.connect(run / "wtnas.sqlite") as db:
        segments = db.execute("SELECT value FROM meta WHERE key = 'segments'").fetchone()[0]
    assert "data.normalize" in segments
    # the data changing under the run changes the statistics: refused too
    rows = data.read_text().splitlines()
    rows[1:] = [f"{float(r.split(',', 1)[0]) * 2},{r.split(',', 1)[1]}" for r in rows[1:]]   # mean_radius doubled
    data.write_text("\n".join(rows) + "\n")
    changed = run_cli("run", "--resume", run, "--max-evals", "2")
    assert changed.returncode == 1 and "normalization statistics" in changed.stderr, changed.stderr
    # a run made before data.normalize existed saw raw data: the new default may not slip in
    (run / "normalization.json").unlink()
    with sqlite3.connect(run / "wtnas.sqlite") as db:
        db.execute("DELETE FROM meta WHERE key = 'space_document'")
    space.write_text(space.read_text().replace('normalize = "minmax"', ""))
    old = run_cli("run", "--resume", run, "--max-evals", "2")
    assert old.returncode == 1 and "the run predates data.normalize" in old.stderr, old.stderr
    space.write_text(space.read_text().replace('label = "diagnosis"', 'label = "diagnosis"\nnormalize = "none"'))
    assert run_cli("run", "--resume", run, "--max-evals", "2").returncode == 0


@pytest.mark.slow
def test_standard_by_default_learns_raw_breast_cancer_and_statistics_round_trip(tmp_path):
    space, data = breast_cancer(tmp_path, None)          # no data.normalize: the default, standard
    # trained on 80% of the table, as this check was calibrated (a test split would take 20% of it)
    space.write_text(space.read_text().replace('label = "diagnosis"', 'label = "diagnosis"\ntest_fraction = 0.0'))
    run = tmp_path / "r"
    out = run_cli("run", "--space", space, "--data", data, "--backend", "torch", "--max-evals", "4",
                  "--population", "4", "--sample", "2", "--workers", "1", "--threads-per-worker", "1",
                  "--seed", "0", "--epochs", "2", "--run-dir", run)
    assert out.returncode == 0, out.stderr
    assert "feature scales differ" not in out.stdout + out.stderr
    with sqlite3.connect(run / "wtnas.sqlite") as db:
        scores = [s for (s,) in db.execute("SELECT score FROM candidates WHERE status = 'ok'")]
    assert len(scores) == 4
    assert max(scores) > 0.9 and min(scores) > 0.7    # the validation majority rate is 0.667

    stored = load_normalization(run)
    assert stored.method == "standard" and len(stored.inputs[0]["shift"]) == 30
    problem = file_problem(space=str(space), data=str(data))   # what every worker computes for itself
    assert load_normalization(problem) == stored
    # applying the stored statistics to the raw rows gives exactly the arrays the models saw
    space.with_name("raw.toml").write_text(space.read_text().replace('label = "diagnosis"',
                                                                      'label = "diagnosis"\nnormalize = "none"'))
    raw = file_problem(space=str(space.with_name("raw.toml")), data=str(data)).data()
    seen = problem.data()
    np.testing.assert_array_equal(stored.apply(raw.x_val), seen.x_val)
    np.testing.assert_array_equal(stored.apply(raw.x_train), seen.x_train)
    assert Normalization.from_dict(stored.to_dict()) == stored
    assert load_normalization(tmp_path) is None           # not a run: nothing stored


def test_builtin_problems_are_not_normalized(plugins):
    problem = plugins.registry.create("problem", "digits")
    problem.data()
    assert load_normalization(problem) is None
