"""wtnas-mlflow: log every candidate, each search's summary and the top-K models to MLflow.

A tracker built only from wtnas' notification hooks. This module stays import-light (`wtnas
--help` imports every installed plugin): mlflow is imported by the tracker on the first call.
A hook that raises (MLflow unreachable, a store it cannot write) is reported once by wtnas and
never stops a search.
"""

from __future__ import annotations

from wtnas_cli.contracts import hookimpl

_trackers: dict = {}   # resolved run directory -> Tracker (hooks run in the scheduler process)


def tracker_for(run_dir):
    """The run directory's tracker (one per directory and process)."""
    from pathlib import Path

    from .tracker import Tracker

    key = Path(run_dir).resolve()
    if key not in _trackers:
        _trackers[key] = Tracker(key)
    return _trackers[key]


@hookimpl
def wtnas_candidate_evaluated(run_dir, record):
    tracker_for(run_dir).candidate(record)


@hookimpl
def wtnas_run_finished(run_dir, summary):
    tracker_for(run_dir).finished(summary)


@hookimpl
def wtnas_topk_finished(run_dir, summary, models):
    tracker_for(run_dir).topk(summary, models)
