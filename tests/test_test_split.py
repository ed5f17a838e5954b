"""The held-out test split: carved by a fixed seed, never read by the search or by top-K selection,
scored once per top-K model after its training; runs made before it keep their old splits."""

from __future__ import annotations

import numpy as np
import pytest

from wtnas_cli.model.data import TEST_FRACTION, split, with_official_test
from wtnas_cli.model.problem import Dataset
from wtnas_cli.plugins.option import Option
from wtnas_cli.run.options import resolve


def test_split_holds_out_a_test_fraction_and_keeps_the_old_split_without_one():
    x, y = np.arange(100, dtype=np.float32)[:, None], np.arange(100) % 3
    old = split([x], y, 0.2, seed=5)
    assert len(old.y_val) == 20 and not old.has_test
    order = np.random.default_rng(5).permutation(100)   # what the split was before test splits existed
    assert np.array_equal(old.x_val[:, 0], order[:20]) and np.array_equal(old.x_train[:, 0], order[20:])
    new = split([x], y, 0.2, seed=5, test_fraction=TEST_FRACTION)
    assert (len(new.y_train), len(new.y_val), len(new.y_test)) == (60, 20, 20)
    parts = [set(a[:, 0].tolist()) for a in (new.x_train, new.x_val, new.x_test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert set().union(*parts) == set(range(100))


def test_an_official_test_file_is_the_test_split_and_validation_comes_from_training():
    xt, yt = np.arange(50, dtype=np.float32)[:, None], np.zeros(50, np.int64)
    xv, yv = np.full((7, 1), -1.0, np.float32), np.ones(7, np.int64)
    held = with_official_test(xt, yt, xv, yv, test_split=True)
    assert len(held.y_test) == 7 and (held.x_test == -1).all() and len(held.y_val) == 5 and len(held.y_train) == 45
    legacy = with_official_test(xt, yt, xv, yv, test_split=False)
    assert not legacy.has_test and (legacy.x_val == -1).all() and len(legacy.y_train) == 50


def test_the_test_view_is_made_once():
    d = Dataset(np.zeros((4, 1)), np.zeros(4), np.zeros((2, 1)), np.zeros(2), np.ones((3, 1)), np.ones(3))
    view = d.test_view()
    assert view is d.test_view() and (view.x_val == 1).all() and len(view.y_val) == 3
    with pytest.raises(ValueError):
        Dataset(np.zeros((4, 1)), np.zeros(4), np.zeros((2, 1)), np.zeros(2)).test_view()


class _Comp:
    kind, name = "problem", "p"
    options = (Option("test_split", bool, True, "", before=False), Option("size", int, 3))


class _Reg:
    def kinds(self):
        return ["problem"]


def test_a_stored_run_that_predates_an_option_takes_its_before_value():
    """A run.toml written before `test_split` existed resumes with the split it was made with;
    a new run, or a stored one that set it, gets what it asked for."""
    used = {"problem": _Comp()}
    assert resolve({}, used, _Reg(), strict=False)["problem"] == {"test_split": False, "size": 3}
    assert resolve({}, used, _Reg())["problem"] == {"test_split": True, "size": 3}
    assert resolve({"problem": {"test_split": True}}, used, _Reg(), strict=False)["problem"]["test_split"] is True


def test_digits_runs_made_before_test_splits_keep_their_data(tmp_path):
    """An old run.toml (no test_split) is read with the old digits split: 1,438 training images."""
    pytest.importorskip("sklearn")
    from wtnas_cli.results.candidate import run_config, run_problem
    from wtnas_cli.run.store import RunStore

    run = tmp_path / "old"
    run.mkdir()
    RunStore(run / "wtnas.sqlite").close()
    (run / "run.toml").write_text('problem = "digits"\nbackend = "torch"\n')
    cfg = run_config(run)
    assert cfg.options_of("problem", "digits")["test_split"] is False
    data = run_problem(cfg).data()
    assert data.num_train == 1438 and not data.has_test
    (run / "run.toml").write_text('problem = "digits"\n[options.problem.digits]\ntest_split = true\n')
    data = run_problem(run_config(run)).data()
    assert data.num_train == 1079 and len(data.y_val) == len(data.y_test) == 359


@pytest.mark.slow
def test_the_test_split_never_changes_what_is_chosen(tmp_path):
    """Permuting only the test labels leaves every search score and the top-K choice as they were;
    only the top-K models' test scores change."""
    pytest.importorskip("torch")
    import worker_plugin_module

    from wtnas_cli.results.topk import TopKConfig, run_topk
    from wtnas_cli.testing import fresh_plugins, tiny_search

    outcomes = []
    for permute in (False, True):
        run_dir = tmp_path / f"permute-{permute}"
        summary = tiny_search(run_dir, plugins=fresh_plugins(worker_plugin_module), problem="worker-blobs-test",
                              max_evals=8, controls=0.0, options={"worker-blobs-test": {"permute_test": permute}})
        assert summary.ok == 8
        top = run_topk(run_dir, TopKConfig(k=3, max_epochs=4, patience=2, workers=1, verify=False),
                       plugins=fresh_plugins(worker_plugin_module))
        rows = sorted(top.rows, key=lambda r: r["candidate_id"])
        assert all(r["objective_test"] is not None for r in rows)
        outcomes.append(([(c["id"], c["score"]) for c in sorted(summary.top, key=lambda c: c["id"])],
                         [(r["candidate_id"], r["objective_final"], r["curve"]) for r in rows],
                         [r["objective_test"] for r in rows]))
    (search_a, topk_a, test_a), (search_b, topk_b, test_b) = outcomes
    assert search_a == search_b and topk_a == topk_b
    assert test_a != test_b   # the test labels were read, only after training


SPACE_FILE = """
name = "tiny"
loss = "categorical_crossentropy"
objective = "accuracy"
[[inputs]]
name = "x"
shape = [3]
[[nodes]]
name = "h"
choices = [{op = "Dense", units = 4}]
[[nodes]]
name = "out"
op = {op = "Dense", units = 2, activation = "softmax"}
[data]
normalize = "minmax"
"""


def _space_file(tmp_path, data_lines: str = ""):
    path = tmp_path / "s.toml"
    path.write_text(SPACE_FILE + data_lines)
    return path


def test_a_space_file_holds_out_a_test_fraction_a_test_file_or_test_arrays(tmp_path):
    from wtnas_cli.errors import WtnasError
    from wtnas_cli.model.spacefile import file_problem

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(100, 3)).astype(np.float32), rng.integers(0, 2, 100)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = file_problem(space=str(_space_file(tmp_path)), data=str(tmp_path / "d.npz")).data()
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (60, 20, 20)
    assert 0 <= data.x_train.min() and data.x_train.max() <= 1   # the test split gets the training statistics too
    old = file_problem(space=str(_space_file(tmp_path)), data=str(tmp_path / "d.npz"), test_split=False).data()
    assert (len(old.y_train), len(old.y_val), old.has_test) == (80, 20, False)

    np.savez(tmp_path / "t.npz", x=x[:7] + 100, y=y[:7])
    path = _space_file(tmp_path, 'test = "t.npz"\n')
    data = file_problem(space=str(path), data=str(tmp_path / "d.npz")).data()
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (80, 20, 7)
    assert data.x_test.min() > 1   # scaled by the training split's statistics, not its own

    np.savez(tmp_path / "bad.npz", x=x[:7, :2], y=y[:7])
    with pytest.raises(WtnasError, match=r"input 'x' has shape \[3\] but data.test in bad.npz has \[2\]"):
        file_problem(space=str(_space_file(tmp_path, 'test = "bad.npz"\n')), data=str(tmp_path / "d.npz")).data()
    np.savez(tmp_path / "nolabel.npz", x=x[:7])
    with pytest.raises(WtnasError, match=r"nolabel.npz \(data.test\): lacks y; it must have the form"):
        file_problem(space=str(_space_file(tmp_path, 'test = "nolabel.npz"\n')), data=str(tmp_path / "d.npz")).data()

    np.savez(tmp_path / "parts.npz", x_train=x[:50], y_train=y[:50], x_val=x[50:70], y_val=y[50:70],
             x_test=x[70:], y_test=y[70:])
    data = file_problem(space=str(_space_file(tmp_path)), data=str(tmp_path / "parts.npz")).data()
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (50, 20, 30)
