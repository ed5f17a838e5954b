"""Candidates as Ray tasks, collected as they finish (asynchronous, as in DeepHyper).

Each task runs the same Evaluator as every executor; a Ray worker process keeps its Evaluator
(problem data, backend) between tasks. Tasks are not retried: a worker that dies fails its
candidate with the reason, and Ray starts a new worker for the next task. The run directory must
be on a file system every node can read and write.
"""

from __future__ import annotations

import os
import time
from typing import Any

import ray

from wtnas_cli.errors import WtnasError
from wtnas_cli.run.job import Job, Result

_EVALUATOR = None


def _evaluate(job: dict, threads: int) -> dict:
    global _EVALUATOR
    if _EVALUATOR is None:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        from wtnas_cli.search.evaluator import Evaluator

        _EVALUATOR = Evaluator(threads=threads)
        node = ray.get_runtime_context().get_node_id()[:8]
        _EVALUATOR.worker = f"ray:{node}:{os.getpid()}"
    return _EVALUATOR.run(Job.from_dict(job)).to_dict()


class RayExecutor:
    def __init__(self, workers: int | None = None, threads_per_worker: int | None = None,
                 gpus_per_worker: float = 0.0, address: str | None = None,
                 max_jobs_per_worker: int | None = None, **_):
        self.max_calls = int(max_jobs_per_worker or 0)
        self.workers = workers
        self.threads = int(threads_per_worker or 1)
        self.gpus = float(gpus_per_worker or 0.0)
        self.address = address
        self.capacity = 0
        self._started_ray = False
        self._pending: dict = {}
        self._remote: Any = None   # ray's remote function for _evaluate, made by start()

    def start(self) -> None:
        if not ray.is_initialized():
            try:
                if self.address:
                    ray.init(address=self.address, log_to_driver=False)
                else:
                    ray.init(num_cpus=None, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = self.address or "a local cluster"
                raise WtnasError(f"cannot start or reach Ray at {where}: {str(exc).splitlines()[0]}") from None
            self._started_ray = True
        resources = ray.cluster_resources()
        by_cpu = int(resources.get("CPU", 1) // self.threads)
        by_gpu = int(resources.get("GPU", 0) // self.gpus) if self.gpus else by_cpu
        self.capacity = max(1, self.workers or min(by_cpu, by_gpu))
        self._remote = ray.remote(max_retries=0, num_cpus=self.threads, num_gpus=self.gpus,
                                  max_calls=self.max_calls)(_evaluate)

    def submit(self, job: Job) -> None:
        ref = self._remote.remote(job.to_dict(), self.threads)
        self._pending[ref] = (job, time.time())

    def poll(self, timeout: float) -> list[Result]:
        if not self._pending:
            return []
        refs = list(self._pending)
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        results = []
        for ref in ready:
            job, sent = self._pending.pop(ref)
            try:
                results.append(Result.from_dict(ray.get(ref)))
            except ray.exceptions.RayError as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                results.append(Result(job.candidate_id, "failed", role=job.role, error=f"Ray task failed ({type(exc).__name__}): "
                                      f"{reason}", worker="ray", started_at=sent, finished_at=time.time()))
        return results

    def shutdown(self) -> None:
        for ref in list(self._pending):
            ray.cancel(ref, force=True)
        self._pending.clear()
        if self._started_ray and ray.is_initialized():
            ray.shutdown()
