"""The worker side of a search: one job in, one result out, the same for every executor.

    build → read provider checkpoint (metadata) → match → read matched tensors → copy
          → train N epochs → evaluate → write own checkpoint
    a promotion: build → read its own checkpoint (weights, optimizer state) → train N more
          epochs → evaluate → replace its checkpoint

A provider that cannot be used (missing, corrupt, tensors that do not fit) never fails the
candidate: it trains from scratch and the event is reported. A model that is not finite (loss,
predictions, objective, metrics or weights) or a training error fails the candidate and writes
no checkpoint, so it can never become a provider.
"""

from __future__ import annotations

import errno
import math
import os
import socket
import time
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import CheckpointError, NonFiniteModel, WtnasError
from ..plugins.manager import Plugins, PluginSet, default_plugins, plugins_for
from ..run.job import Job, Result
from ..util.memory import is_out_of_memory, release_device_memory
from ..util.stats import early_stop_epoch
from ..weights.checkpoint import CheckpointMeta, CheckpointReader, write_checkpoint
from ..weights.matching import SAME_MODEL, MatchError, apply_matcher, match_same
from ..weights.transfer import assemble, plan_stats


def remove_files(paths) -> None:
    """Remove checkpoints the scheduler has already marked deleted in its store. One that cannot
    be removed stays behind as a stray file, which `wtnas run --resume` removes."""
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass


class Evaluator:
    """Caches problems (with their data), backends and matchers across the jobs of one worker.

    Each job names its plugin set (`Job.plugins`, the scheduler's); its components come from that
    set, loaded once per worker (`plugins.plugins_for`). A job without one uses `plugins` (by
    default the installed plugins). Caches are per plugin set: one name may mean different
    components in two sets."""

    def __init__(self, plugins: Plugins | None = None, *, threads: int | None = None):
        self._plugins = plugins
        self.threads = threads
        self._problems: dict[tuple, Any] = {}
        self._backends: dict[tuple, Any] = {}
        self._matchers: dict[tuple, Any] = {}
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    @property
    def plugins(self) -> Plugins:
        """The set for jobs that name none (loaded on first use: a worker whose jobs all name
        their set never loads the installed plugins for nothing)."""
        if self._plugins is None:
            self._plugins = default_plugins()
        return self._plugins

    def plugins_for(self, job: Job) -> Plugins:
        if job.plugins is None:
            return self.plugins
        spec = PluginSet.from_dict(job.plugins)
        if self._plugins is not None and self._plugins.spec == spec:
            return self._plugins
        return plugins_for(spec)

    def problem(self, name: str, options: dict, plugins: Plugins | None = None) -> Any:
        plugins = plugins or self.plugins
        key = (plugins.spec, name, tuple(sorted(options.items())))
        if key not in self._problems:
            self._problems[key] = plugins.registry.create("problem", name, **options)
        return self._problems[key]

    def backend(self, name: str, device: str, options: dict | None = None, plugins: Plugins | None = None,
                precision: str = "fp32") -> Any:
        """A configured backend; `precision` other than fp32 is passed to `configure` (a backend
        declares the ones it trains in with the registration trait `precisions`)."""
        plugins = plugins or self.plugins
        key = (plugins.spec, name, device, precision, tuple(sorted((options or {}).items())))
        if key not in self._backends:
            backend = plugins.registry.create("backend", name, **(options or {}))
            extra = {} if precision == "fp32" else {"precision": precision}
            backend.configure(threads=self.threads, device=device, **extra)
            self._backends[key] = backend
        return self._backends[key]

    def matcher(self, name: str, options: dict | None = None, plugins: Plugins | None = None):
        if name == SAME_MODEL:     # a top-K warm start from its own checkpoint: no plugin involved
            return match_same
        plugins = plugins or self.plugins
        key = (plugins.spec, name, tuple(sorted((options or {}).items())))
        if key not in self._matchers:
            self._matchers[key] = plugins.registry.create("matcher", name, **(options or {}))
        return self._matchers[key]

    def run(self, job: Job) -> Result:
        result = Result(job.candidate_id, "failed", role=job.role, rung=job.rung, worker=self.worker,
                        started_at=time.time())
        timings = result.timings
        remove_files(job.remove_checkpoints)
        try:
            self._run(job, result, timings)
        except WtnasError as exc:
            result.status, result.error = "failed", str(exc)
        except OSError as exc:
            result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
            if is_disk_full(exc):
                result.fault = "disk_full"
                result.error = f"no space left on the device holding {job.checkpoint_path}"
        except Exception as exc:  # a candidate's crash is data about the candidate, not a run failure
            result.status = "failed"
            result.error = f"{type(exc).__name__}: {exc}"
            if is_out_of_memory(exc):   # the device's, not the candidate's design: say what to change
                result.fault = "device_oom"
                result.error = (f"out of device memory on {job.device} (candidate with {result.num_params or '?'} "
                                f"parameters): {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; "
                                f"fewer workers share the device with --workers-per-device N (or --workers)")
                release_device_memory()
            if os.environ.get("WTNAS_DEBUG"):
                result.error += "\n" + traceback.format_exc()
        result.finished_at = time.time()
        result.worker_rss_mb = _rss_mb()
        return result

    def _run(self, job: Job, result: Result, timings: dict) -> None:
        t = time.perf_counter()
        plugins = self.plugins_for(job)
        problem = self.problem(job.problem, job.problem_options, plugins)
        backend = self.backend(job.backend, job.device, job.backend_options, plugins, job.precision)
        data = problem.data()
        arch = problem.space.resolve(job.arch_seq)
        model = backend.build(problem, arch, job.seed)
        specs = model.specs
        result.n_tensors = len(specs)
        result.num_params = int(model.num_params)
        timings["build_s"] = time.perf_counter() - t

        if job.provider_checkpoint:
            matcher = self.matcher(job.matcher, job.matcher_options, plugins)
            result.n_transferred = self._transfer(job, matcher, model, result, timings)

        if job.role == "promotion" and self._continue(job, model, result, timings):
            timings["eval_s"] = _score(model, data, result)   # trained before a crash lost its result
            result.epochs_trained = job.epochs
            result.events.append(f"its checkpoint already held the promotion's {job.start_epoch + job.epochs} "
                                 f"epochs (written before the run stopped): scored, not trained again")
        else:
            self._train(job, model, data, result, timings)
        for key, value in result.metrics.items():
            _finite(value, f"metric {key!r}")
        if job.score_test and data.has_test:   # once, after training: reported, never used to choose
            t = time.perf_counter()
            result.test_score = _finite(float(model.evaluate(data.test_view())), "test objective")
            result.test_metrics = dict(getattr(model, "last_metrics", None) or {})
            timings["eval_s"] = timings.get("eval_s", 0.0) + time.perf_counter() - t

        t = time.perf_counter()
        tensors = model.get_tensors()
        bad = [i for i, a in enumerate(tensors) if not np.isfinite(a).all()]
        if bad:
            raise NonFiniteModel(f"weights are not finite after training ({len(bad)} tensors, first "
                                 f"{specs[bad[0]].layer}.{specs[bad[0]].role}); candidate discarded, no checkpoint")
        if not job.write_checkpoint:   # a control: scored, never a provider
            result.status = "ok"
            return
        meta = CheckpointMeta(arch_seq=tuple(job.arch_seq), problem=job.problem, backend=job.backend,
                              specs=list(specs), score=result.score, epochs=job.start_epoch + result.epochs_trained,
                              candidate_id=job.candidate_id,
                              extra={"provider_id": job.provider_id, "matcher": job.matcher})
        state = getattr(model, "optimizer_state", None)
        optimizer = state() if job.keep_optimizer and state is not None else None
        result.checkpoint_bytes = write_checkpoint(job.checkpoint_path, meta, tensors, optimizer=optimizer)
        result.checkpoint_path = job.checkpoint_path
        timings["ckpt_write_s"] = time.perf_counter() - t
        result.status = "ok"

    def _train(self, job: Job, model, data, result: Result, timings: dict) -> None:
        """Train `job.epochs` epochs and score; with `job.patience`, score every epoch and track
        (and apply, if `job.early_stop`) Keras-style early stopping, against the starting score
        when `job.stop_reference` is "start". With early stopping the model handed back is its
        best: the last epoch that improved (Keras' `restore_best_weights`), or its start when no
        epoch beat it, never a later, worse epoch."""
        train_s = eval_s = 0.0
        kept: _Snapshot | None = None   # what early stopping hands back so far
        if job.patience is not None and job.stop_reference == "start":
            t = time.perf_counter()
            result.start_score = _finite(float(model.evaluate(data)))
            eval_s += time.perf_counter() - t
            kept = _Snapshot.of(model, result.start_score, 0)
        for epoch in range(job.epochs):
            t = time.perf_counter()
            loss = float(model.train_epoch(data, job.seed * 1000 + job.start_epoch + epoch))
            train_s += time.perf_counter() - t
            result.epochs_trained = epoch + 1
            if not math.isfinite(loss):
                raise NonFiniteModel(f"training loss became {loss} in epoch {epoch + 1}; candidate discarded")
            if job.patience is None:
                continue
            t = time.perf_counter()
            score = _finite(float(model.evaluate(data)))
            result.curve.append(score)
            if job.early_stop and result.stop_epoch is None and score - job.min_delta > (
                    kept.score if kept is not None else -math.inf):   # an improvement (stats.early_stop_epoch)
                kept = _Snapshot.of(model, score, epoch + 1)
            eval_s += time.perf_counter() - t
            if result.stop_epoch is None:
                result.stop_epoch = early_stop_epoch(result.curve, job.patience, job.min_delta,
                                                     result.start_score)
                if result.stop_epoch is not None:
                    result.score_at_stop = result.curve[-1]
                    if job.early_stop:
                        break
        if job.patience is None:
            eval_s += _score(model, data, result)
        elif job.early_stop and kept is not None:
            if kept.epoch != result.epochs_trained:   # a later epoch was worse: back to the kept one
                model.set_tensors(dict(enumerate(kept.weights)))
            result.score = result.score_at_stop = kept.score
            result.metrics = kept.metrics
        else:
            result.score = result.curve[-1]
            result.metrics = dict(getattr(model, "last_metrics", None) or {})
        timings["train_s"], timings["eval_s"] = train_s, eval_s

    def _continue(self, job: Job, model, result: Result, timings: dict) -> bool:
        """A promotion: load the candidate's own weights and optimizer state. True when its
        checkpoint already holds the promotion's epochs (the job wrote it, then the run stopped
        before storing its result): it is scored again, never trained twice. Any other epoch
        count, or another architecture, fails the promotion; the checkpoint is left as it is."""
        t = time.perf_counter()
        target = job.start_epoch + job.epochs
        with CheckpointReader(job.checkpoint_path) as reader:
            meta = reader.meta
            if tuple(meta.arch_seq) != tuple(job.arch_seq) or meta.epochs not in (job.start_epoch, target):
                raise CheckpointError(f"{job.checkpoint_path} holds {meta.epochs} epochs of {list(meta.arch_seq)}; "
                                      f"the promotion continues {job.start_epoch} epochs of {list(job.arch_seq)}")
            tensors = reader.read()
            state = reader.read_optimizer()
        model.set_tensors(tensors)
        load = getattr(model, "load_optimizer_state", None)
        if state is not None and load is not None:
            load(*state)
        else:
            result.events.append(f"{job.checkpoint_path} holds no optimizer state this backend reads: the "
                                 f"optimizer restarts for the promotion's {job.epochs} epochs")
        timings["ckpt_read_s"] = time.perf_counter() - t
        return meta.epochs == target

    def _transfer(self, job: Job, matcher, model, result: Result, timings: dict) -> int:
        """Copy matched provider tensors (whole, or their overlapping block for a partial matcher)
        into `model`; on any checkpoint or matcher problem, copy nothing."""
        assert job.provider_checkpoint is not None   # called only for a job with a provider
        t = time.perf_counter()
        timings["match_s"] = 0.0
        try:
            with CheckpointReader(job.provider_checkpoint) as reader:
                t_meta = time.perf_counter()
                provider_specs = reader.meta.specs
                pairs = apply_matcher(matcher, provider_specs, model.specs, job.matcher)
                timings["match_s"] = time.perf_counter() - t_meta
                tensors = reader.read(i for i, _ in pairs)
            timings["ckpt_read_s"] = time.perf_counter() - t - timings["match_s"]
        except (CheckpointError, MatchError) as exc:
            timings["ckpt_read_s"] = time.perf_counter() - t - timings["match_s"]
            result.events.append(f"provider {job.provider_id} unusable, trained from scratch: {exc}")
            return 0
        t = time.perf_counter()
        model.set_tensors(assemble(pairs, provider_specs, model.specs, tensors, model.get_tensors))
        timings["copy_s"] = time.perf_counter() - t
        stats = plan_stats(pairs, provider_specs, model.specs)
        result.n_partial, result.transfer_share, result.n_role_crossed = stats.partial, stats.share, stats.role_crossings
        return len(pairs)


@dataclass
class _Snapshot:
    """A model's weights, objective and metrics after `epoch` epochs (0: its start): what early
    stopping hands back when no later epoch improves on it."""

    score: float
    weights: list[np.ndarray]
    metrics: dict
    epoch: int

    @classmethod
    def of(cls, model, score: float, epoch: int) -> "_Snapshot":
        return cls(score, [a.copy() for a in model.get_tensors()],   # (a backend may hand out views)
                   dict(getattr(model, "last_metrics", None) or {}), epoch)


def _score(model, data, result: Result) -> float:
    """Score the model on validation into `result` (objective and metrics); return the seconds."""
    t = time.perf_counter()
    result.score = _finite(float(model.evaluate(data)))
    result.metrics = dict(getattr(model, "last_metrics", None) or {})
    return time.perf_counter() - t


def _finite(value: float, what: str = "objective") -> float:
    if not math.isfinite(value):
        raise NonFiniteModel(f"{what} is {value} (not finite); candidate discarded, no checkpoint")
    return value


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT from the OS, h5py or SQLite ('database or disk is full')."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return "No space left on device" in text or "database or disk is full" in text or "Disk quota exceeded" in text


def _rss_mb() -> float | None:
    """This worker's resident memory (Linux), recorded per candidate to catch leaking frameworks."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None
