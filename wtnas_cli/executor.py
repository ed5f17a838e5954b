"""What an executor plugin provides. The scheduler keeps at most `capacity` jobs in flight and
collects results as they finish (asynchronous: a freed worker gets the next job at once)."""

from __future__ import annotations

from typing import Protocol

from .job import Job, Result


class Executor(Protocol):
    capacity: int

    def start(self) -> None: ...

    def submit(self, job: Job) -> None:
        """Hand `job` to an idle worker (the scheduler never submits more than `capacity`)."""

    def poll(self, timeout: float) -> list[Result]:
        """Results finished since the last poll, waiting up to `timeout` seconds for the first.
        A worker that dies mid-job yields a failed Result for that job."""

    def shutdown(self) -> None: ...
