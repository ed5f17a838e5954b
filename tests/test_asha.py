"""Successive halving with transfer (`--strategy asha`): the strategy's promotion rule, promotions
that continue a candidate's own weights exactly, and promotions through a crash and a resume."""

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

import harness  # noqa: E402
from conftest import run_cli  # noqa: E402
from wtnas_builtins.asha import SuccessiveHalving, rung_epochs  # noqa: E402
from wtnas_cli.plugins.manager import default_plugins  # noqa: E402
from wtnas_cli.run.job import Job  # noqa: E402
from wtnas_cli.search.evaluator import Evaluator  # noqa: E402
from wtnas_cli.search.strategy_protocol import Promotion  # noqa: E402
from wtnas_cli.weights.checkpoint import read_checkpoint, read_checkpoint_meta  # noqa: E402


def test_rungs_multiply_by_the_reduction_up_to_the_top():
    assert rung_epochs(1, 3, 9) == [1, 3, 9]
    assert rung_epochs(1, 3, 10) == [1, 3, 9, 10]
    assert rung_epochs(2, 2, 16) == [2, 4, 8, 16]
    assert rung_epochs(4, 3, 4) == [4]


def test_the_best_of_the_highest_rung_with_a_free_top_share_is_promoted_first(small_space):
    asha = SuccessiveHalving(small_space, seed=0, min_epochs=1, reduction=3, max_epochs=9)
    seq = small_space.sample(np.random.default_rng(0))
    for cid, score in enumerate([0.5, 0.9, 0.1]):
        asha.tell(cid, seq, score)
    assert asha.promote() == Promotion(1, 1)    # the top third of 3 is the best one
    assert asha.promote() is None               # it is promoted once; no rung has another free
    for cid, score in zip(range(3, 9), [0.2, 0.3, 0.95, 0.4, 0.45, 0.35]):
        asha.tell(cid, seq, score)
    assert asha.promote() == Promotion(5, 1)    # 9 in rung 0: its top 3 are 5, 1, 0
    assert asha.promote() == Promotion(0, 1)
    assert asha.promote() is None
    for cid, score in ((1, 0.7), (5, 0.8), (0, 0.75)):
        asha.tell_promotion(cid, 1, score)
    assert asha.promote() == Promotion(5, 2)    # the highest rung first
    asha.tell_promotion(5, 2, None)             # a failed promotion enters no rung
    assert asha.rungs[2].score == {} and asha.promote() is None
    # every candidate that may still be promoted keeps its checkpoint; the top rung's need not
    assert asha.checkpoints_needed() == {2, 3, 4, 6, 7, 8, 1, 0}


def test_a_resumed_strategy_never_promotes_a_candidate_twice(small_space):
    seq = small_space.sample(np.random.default_rng(0))
    asha = SuccessiveHalving(small_space, reduction=3, max_epochs=9)
    for cid, score in enumerate([0.5, 0.9, 0.1]):
        asha.tell(cid, seq, score)
    asha.replay_promotion(1, 1)   # in flight when the run stopped: re-issued by the scheduler, not again here
    assert asha.promote() is None


def _job(seq, path, **fields):
    base = dict(candidate_id=0, arch_seq=list(seq), problem="digits", backend="torch", matcher="lcs", epochs=3,
                seed=11, checkpoint_path=str(path))
    return Job(**{**base, **fields})


def promotion_outcome(tmp_path, backend: str) -> dict:
    """3 epochs in one job; 1 epoch then a promotion of 2 more (weights and optimizer state from
    the checkpoint); the same from a checkpoint written without optimizer state."""
    plugins = default_plugins()
    seq = plugins.registry.create("problem", "digits").space.sample(np.random.default_rng(3))
    evaluator = Evaluator(plugins)
    single = evaluator.run(_job(seq, tmp_path / "single.h5", backend=backend))
    first = evaluator.run(_job(seq, tmp_path / "c.h5", epochs=1, rung=0, keep_optimizer=True, backend=backend))
    promoted = evaluator.run(_job(seq, tmp_path / "c.h5", epochs=2, start_epoch=1, rung=1, role="promotion",
                                  keep_optimizer=True, backend=backend))
    assert single.status == first.status == promoted.status == "ok", (single.error, first.error, promoted.error)
    (meta_a, a), (meta_b, b) = read_checkpoint(tmp_path / "single.h5"), read_checkpoint(tmp_path / "c.h5")
    evaluator.run(_job(seq, tmp_path / "plain.h5", epochs=1, backend=backend))
    restarted = evaluator.run(_job(seq, tmp_path / "plain.h5", epochs=2, start_epoch=1, rung=1, role="promotion",
                                   backend=backend))
    return {"status": [single.status, first.status, promoted.status, restarted.status],
            "errors": [single.error, promoted.error, restarted.error], "single": single.score, "first": first.score,
            "promoted": promoted.score, "restarted": restarted.score, "events": promoted.events,
            "restarted_events": restarted.events, "transferred": promoted.n_transferred,
            "epochs": [meta_a.epochs, meta_b.epochs], "same_weights": all(np.array_equal(x, y) for x, y in zip(a, b))}


@pytest.mark.parametrize("backend", ["torch", "keras", "keras-tensorflow"])
def test_a_promotion_continues_its_own_weights_exactly(tmp_path, backend):
    """1 epoch, then a promotion of 2 more from the checkpoint (weights and Adam's state) is the
    same model, bit for bit, as 3 epochs in one job, on torch and Keras on torch. Keras on
    TensorFlow (in its own process: one Keras engine per process) continues weights and Adam too,
    but its dropout's random stream belongs to the model object, so a promotion's dropout masks
    differ: close, not bit for bit. Without the optimizer's state (a checkpoint written without
    it) the promotion says it restarted the optimizer."""
    # (find_spec, not importorskip: importing keras here would start it on its default engine)
    if backend != "torch" and importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed")
    if backend == "keras-tensorflow":
        if importlib.util.find_spec("tensorflow") is None:
            pytest.skip("tensorflow is not installed")
        code = (f"import json, sys; from pathlib import Path; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
                f"from test_asha import promotion_outcome\n"
                f"print(json.dumps(promotion_outcome(Path({str(tmp_path)!r}), 'keras-tensorflow')))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        got = json.loads(out.stdout.strip().splitlines()[-1])
    else:
        got = promotion_outcome(tmp_path, backend)
    assert got["status"] == ["ok"] * 4, got["errors"]
    assert got["transferred"] == 0 and got["events"] == []   # never a transfer; the optimizer continued
    assert got["epochs"] == [3, 3] and got["promoted"] != got["first"]
    if backend != "keras-tensorflow":   # (its dropout draws from a per-model stream that a new model restarts)
        assert got["promoted"] == got["single"] and got["same_weights"]
    assert "the optimizer restarts" in got["restarted_events"][0] and got["restarted"] != got["single"]


def test_a_promotion_whose_checkpoint_is_already_written_is_scored_not_trained_again(tmp_path):
    """A promotion re-run after a crash that came after its checkpoint was replaced: the file
    already holds the promotion's epochs, so the model is scored as it is (never 3 + 2 epochs);
    a checkpoint holding any other number of epochs fails the promotion and stays as it is."""
    plugins = default_plugins()
    seq = plugins.registry.create("problem", "digits").space.sample(np.random.default_rng(3))
    evaluator = Evaluator(plugins)
    evaluator.run(_job(seq, tmp_path / "c.h5", epochs=1, keep_optimizer=True))
    promotion = _job(seq, tmp_path / "c.h5", epochs=2, start_epoch=1, rung=1, role="promotion", keep_optimizer=True)
    once = evaluator.run(promotion)
    again = evaluator.run(promotion)
    assert again.status == "ok" and again.score == once.score and "not trained again" in again.events[0]
    assert read_checkpoint_meta(tmp_path / "c.h5").epochs == 3
    wrong = evaluator.run(_job(seq, tmp_path / "c.h5", epochs=6, start_epoch=4, rung=2, role="promotion"))
    assert wrong.status == "failed" and "holds 3 epochs" in wrong.error
    assert read_checkpoint_meta(tmp_path / "c.h5").epochs == 3


ASHA = ("--strategy", "asha", "-o", "asha.min_epochs=1", "-o", "asha.reduction=3")


def test_asha_run_promotes_with_transfer_and_shows_rungs(tmp_path):
    run_dir = tmp_path / "r"
    out = run_cli("run", *ASHA, "-o", "asha.max_epochs=9", "--max-evals", "18", "--run-dir", run_dir)
    assert out.returncode == 0, out.stderr
    harness.check_run(run_dir, 18)
    rungs = harness.check_rungs(run_dir, [1, 3, 9], 3)
    assert sum(r["rung"] == 1 for r in rungs) >= 6 and sum(r["rung"] == 2 for r in rungs) >= 2   # 18 / 3, 6 / 3
    con = sqlite3.connect(run_dir / "wtnas.sqlite")
    warm = con.execute("SELECT COUNT(*) FROM candidates WHERE n_transferred > 0").fetchone()[0]
    con.close()
    assert warm > 0   # new rung-0 candidates receive weights (nearest + lcs); promotions never do
    shown = run_cli("show", run_dir, str(max(rungs, key=lambda r: r["rung"])["candidate_id"]))
    assert shown.returncode == 0, shown.stderr
    assert "rung 2" in shown.stdout and "9 epochs" in shown.stdout


def test_a_promotion_killed_mid_run_is_re_run_once_on_resume(tmp_path):
    """SIGKILL while promotions are in flight: on resume each is trained again from the
    candidate's intact checkpoint, once; none is lost and none doubles its epochs."""
    run_dir = tmp_path / "r"
    args = ("run", *ASHA, "-o", "asha.max_epochs=27", "--max-evals", "30", "--run-dir", run_dir)
    proc = harness.start(*args)
    db = run_dir / "wtnas.sqlite"
    pending = "SELECT COUNT(*) FROM rungs WHERE rung >= 2 AND status = 'pending'"
    assert harness.wait_until(lambda: harness.count(db, pending) >= 1, timeout=300, proc=proc), "no promotion to kill"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    con = sqlite3.connect(db)
    killed = con.execute("SELECT candidate_id, rung FROM rungs WHERE status = 'pending' AND rung > 0").fetchall()
    con.close()
    assert killed
    resumed = run_cli("run", "--resume", run_dir)
    assert resumed.returncode == 0, resumed.stderr
    harness.check_run(run_dir, 30)
    rungs = {(r["candidate_id"], r["rung"]): r for r in harness.check_rungs(run_dir, [1, 3, 9, 27], 3)}
    for key in killed:
        assert rungs[key]["status"] == "ok"   # re-run; check_rungs: its epochs are the rung's, not twice


@pytest.fixture
def small_space():
    return default_plugins().registry.create("problem", "digits").space



def test_epochs_that_asha_does_not_use_are_warned_about():
    from wtnas_cli.run.config import RunConfig
    from wtnas_cli.search.scheduler import resolve_run

    plugins = default_plugins()
    warnings = resolve_run(RunConfig(strategy="asha", epochs=3).validate(), plugins)["warnings"]
    assert ["--epochs 3 is not used by asha: new candidates train its first rung, 1 epoch(s) (rungs of 1, 3, 9; "
            "-o asha.min_epochs=N sets it)"] == [w for w in warnings if "--epochs" in w]
    assert not [w for w in resolve_run(RunConfig(strategy="asha").validate(), plugins)["warnings"] if "--epochs" in w]


def test_the_peers_asha_keeps_only_the_checkpoints_it_may_still_promote(tmp_path):
    """`--matcher none` (no selector that may pick any checkpoint): `--keep needed` deletes what
    no promotion can use (here, with no top-K reserve: the top rung's), and still every promotion
    finds its checkpoint; candidates that may still be promoted keep theirs."""
    run_dir = tmp_path / "r"
    out = run_cli("run", *ASHA, "-o", "asha.max_epochs=9", "--matcher", "none", "--max-evals", "18",
                  "--keep-top", "0", "--tau-reserve", "0", "--run-dir", run_dir)
    assert out.returncode == 0, out.stderr
    rungs = harness.check_rungs(run_dir, [1, 3, 9], 3)
    assert all(r["status"] == "ok" for r in rungs)   # no promotion lost its checkpoint
    con = sqlite3.connect(run_dir / "wtnas.sqlite")
    deleted = con.execute("SELECT COUNT(*) FROM candidates WHERE checkpoint_deleted = 1").fetchone()[0]
    con.close()
    top = {r["candidate_id"] for r in rungs if r["rung"] == 2 and r["status"] == "ok"}
    assert deleted == len(top) > 0   # exactly the top rung's: every other candidate may still be promoted
    harness.check_run(run_dir, 18)


@pytest.mark.parametrize("options, message", [
    (("-o", "asha.min_epochs=5", "-o", "asha.max_epochs=3"), "min_epochs (5) must be between 1 and max_epochs (3)"),
    (("-o", "asha.reduction=1"), "reduction"),
])
def test_an_asha_ladder_that_cannot_be_is_refused_in_one_line(tmp_path, options, message):
    out = run_cli("run", "--strategy", "asha", *options, "--run-dir", tmp_path / "r")
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 1 and len(lines) == 1 and message in lines[0], out.stderr
    assert not (tmp_path / "r").exists()
