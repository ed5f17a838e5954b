"""The MLflow side: one parent run per wtnas run directory, a nested run per candidate and per
trained top-K model (README.md lists every param, metric, tag and artifact).

Nested runs, not one long metric series: each candidate is a row of MLflow's run table under the
search, so candidates can be sorted by score, filtered by params (provider, matcher, lineage)
and compared side by side; the parent still carries `search.score` and `search.best_score` with
step = candidate id for the search's progress chart.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:   # wtnas depends on tomli there
    import tomli as tomllib

DEFAULT_STORE = "mlflow.db"          # in the run directory
DEFAULT_ARTIFACTS = "mlartifacts"    # in the run directory
TRANSFER_TIMINGS = ("ckpt_read_s", "match_s", "copy_s")   # reading the provider, matching, copying
PARAM_MAX = 6000                     # MLflow's limit on a param value


def tracking_uri(run_dir: Path) -> tuple[str, bool]:
    """WTNAS_MLFLOW_TRACKING_URI, else MLFLOW_TRACKING_URI, else a SQLite store in the run
    directory; the flag says whether it is that default."""
    uri = os.environ.get("WTNAS_MLFLOW_TRACKING_URI") or os.environ.get("MLFLOW_TRACKING_URI")
    return (uri, False) if uri else (f"sqlite:///{run_dir / DEFAULT_STORE}", True)


def experiment_name(run_dir: Path) -> str:
    return os.environ.get("WTNAS_MLFLOW_EXPERIMENT") or os.environ.get("MLFLOW_EXPERIMENT_NAME") or run_dir.name


class Tracker:
    """Logs one wtnas run directory. Setting up (store, experiment, parent run) happens on the
    first call; if it fails, every later call fails at once with the same message instead of
    retrying a store that is not there for each candidate."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.key = hashlib.sha1(str(run_dir).encode()).hexdigest()[:16]
        self.client: Any = None           # an mlflow.tracking.MlflowClient once set up
        self.experiment_id = ""
        self.parent_id = ""
        self.setup_error: str | None = None
        self.founder: dict[int, int] = {}
        self.depth: dict[int, int] = {}
        self.best: float | None = None

    # -- setup ---------------------------------------------------------------------------------
    def _open(self, *, resume_parent: bool, start: float | None = None) -> bool:
        """Connect and find or create the parent run (started at `start`, seconds); True if it
        was created by this call."""
        if self.setup_error is not None:
            raise RuntimeError(self.setup_error)
        if self.client is not None:
            return False
        uri, default = tracking_uri(self.run_dir)
        try:
            return self._connect(uri, default, resume_parent, start)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            self.client = None
            self.setup_error = (f"MLflow tracking URI {uri}: {first} (set WTNAS_MLFLOW_TRACKING_URI, or "
                                f"WTNAS_DISABLE_PLUGINS=mlflow to run without the tracker)")
            raise RuntimeError(self.setup_error) from exc

    def _connect(self, uri: str, default: bool, resume_parent: bool, start: float | None) -> bool:
        from mlflow.tracking import MlflowClient

        for name in ("mlflow.store.db.utils", "alembic"):   # table creation chatter on the search's output
            logging.getLogger(name).setLevel(logging.WARNING)
        client = MlflowClient(tracking_uri=uri)
        name = experiment_name(self.run_dir)
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            self.experiment_id = experiment.experiment_id
        else:
            location = (self.run_dir / DEFAULT_ARTIFACTS).as_uri() if default else None
            self.experiment_id = client.create_experiment(name, artifact_location=location)
        found = client.search_runs([self.experiment_id], filter_string=f"tags.`wtnas.run_key` = '{self.key}'",
                                   max_results=1)
        created = not found
        if found:
            self.parent_id = found[0].info.run_id
            self.best = found[0].data.metrics.get("search.best_score")   # the search so far
            if resume_parent and found[0].info.status != "RUNNING":   # `wtnas run --resume`
                client.update_run(self.parent_id, status="RUNNING")
        else:
            run = client.create_run(self.experiment_id, run_name=self.run_dir.name, start_time=_ms(start), tags={
                "wtnas.kind": "search", "wtnas.run_key": self.key, "wtnas.run_dir": str(self.run_dir)})
            self.parent_id = run.info.run_id
            _log(client, self.parent_id, params=_params(self._run_options()))
        self.client = client
        return created

    def _run_options(self) -> dict:
        """The run's options (run.toml), flattened: the parent run's params."""
        try:
            with open(self.run_dir / "run.toml", "rb") as f:
                options = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError):
            return {}
        flat: dict = {}
        stack = [("", options)]
        while stack:
            prefix, table = stack.pop()
            for k, v in table.items():
                if isinstance(v, dict):
                    stack.append((f"{prefix}{k}.", v))
                else:
                    flat[f"{prefix}{k}"] = v
        return flat

    # -- hooks ---------------------------------------------------------------------------------
    def candidate(self, record: dict) -> None:
        self._open(resume_parent=True, start=record.get("started_at"))
        cid = record["id"]
        founder, depth = self._lineage(record)
        ok = record["status"] == "ok"
        timings = {k: v for k, v in record.items() if k.endswith("_s") and k != "elapsed_s" and v is not None}
        transfer_s = sum(timings.get(k, 0.0) for k in TRANSFER_TIMINGS)
        total_s = (record["finished_at"] - record["started_at"]) if record.get("finished_at") and record.get(
            "started_at") else sum(timings.values())
        metrics = {"score": record.get("score"), "num_params": record.get("num_params"),
                   "n_transferred": record.get("n_transferred"), "n_tensors": record.get("n_tensors"),
                   "transfer_share": record.get("transfer_share"), **timings, "transfer_s": transfer_s,
                   "total_s": total_s, "transfer_time_share": transfer_s / total_s if total_s else None}
        params = {"arch_seq": ",".join(map(str, record["arch_seq"])), "provider": record.get("provider_id"),
                  "matcher": record.get("matcher"), "parent": record.get("parent_id"),
                  "distance": record.get("distance")}
        tags = {"wtnas.kind": "candidate", "wtnas.candidate_id": str(cid), "wtnas.status": record["status"],
                "wtnas.lineage": str(founder), "wtnas.lineage_depth": str(depth)}
        if record.get("error"):
            tags["wtnas.error"] = str(record["error"])[:PARAM_MAX]
        stamp = _ms(record.get("finished_at"))
        run_id = self._child(f"c{cid:05d}", tags, start=_ms(record.get("started_at")))
        _log(self.client, run_id, metrics=_metrics(metrics, stamp, cid), params=_params(params))
        self.client.set_terminated(run_id, "FINISHED" if ok else "FAILED", end_time=stamp)
        if ok and record.get("score") is not None:
            self.best = record["score"] if self.best is None else max(self.best, record["score"])
            _log(self.client, self.parent_id, metrics=_metrics(
                {"search.score": record["score"], "search.best_score": self.best}, stamp, cid))

    def finished(self, summary: dict) -> None:
        self._open(resume_parent=True)
        values = {k: (int(v) if isinstance(v, bool) else v) for k, v in summary.items()}
        _log(self.client, self.parent_id, metrics=_metrics(values, _ms(None), 0),
                              tags=_tags({"wtnas.interrupted": str(bool(summary.get("interrupted"))).lower()}))
        self.client.set_terminated(self.parent_id, "KILLED" if summary.get("interrupted") else "FINISHED")

    def topk(self, summary: dict, models: list[dict]) -> None:
        created = self._open(resume_parent=False)
        mode, settings = summary["mode"], summary["settings"]
        for m in models:
            if not m["in_topk"] or m["status"] not in ("ok", "failed"):   # tau sample; not trained (Ctrl-C)
                continue
            cid = m["candidate_id"]
            done = self._children(kind="topk", candidate_id=cid)
            done = [r for r in done if r.data.tags.get("wtnas.topk_mode") == mode
                    and r.data.tags.get("wtnas.topk_settings") == settings]
            if any(r.info.status in ("FINISHED", "FAILED") for r in done):   # logged by an earlier `wtnas topk`
                continue
            for r in done:   # an earlier attempt stopped half-way
                self.client.delete_run(r.info.run_id)
            searched = self._children(kind="candidate", candidate_id=cid)
            tags = {"wtnas.kind": "topk", "wtnas.candidate_id": str(cid), "wtnas.topk_mode": mode,
                    "wtnas.topk_settings": settings, "wtnas.status": m["status"]}
            if searched:
                tags["wtnas.candidate_run_id"] = searched[0].info.run_id
            if m.get("error"):
                tags["wtnas.error"] = str(m["error"])[:PARAM_MAX]
            run_id = self._child(f"topk c{cid:05d} {mode}", tags, start=None)
            stamp = _ms(m.get("finished_at"))
            metrics = {k: m.get(k) for k in ("estimated_score", "objective_at_stop", "objective_final",
                                             "epochs_trained", "epochs_to_converge", "converged", "num_params",
                                             "train_s", "eval_s", "wall_s")}
            curve = [_metric("objective", v, stamp, epoch) for epoch, v in enumerate(m.get("curve") or [], 1)]
            _log(self.client, run_id, metrics=_metrics(metrics, stamp, cid) + [c for c in curve if c],
                                  params=_params({"candidate_id": cid, "mode": mode, "settings": settings,
                                                  "warm_started": m.get("warm_started")}))
            if m["status"] == "ok" and m.get("checkpoint") and Path(m["checkpoint"]).is_file():
                self.client.log_artifact(run_id, m["checkpoint"], artifact_path="checkpoint")
            self.client.set_terminated(run_id, "FINISHED" if m["status"] == "ok" else "FAILED")
        if created:   # the search ran without this plugin: the parent holds only the top-K
            self.client.set_terminated(self.parent_id, "FINISHED")

    # -- helpers -------------------------------------------------------------------------------
    def _child(self, name: str, tags: dict, start: int | None) -> str:
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        run = self.client.create_run(self.experiment_id, run_name=name, start_time=start,
                                     tags={MLFLOW_PARENT_RUN_ID: self.parent_id, **tags})
        return run.info.run_id

    def _children(self, *, kind: str, candidate_id: int) -> list:
        return self.client.search_runs([self.experiment_id], filter_string=(
            f"tags.`mlflow.parentRunId` = '{self.parent_id}' and tags.`wtnas.kind` = '{kind}' "
            f"and tags.`wtnas.candidate_id` = '{candidate_id}'"))

    def _lineage(self, record: dict) -> tuple[int, int]:
        """The candidate's weight lineage (`wtnas_cli.api.lineage`): its founder and depth, followed
        incrementally from the providers seen so far; a provider finished before this process
        started (a resumed run) is looked up once in the run store."""
        cid, pid = record["id"], record.get("provider_id")
        if pid is None or not record.get("n_transferred") or pid == cid:
            founder, depth = cid, 0
        else:
            if pid not in self.founder:
                from wtnas_cli import api

                chain = api.lineage(self.run_dir, pid)
                self.founder[pid], self.depth[pid] = chain[0]["id"], len(chain) - 1
            founder, depth = self.founder[pid], self.depth[pid] + 1
        self.founder[cid], self.depth[cid] = founder, depth
        return founder, depth


def _ms(seconds: float | None) -> int:
    return int((seconds if seconds else time.time()) * 1000)


def _metric(key: str, value, stamp: int, step: int):
    from mlflow.entities import Metric

    if value is None or isinstance(value, (str, list, dict)):
        return None
    value = float(value)
    return Metric(key, value, stamp, step) if math.isfinite(value) else None


def _metrics(values: dict, stamp: int, step: int) -> list:
    return [m for m in (_metric(k, v, stamp, step) for k, v in values.items()) if m is not None]


def _params(values: dict) -> list:
    from mlflow.entities import Param

    def text(v) -> str:
        return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else "none" if v is None else str(v)

    return [Param(k, text(v)[:PARAM_MAX]) for k, v in values.items()]


def _tags(values: dict) -> list:
    from mlflow.entities import RunTag

    return [RunTag(k, v) for k, v in values.items()]


def _log(client, run_id: str, metrics=(), params=(), tags=()) -> None:
    """log_batch within MLflow's limits per call (1000 metrics, 100 params)."""
    metrics, params, tags = list(metrics), list(params), list(tags)
    while metrics or params or tags:
        client.log_batch(run_id, metrics=metrics[:1000], params=params[:100], tags=tags[:100])
        metrics, params, tags = metrics[1000:], params[100:], tags[100:]
