"""MPI executor: every rank runs the same `wtnas run`; rank 0 schedules, ranks 1..N-1 evaluate.

Messages are JSON strings (jobs and results are plain data). Waiting ranks poll with short
sleeps instead of MPI's busy-waiting receive, so idle ranks leave the cores to training. A rank
whose candidate raises reports it as a failed result like any executor; a rank whose process
dies takes the MPI job down with it (MPI's own semantics), after which `wtnas run --resume`
continues the run. The run directory must be on a file system shared by all nodes.
"""

from __future__ import annotations

import json
import os
import time

from mpi4py import MPI

from wtnas_cli.errors import WtnasError
from wtnas_cli.run.job import Job, Result

TAG_JOB, TAG_RESULT, TAG_STOP = 1, 2, 3
_SLEEP_MIN_S, _SLEEP_MAX_S = 0.0001, 0.001  # back off while idle: quick to react, cheap to wait


def _backoff(sleep_s: float) -> float:
    time.sleep(sleep_s)
    return min(sleep_s * 2, _SLEEP_MAX_S)


class MPIExecutor:
    def __init__(self, workers: int | None = None, threads_per_worker: int | None = None,
                 max_jobs_per_worker: int | None = None, **_):
        self.max_jobs = max_jobs_per_worker
        self.comm = MPI.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.is_worker = self.rank != 0
        if self.size < 2:
            raise WtnasError("the mpi executor needs at least 2 ranks: run it as "
                             "`mpiexec -n 3 wtnas run --executor mpi ...` (rank 0 schedules, the others evaluate)")
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size()
        self.threads = int(threads_per_worker or max(1, (os.cpu_count() or 1) // max(1, local - 1)))
        self.ranks = list(range(1, self.size))[: workers or None]
        self.capacity = len(self.ranks)
        self._busy: dict[int, tuple[Job, float]] = {}
        self._stopped = False

    # -- rank 0 ---------------------------------------------------------------------------------
    def start(self) -> None:
        pass

    def submit(self, job: Job) -> None:
        rank = next(r for r in self.ranks if r not in self._busy)
        self._busy[rank] = (job, time.time())
        self.comm.send(json.dumps(job.to_dict()), dest=rank, tag=TAG_JOB)

    def poll(self, timeout: float) -> list[Result]:
        if not self._busy:
            return []
        deadline = time.time() + timeout
        status = MPI.Status()
        results: list[Result] = []
        sleep_s = _SLEEP_MIN_S
        while True:
            while self.comm.Iprobe(source=MPI.ANY_SOURCE, tag=TAG_RESULT, status=status):
                rank = status.Get_source()
                results.append(Result.from_dict(json.loads(self.comm.recv(source=rank, tag=TAG_RESULT))))
                self._busy.pop(rank, None)
            if results or time.time() >= deadline:
                return results
            sleep_s = _backoff(sleep_s)

    def shutdown(self) -> None:
        if self._stopped or self.is_worker:
            return
        self._stopped = True
        deadline = time.time() + 30
        while self._busy and time.time() < deadline:  # let running candidates finish before release
            self.poll(0.5)
        for rank in range(1, self.size):
            self.comm.send(None, dest=rank, tag=TAG_STOP)

    # -- ranks 1..N-1 ---------------------------------------------------------------------------
    def serve(self) -> None:
        """Evaluate jobs from rank 0, in a child worker process (core's pool of one: a candidate
        that kills its process fails alone), until rank 0 says stop."""
        from wtnas_cli.search.workers import WorkerPool

        name = f"mpi:{MPI.Get_processor_name()}:{self.rank}"
        child = WorkerPool(workers=1, threads_per_worker=self.threads, max_jobs_per_worker=self.max_jobs)
        child.start()
        status = MPI.Status()
        try:
            while True:
                sleep_s = _SLEEP_MIN_S
                while not self.comm.Iprobe(source=0, tag=MPI.ANY_TAG, status=status):
                    sleep_s = _backoff(sleep_s)
                message = self.comm.recv(source=0, tag=status.Get_tag())
                if status.Get_tag() == TAG_STOP:
                    return
                child.submit(Job.from_dict(json.loads(message)))
                results: list[Result] = []
                while not results:
                    results = child.poll(timeout=1.0)
                result = results[0]
                result.worker = f"{name}:{result.worker}"
                self.comm.send(json.dumps(result.to_dict()), dest=0, tag=TAG_RESULT)
        finally:
            child.shutdown()
