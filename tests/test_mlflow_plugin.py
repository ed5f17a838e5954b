"""The second example package, plugins/wtnas-mlflow: installed by pip like a third-party package,
run with a real search and a real `wtnas topk`, and its MLflow store read back with MLflow's own
client and compared with the run store. Also: an MLflow store it cannot write never stops a
search or a top-K training."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("mlflow", reason="mlflow-skinny is not installed (it is in the dev extra)")
pytest.importorskip("sqlalchemy", reason="sqlalchemy is not installed (in the dev extra: MLflow's SQLite store)")

from conftest import ROOT, run_cli  # noqa: E402

pytestmark = pytest.mark.slow
CLEAN = {"WTNAS_MLFLOW_TRACKING_URI": "", "MLFLOW_TRACKING_URI": "", "WTNAS_MLFLOW_EXPERIMENT": "",
         "MLFLOW_EXPERIMENT_NAME": ""}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("mlflow-site")
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--target", str(site), str(ROOT / "plugins" / "wtnas-mlflow")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return site


def env_with(site, **extra):
    return {**CLEAN, "PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p),
            **extra}


@pytest.fixture(scope="module")
def tracked(site, tmp_path_factory):
    """A search (6 candidates, population 2: most inherit weights) and a top-2, tracked."""
    run_dir = tmp_path_factory.mktemp("tracked") / "digits-run"
    env = env_with(site)
    run = run_cli("run", "--max-evals", "6", "--epochs", "1", "--workers", "1", "--population", "2",
                  "--sample", "1", "--run-dir", run_dir, env=env)
    assert run.returncode == 0, run.stderr
    assert "plugin mlflow" not in run.stdout + run.stderr
    topk = run_cli("topk", run_dir, "--k", "2", "--max-epochs", "2", "--workers", "1", env=env)
    assert topk.returncode == 0, topk.stderr
    assert "plugin mlflow" not in topk.stdout + topk.stderr

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("digits-run")   # default: the run directory's name
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return run_dir, client, {kind: [r for r in runs if r.data.tags.get("wtnas.kind") == kind]
                             for kind in ("search", "candidate", "topk")}


def test_every_candidate_is_a_nested_run_matching_the_store(tracked):
    from wtnas_cli import api
    from wtnas_cli.results.lineage import founders_and_depths

    run_dir, client, runs = tracked
    [parent] = runs["search"]
    rows = api.results(run_dir)
    founder, depth = founders_and_depths(rows)
    assert parent.info.status == "FINISHED" and parent.info.run_name == "digits-run"
    assert parent.data.params["matcher"] == "lcs" and parent.data.params["max_evals"] == "6"
    ok = [r for r in rows if r["status"] == "ok"]
    assert parent.data.metrics["ok"] == len(ok) == 6
    assert parent.data.metrics["best_score"] == pytest.approx(max(r["score"] for r in ok))
    history = client.get_metric_history(parent.info.run_id, "search.score")
    assert sorted(m.step for m in history) == [r["id"] for r in ok]

    by_id = {int(r.data.tags["wtnas.candidate_id"]): r for r in runs["candidate"]}
    assert sorted(by_id) == [r["id"] for r in rows]
    for row in rows:
        run = by_id[row["id"]]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.run_name == f"c{row['id']:05d}" and run.info.status == "FINISHED"
        assert run.data.params["arch_seq"] == ",".join(map(str, row["arch_seq"]))
        assert run.data.params["provider"] == ("none" if row["provider_id"] is None else str(row["provider_id"]))
        assert run.data.params["parent"] == ("none" if row["parent_id"] is None else str(row["parent_id"]))
        assert run.data.params["matcher"] == row["matcher"]
        assert run.data.metrics["score"] == pytest.approx(row["score"])
        assert run.data.metrics["train_s"] == pytest.approx(row["train_s"])
        assert run.data.metrics["transfer_share"] == pytest.approx(row["transfer_share"] or 0.0)
        assert 0 <= run.data.metrics["transfer_time_share"] <= 1
        assert run.data.tags["wtnas.status"] == "ok"
        assert run.data.tags["wtnas.lineage"] == str(founder[row["id"]])
        assert run.data.tags["wtnas.lineage_depth"] == str(depth[row["id"]])
    assert any(d > 0 for d in depth.values())   # some weights were inherited: lineages are not trivial


def test_topk_models_are_logged_with_their_checkpoints(tracked, tmp_path):
    from wtnas_cli.run.rundir import STORE_NAME
    from wtnas_cli.run.store import RunStore

    run_dir, client, runs = tracked
    store = RunStore(run_dir / STORE_NAME)
    trained = [r for r in store.trained() if r["in_topk"] and r["status"] == "ok"]
    store.close()
    assert len(trained) == 2
    by_id = {int(r.data.tags["wtnas.candidate_id"]): r for r in runs["topk"]}
    assert sorted(by_id) == sorted(r["candidate_id"] for r in trained)
    searched = {r.data.tags["wtnas.candidate_id"]: r.info.run_id for r in runs["candidate"]}
    for row in trained:
        run = by_id[row["candidate_id"]]
        assert run.data.tags["wtnas.candidate_run_id"] == searched[str(row["candidate_id"])]
        assert run.data.tags["wtnas.topk_settings"] == row["settings"] and run.data.params["mode"] == "warm"
        assert run.data.metrics["objective_final"] == pytest.approx(row["objective_final"])
        assert run.data.metrics["epochs_trained"] == row["epochs_trained"]
        curve = client.get_metric_history(run.info.run_id, "objective")
        assert [m.value for m in sorted(curve, key=lambda m: m.step)] == pytest.approx(row["curve"])
        [artifact] = client.list_artifacts(run.info.run_id, "checkpoint")
        local = client.download_artifacts(run.info.run_id, artifact.path, str(tmp_path))
        assert open(local, "rb").read() == open(row["checkpoint"], "rb").read()


def test_a_store_mlflow_cannot_write_never_stops_the_search(site, tracked, tmp_path):
    """The real plugin, pointed at a path under a regular file: each hook reports once, the
    search and the top-K command finish."""
    (tmp_path / "a-file").write_text("")
    env = env_with(site, WTNAS_MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}")
    run = run_cli("run", "--max-evals", "2", "--epochs", "1", "--workers", "1", "--run-dir", tmp_path / "r", env=env)
    assert run.returncode == 0, run.stderr
    assert "2 of 2 candidates done" in run.stdout
    out = " ".join((run.stdout + run.stderr).split())   # rich wraps long lines
    for hook in ("wtnas_candidate_evaluated", "wtnas_run_finished"):
        assert out.count(f"plugin mlflow: {hook} failed") == 1, out
    assert "WTNAS_MLFLOW_TRACKING_URI" in out
    run_dir = tracked[0]   # its top-2 are trained: this call reuses them, and notifies
    topk = run_cli("topk", run_dir, "--k", "2", "--max-epochs", "2", "--workers", "1", env=env)
    assert topk.returncode == 0, topk.stderr
    out = " ".join((topk.stdout + topk.stderr).split())
    assert out.count("plugin mlflow: wtnas_topk_finished failed") == 1 and "2 reused" in out


def test_installed_plugin_keeps_help_light(site):
    """`wtnas --help` imports every installed plugin: this one must not import mlflow."""
    code = ("import sys\nfrom wtnas_cli.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', 'wtnas_mlflow' in sys.modules, [m for m in ('mlflow', 'numpy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env_with(site)})
    assert "LOADED True []" in out.stdout, out.stdout[-500:] + out.stderr[-500:]
