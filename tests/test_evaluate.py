"""`wtnas evaluate` / `api.evaluate`: the exported model's objective on the run's test split or on
data the user gives, with the run's normalization; clear one-line errors for data that does not fit."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from conftest import run_cli  # noqa: E402
from wtnas_cli import api  # noqa: E402
from wtnas_cli.errors import ConfigError, WtnasError  # noqa: E402
from wtnas_cli.model.data import split  # noqa: E402
from wtnas_cli.run.store import RunStore  # noqa: E402

SPACE = """
name = "blobs"
loss = "categorical_crossentropy"
objective = "accuracy"
[[inputs]]
name = "x"
shape = [4]
[[nodes]]
name = "h1"
choices = [{op = "Dense", units = 8, activation = "relu"}, {op = "Dense", units = 16, activation = "relu"}]
[[nodes]]
name = "h2"
choices = [{op = "Identity"}, {op = "Dense", units = 8, activation = "relu"}]
[[nodes]]
name = "out"
op = {op = "Dense", units = 3, activation = "softmax"}
[data]
normalize = "standard"
"""


def _blobs(n: int, seed: int, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = (rng.normal(0, 0.6, (n, 4)) + np.eye(3, 4)[y] * 2) * scale + 50.0   # raw: needs the run's normalization
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    (root / "space.toml").write_text(SPACE)
    x, y = _blobs(300, 0)
    np.savez(root / "blobs.npz", x=x, y=y)
    run_dir = root / "run"
    api.run(space=root / "space.toml", data=root / "blobs.npz", run_dir=run_dir, max_evals=4, population=2,
            sample=1, controls=0.0)
    api.topk(run_dir, k=2, max_epochs=3, verify=False)
    return root, run_dir


def test_the_default_is_the_exported_models_test_score_as_topk_stored_it(run):
    root, run_dir = run
    out = run_cli("evaluate", run_dir, "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    store = RunStore(run_dir / "wtnas.sqlite")
    try:
        trained = {r["candidate_id"]: r for r in store.trained() if r["status"] == "ok"}
    finally:
        store.close()
    best = api.best(run_dir)
    assert result["candidate_id"] == best.candidate_id and result["source"] == "topk"
    assert result["data"] == "test split" and result["samples"] == 60 and result["objective"] == "accuracy"
    assert result["value"] == pytest.approx(trained[best.candidate_id]["objective_test"], abs=1e-12)
    assert result["validation"] == pytest.approx(trained[best.candidate_id]["objective_final"])
    text = run_cli("evaluate", run_dir)
    assert text.returncode == 0 and f"candidate {best.candidate_id}" in text.stdout and "test split" in text.stdout


def test_data_the_user_gives_is_scored_with_the_runs_normalization(run):
    root, run_dir = run
    # the run's own test split, as raw values in a file of the data file's form: the same score
    raw_x, raw_y = _blobs(300, 0)
    held = split([raw_x], raw_y, 0.2, 0, test_fraction=0.2)
    np.savez(root / "test-raw.npz", x=held.x_test, y=held.y_test)
    given = api.evaluate(run_dir, data=root / "test-raw.npz")
    assert given.samples == 60 and given.data.endswith("test-raw.npz")
    assert given.value == api.evaluate(run_dir).value   # normalized with the run's statistics, as in training
    x, y = _blobs(90, 7)
    np.savez(root / "fresh.npz", x=x, y=y)
    search = api.evaluate(run_dir, data=root / "fresh.npz", candidate_id=api.best(run_dir).candidate_id,
                          source="search")
    assert search.source == "search" and search.samples == 90 and 0 <= search.value <= 1
    np.savez(root / "narrow.npz", x=x[:, :3], y=y)
    out = run_cli("evaluate", run_dir, "--data", root / "narrow.npz")
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    assert "narrow.npz" in out.stderr and "[90, 3]" in out.stderr and "[4]" in out.stderr, out.stderr
    np.savez(root / "classes.npz", x=x, y=y + 5)
    with pytest.raises(ConfigError, match=r"classes.npz: labels 5\.\.7, the run's models know classes 0\.\.2"):
        api.evaluate(run_dir, data=root / "classes.npz")
    np.savez(root / "nolabels.npz", x=x)
    with pytest.raises(WtnasError, match=r"nolabels.npz \(--data\): lacks y"):
        api.evaluate(run_dir, data=root / "nolabels.npz")
    with pytest.raises(ConfigError, match=r"--data .*missing.npz: no such file"):
        api.evaluate(run_dir, data=root / "missing.npz")


def test_a_run_without_a_test_split_says_so(run, tmp_path):
    root, _ = run
    run_dir = tmp_path / "old"
    api.run(space=root / "space.toml", data=root / "blobs.npz", run_dir=run_dir, max_evals=2, population=2,
            sample=1, controls=0.0, options={"file.test_split": False})
    out = run_cli("evaluate", run_dir)
    assert out.returncode == 1 and "has no test split" in out.stderr and "--data" in out.stderr, out.stderr
    assert api.evaluate(run_dir, data=root / "blobs.npz").samples == 300
