"""What an executor plugin provides. The scheduler keeps at most `capacity` jobs in flight and
collects results as they finish (asynchronous: a freed worker gets the next job at once).

The contract, all an executor author needs besides docs/writing-plugins.md:

- The factory is called as `factory(workers=..., threads_per_worker=..., devices=...,
  max_jobs_per_worker=..., gpus_per_worker=..., ray_address=..., **more)`; take the options you
  understand and ignore the rest (`**_`). Creating it must be cheap and start nothing.
- `Executor`: `start`, then `submit`/`poll` as the scheduler pumps jobs (`pump` below), then
  `shutdown` (always called, also when `start` was never called or raised).
- Workers run `wtnas_cli.search.evaluator.Evaluator().run(job)` on `Job.from_dict(job.to_dict())` and
  send back `Result.to_dict()`: jobs and results are plain data, so any transport works. The job
  names the scheduler's plugin set (`Job.plugins`), which the evaluator loads on its own: an
  executor needs to do nothing for a worker to use exactly the scheduler's plugins (their modules
  must be importable on the workers).
- Optional parts, read only through `optional()` (defaults in `OPTIONAL`): `is_worker` and
  `serve()` for an executor whose processes all run the same command (MPI: ranks > 0 serve jobs
  and never schedule, `ServingExecutor`); `replaced` and `recycled`, counters the run summary
  reports.
- `wtnas_cli.search.workers.WorkerPool` is core's pool of local worker processes (the `local`
  executor; MPI ranks evaluate in one); `wtnas_cli.testing.check_executor` checks an executor.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ..run.job import Job, Result


@runtime_checkable
class Executor(Protocol):
    capacity: int
    """How many jobs may be in flight at once; read after `start()` (it may depend on what
    start found, e.g. a Ray cluster's resources). The scheduler never submits more."""

    def start(self) -> None:
        """Start the workers (processes, a cluster connection); raise WtnasError with one line
        if they cannot start."""

    def submit(self, job: Job) -> None:
        """Hand `job` to an idle worker (the scheduler never submits more than `capacity`)."""

    def poll(self, timeout: float) -> list[Result]:
        """Results finished since the last poll, waiting up to `timeout` seconds for the first
        (an empty list at once when nothing is in flight). Exactly one Result per submitted job,
        with its `candidate_id` and `role`: a job whose evaluation raises is a failed Result from
        the evaluator; a worker that dies mid-job yields a failed Result for that job."""

    def shutdown(self) -> None:
        """Stop every worker and release what `start` took; called when the run ends, also when
        `start` was never called or raised; a second call does nothing. Jobs still in flight may
        be abandoned (the search re-runs them on resume)."""


@runtime_checkable
class ServingExecutor(Executor, Protocol):
    """An executor whose every process runs the same `wtnas run`/`wtnas topk` (MPI). In the
    processes that only evaluate, `is_worker` is true: the scheduler then calls `serve()`
    instead of scheduling and returns (nothing is written there)."""

    is_worker: bool

    def serve(self) -> None:
        """Evaluate jobs from the scheduling process until it says stop."""


# optional executor attributes and their defaults (the scheduler reads them only through optional())
OPTIONAL: dict[str, Any] = {
    "is_worker": False,   # this process serves jobs (ServingExecutor) instead of scheduling
    "replaced": 0,        # workers that died and were replaced (run summary)
    "recycled": 0,        # workers retired after max_jobs_per_worker jobs
}


def optional(executor: Executor, name: str) -> Any:
    """An optional executor attribute (`OPTIONAL`), or its default when the executor lacks it."""
    return getattr(executor, name, OPTIONAL[name])


def serve_if_worker(executor: Executor) -> bool:
    """In a process that only evaluates (e.g. an MPI rank > 0): serve jobs until the scheduler
    says stop and return True; the caller then returns without scheduling or writing anything."""
    if not optional(executor, "is_worker"):
        return False
    executor.serve()   # type: ignore[attr-defined]  # is_worker promises a ServingExecutor
    return True
