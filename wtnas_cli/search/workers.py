"""A pool of worker processes on this machine, each evaluating one job at a time.

Core, not a plugin, because more than one executor needs it: the `local` executor is this pool,
and every MPI rank > 0 evaluates its jobs in a pool of one (a candidate that crashes its process
then fails alone instead of taking the MPI job down). Another executor plugin may use it too.

- one spawned process per worker with one pipe each; a worker keeps its Evaluator (problem data,
  backend, plugin set) between jobs;
- a worker dies with its parent (it would otherwise keep writing into a run being resumed);
- a worker that dies mid-job (killed, segfault, out of memory) turns its job into a failed
  result and is replaced; one that dies while idle is replaced silently;
- after `max_jobs_per_worker` jobs a worker is recycled (bounds frameworks' memory growth);
- each worker gets a fixed CPU-thread share (OMP/MKL) so workers do not oversubscribe cores,
  and with `devices` its own CUDA_VISIBLE_DEVICES (round robin);
- a job that ran its GPU out of memory (`Result.fault == "device_oom"`) backs that device off:
  its worker is stopped and its slot parked, so one worker fewer shares the device (never
  fewer than one); `capacity` shrinks with it and the result's error says so.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import selectors
import signal
import time

from ..errors import WtnasError
from ..run.job import Job, Result


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _die_with_parent(parent_pid: int) -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        os._exit(1)


def _worker_main(conn, threads: int, env: dict, parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the scheduler's to handle
    os.environ.update(env)
    from .evaluator import Evaluator

    evaluator = Evaluator(threads=threads)   # each job names its plugin set (Job.plugins)
    while True:
        try:
            message = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if message is None:
            return
        conn.send(evaluator.run(Job.from_dict(message)).to_dict())


class _Worker:
    def __init__(self, ctx, index: int, threads: int, env: dict):
        self.index = index
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, threads, env, os.getpid()),
                                   name=f"wtnas-worker-{index}", daemon=True)
        # A terminal's Ctrl-C reaches the whole process group: a worker still starting (importing,
        # before _worker_main ignores SIGINT) would die of it. Started with SIGINT blocked (the
        # mask is inherited through fork and exec), it never sees one; here it waits the few ms.
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self.process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        child.close()
        self.job: Job | None = None
        self.sent_at = 0.0
        self.jobs_done = 0


class WorkerPool:
    """`workers` processes, asynchronous dispatch; implements `executor.Executor`.

    `replaced` counts workers that died and were replaced, `recycled` those retired after
    `max_jobs_per_worker` jobs."""

    def __init__(self, workers: int | None = None, threads_per_worker: int | None = None,
                 devices: list[str] | None = None, max_jobs_per_worker: int | None = None):
        self.max_jobs = max_jobs_per_worker
        self.capacity = int(workers or default_workers())
        cpus = os.cpu_count() or 1
        self.threads = int(threads_per_worker or max(1, cpus // self.capacity))
        self.devices = list(devices or [])
        self._ctx = mp.get_context("spawn")
        self._workers: list[_Worker] = []
        self.replaced = 0
        self.recycled = 0
        self._deaths_in_a_row = 0  # deaths with no result in between: workers that cannot run at all
        self._parked: set[int] = set()   # slots stopped after their device ran out of memory
        self._selector: selectors.BaseSelector | None = None

    def _device(self, index: int) -> str | None:
        return self.devices[index % len(self.devices)] if self.devices else None

    def _env(self, index: int) -> dict:
        env = {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        device = self._device(index)
        if device is not None:
            env["CUDA_VISIBLE_DEVICES"] = device
        return env

    def workers_on(self, device: str) -> int:
        """How many workers share GPU `device` now (after any back-off)."""
        return sum(self._device(w.index) == device for w in self._live())

    def _live(self) -> list[_Worker]:
        return [w for w in self._workers if w.index not in self._parked]

    def start(self) -> None:
        self._selector = selectors.DefaultSelector()   # kept across polls: one poll per result at scale
        self._workers = [self._spawn(i) for i in range(self.capacity)]

    @property
    def _events(self) -> selectors.BaseSelector:
        assert self._selector is not None, "WorkerPool used before start()"
        return self._selector

    def _spawn(self, index: int) -> _Worker:
        worker = _Worker(self._ctx, index, self.threads, self._env(index))
        self._events.register(worker.conn, selectors.EVENT_READ, index)
        self._events.register(worker.process.sentinel, selectors.EVENT_READ, index)
        return worker

    def _forget(self, w: _Worker) -> None:
        for obj in (w.conn, w.process.sentinel):
            try:
                self._events.unregister(obj)
            except (KeyError, ValueError):
                pass

    def idle(self) -> int:
        return sum(w.job is None for w in self._live())

    def submit(self, job: Job) -> None:
        for w in self._live():
            if w.job is None:
                message = job.to_dict()
                try:
                    w.conn.send(message)
                except OSError:    # it died while idle (killed, out of memory): a fresh one takes the job
                    w = self._replace_idle(w, f"exit code {w.process.exitcode}" if not w.process.is_alive()
                                           else "broken pipe")
                    w.conn.send(message)
                w.job = job
                w.sent_at = time.time()
                return
        raise RuntimeError("no idle worker: the scheduler submitted more jobs than capacity")

    def poll(self, timeout: float) -> list[Result]:
        if not any(w.job is not None for w in self._workers):
            return []
        results: list[Result] = []
        handled: set[int] = set()
        for key, _ in self._events.select(timeout):
            w = self._workers[key.data]
            if w.index in handled or (key.fileobj is not w.conn and key.fileobj != w.process.sentinel):
                continue
            handled.add(w.index)
            try:   # the pipe said readable: no need to ask it again (one system call less per result)
                if w.job is not None and (key.fileobj is w.conn or w.conn.poll()):
                    result = Result.from_dict(w.conn.recv())
                    results.append(result)
                    w.job = None
                    w.jobs_done += 1
                    self._deaths_in_a_row = 0
                    note = self._back_off(w) if result.fault == "device_oom" else None
                    if note:
                        result.error = f"{result.error}; {note}"
                    elif self.max_jobs and w.jobs_done >= self.max_jobs:
                        self._retire(w)
                    continue
            except (EOFError, OSError):
                pass
            if not w.process.is_alive():
                if w.job is not None:
                    results.append(self._replace(w))
                else:   # died between jobs: nothing to fail, a fresh worker takes its place
                    self._replace_idle(w, f"exit code {w.process.exitcode}")
        return results

    def _back_off(self, w: _Worker) -> str | None:
        """One worker fewer on the device `w` ran out of memory on (the job already failed with its
        reason): stop `w` and park its slot, unless it is the device's last worker. Returns what
        was done, for the job's error; None if nothing was."""
        device = self._device(w.index)
        if device is None or self.workers_on(device) <= 1:
            return None
        try:   # it exits at once and frees its GPU memory; shutdown() joins it (no wait here)
            w.conn.send(None)
        except OSError:
            pass
        self._forget(w)
        self._parked.add(w.index)
        self.capacity -= 1
        return f"GPU {device} now runs {self.workers_on(device)} worker(s)"

    def _retire(self, w: _Worker) -> None:
        """Planned replacement: a fresh process after max_jobs_per_worker candidates (bounds memory)."""
        try:
            w.conn.send(None)
        except OSError:
            pass
        w.process.join(timeout=10)
        if w.process.is_alive():
            w.process.terminate()
        self._respawn(w)
        self.recycled += 1

    def _replace(self, w: _Worker) -> Result:
        """A dead worker: fail its job with the reason and start a fresh worker in its place."""
        w.process.join(timeout=1)
        code = w.process.exitcode
        reason = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        job = w.job
        assert job is not None
        self._count_death(reason)
        result = Result(job.candidate_id, "failed", role=job.role,
                        error=f"worker process died ({reason}) while evaluating",
                        worker=f"local:{w.index}", started_at=w.sent_at, finished_at=time.time())
        self._respawn(w)
        self.replaced += 1
        return result

    def _replace_idle(self, w: _Worker, reason: str) -> _Worker:
        """A worker that died between jobs: nothing to fail; a fresh one takes its place."""
        self._count_death(reason)
        self._respawn(w)
        self.replaced += 1
        return self._workers[w.index]

    def _count_death(self, reason: str) -> None:
        self._deaths_in_a_row += 1
        if self._deaths_in_a_row > 2 * self.capacity + 1:
            raise WtnasError(f"local workers died {self._deaths_in_a_row} times in a row without finishing a job "
                             f"(last: {reason}); run with --workers 1 and WTNAS_DEBUG=1 to see why")

    def _respawn(self, w: _Worker) -> None:
        self._forget(w)
        w.conn.close()
        self._workers[w.index] = self._spawn(w.index)

    def shutdown(self) -> None:
        for w in self._workers:
            try:
                w.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        deadline = time.time() + 5
        for w in self._workers:
            w.process.join(timeout=max(0.1, deadline - time.time()))
            if w.process.is_alive():
                w.process.terminate()
                w.process.join(timeout=2)
            w.conn.close()
        self._workers = []
        if self._selector is not None:
            self._selector.close()
            self._selector = None
