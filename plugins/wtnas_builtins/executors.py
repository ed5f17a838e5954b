"""`local` executor: worker processes on this machine (`--workers N`), asynchronous dispatch.

The mechanics (one spawned process and pipe per worker, dead workers replaced, recycling, thread
share, one GPU per worker) are core's `wtnas_cli.search.workers.WorkerPool`, which the MPI executor's
ranks use too; this plugin only registers it and takes the executor options it understands.
"""

from __future__ import annotations

from wtnas_cli.plugins.hookspecs import hookimpl
from wtnas_cli.search.workers import WorkerPool, default_workers

__all__ = ["LocalExecutor", "default_workers"]


class LocalExecutor(WorkerPool):
    def __init__(self, workers: int | None = None, threads_per_worker: int | None = None,
                 devices: list[str] | None = None, max_jobs_per_worker: int | None = None, **_):
        super().__init__(workers, threads_per_worker, devices, max_jobs_per_worker)


@hookimpl
def wtnas_register_executors(register):
    register("local", LocalExecutor, description="worker processes on this machine (--workers N)")
