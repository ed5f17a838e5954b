"""The loop that drives an executor: keep every worker busy, hand results back as they arrive.
Shared by the search and top-K training."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Callable, ContextManager

from ..run.job import Job, Result
from .executor_protocol import Executor


def pump(executor: Executor, next_job: Callable[[], Job | None], on_result: Callable[[Result], None],
         poll_s: float = 0.5, batch: Callable[[], ContextManager] = nullcontext) -> None:
    """Keep every worker busy: submit `next_job()` while capacity is free (None = nothing to
    submit now), hand each result to `on_result` as it arrives; return when nothing is in flight
    and nothing more is submitted. Shared by the search and top-K training.

    The results of one poll and the jobs that refill the freed capacity are handled inside one
    `batch()` (the search's: one store transaction, one commit per poll instead of two per
    candidate), and those jobs are submitted only once it has exited: a job never reaches a
    worker before what its batch recorded (its pending row, the deletions it carries) is stored."""
    in_flight = 0

    def refill() -> list[Job]:
        jobs: list[Job] = []
        while in_flight + len(jobs) < executor.capacity:
            job = next_job()
            if job is None:
                break
            jobs.append(job)
        return jobs

    with batch():
        jobs = refill()
    while True:
        for job in jobs:
            executor.submit(job)
            in_flight += 1
        if in_flight == 0:
            return
        results = executor.poll(timeout=poll_s)
        with batch():
            for result in results:
                in_flight -= 1
                on_result(result)
            jobs = refill()
