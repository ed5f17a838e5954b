"""The scheduler of `wtnas run`: strategy → selector → executor → store, asynchronously.

It owns the strategy, the selector and the run store; workers own nothing but their job. A
resumed run replays finished candidates (in finish order) into the strategy and the selector
and re-queues the ones that were in flight, so the final run has exactly `max_evals` candidates.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence, cast

from ..errors import ConfigError, RunDirError, RunFailedError, StorageFullError, WtnasError
from ..plugins.manager import Plugins, default_plugins, notify
from ..run.config import RunConfig, load_config_file, to_toml
from ..run.definition import definition_changes, record_definition
from ..run.job import Job
from ..run.lease import RunLease
from ..run.lease import describe as describe_lease
from ..run.resolver import resume_config, settle
from ..run.retention import Retention
from ..run.rundir import (CONFIG_NAME, STORE_NAME, checkpoint_path, default_run_dir, is_run_dir, not_a_run,
                          prepare_run_dir)
from ..run.scheme import check_scheme, fit_random_start, is_baseline, run_selector
from ..run.store import RunStore
from ..util.interrupts import GracefulInterrupt
from ..util.silent import Silent
from .controls import ControlStats, ControlTally, control_job, gets_control
from .evaluator import is_disk_full
from .executor_protocol import optional, serve_if_worker
from .jobs import candidate_job, candidate_seed, create_executor, scratch_twin, search_job
from .pump import pump
from .strategy_protocol import Proposal, Tell, promotes, teller


@dataclass
class RunSummary:
    run_dir: Path
    total: int
    ok: int = 0
    failed: int = 0
    with_transfer: int = 0
    best: dict | None = None
    elapsed_s: float = 0.0
    interrupted: bool = False
    stopped_by_time: bool = False
    workers_replaced: int = 0
    promotions: int = 0   # finished promotions (promoting strategies: asha)
    top: list[dict] = field(default_factory=list)
    control_tally: ControlTally = field(default_factory=ControlTally)   # (warm, scratch) of the finished controls

    @property
    def control_pairs(self) -> list[tuple[float, float]]:
        return self.control_tally.pairs

    @property
    def controls(self) -> ControlStats:
        return self.control_tally.stats()

    @property
    def done(self) -> int:
        return self.ok + self.failed

    @property
    def transfer_rate(self) -> float:
        return self.with_transfer / self.ok if self.ok else 0.0


FAIL_FAST = 5   # a run whose first this many candidates fail with one error stops with it


class SearchObserver(Protocol):
    def started(self, cfg: RunConfig, run_dir: Path, total: int, done: int, workers: int) -> None: ...

    def candidate_done(self, record: dict, summary: RunSummary) -> None: ...

    def stopping(self, reason: str) -> None: ...

    def warning(self, message: str) -> None: ...

    def control_done(self, summary: RunSummary) -> None: ...


def resolve_run(cfg: RunConfig, plugins: Plugins) -> dict[str, Any]:
    """Check every component the run needs, and their options, before anything is written;
    return them. `cfg.options` is settled: every option of the run's components, by component."""
    reg = plugins.registry
    fitted = fit_random_start(cfg, reg)
    settle(cfg, reg)
    problem = reg.create("problem", cfg.problem, **cfg.problem_options())
    backend = reg.get("backend", cfg.backend)
    if not backend.available:
        backend.create()  # raises the one-line 'install it with' error
    check_precision(cfg, backend)
    matcher = reg.get("matcher", cfg.matcher)
    transfers = not is_baseline(reg, "matcher", cfg.matcher)
    selector_name = run_selector(cfg, reg)
    made = {}
    for kind, name, args in (("strategy", cfg.strategy, (problem.space,)), ("selector", selector_name, (problem.space,))):
        try:   # cheap objects: made once here so that options they refuse stop the run before it starts
            made[kind] = reg.create(kind, name, *args, **({"seed": cfg.seed} if kind == "strategy" else {}),
                                    **cfg.options_of(kind, name))
        except ValueError as exc:
            listed = ", ".join(o.name for o in reg.get(kind, name).options) or "none"
            raise ConfigError(f"{kind} {name!r}: {exc} (its options: {listed}; set them with -o "
                              f"{name}.OPTION=VALUE)") from None
    warnings = check_scheme(cfg, reg, selector_name)
    strategy = made["strategy"]
    if promotes(strategy) and cfg.epochs != strategy.rung_epochs[0]:
        warnings = [*warnings, f"--epochs {cfg.epochs} is not used by {cfg.strategy}: new candidates train its first "
                               f"rung, {strategy.rung_epochs[0]} epoch(s) (rungs of "
                               f"{', '.join(map(str, strategy.rung_epochs))}; -o {cfg.strategy}.min_epochs=N sets it)"]
    size = problem.space.size
    if size < cfg.max_evals:   # e.g. a 9-architecture space file: most candidates would be repeats
        warnings = [*warnings, f"the search space has only {size} architectures and --max-evals is {cfg.max_evals}: "
                               f"most candidates will repeat an architecture already scored; lower --max-evals or "
                               f"add choices to the space"]
    if fitted and transfers:
        option = next(iter(fitted))
        warnings = [f"{', '.join(f'{k} {v}' for k, v in fitted.items())} for --max-evals {cfg.max_evals} (a "
                    f"random start of {fitted[option]}, so that {max(cfg.max_evals - fitted[option], 0)} candidates "
                    f"can receive weights; -o {cfg.strategy}.{option}=N sets it)", *warnings]
    reg.get("executor", cfg.executor)
    if problem.check_data is not None:
        notes = problem.check_data()   # loaded here once: its warnings are shown once, not per worker
        if isinstance(notes, list):
            warnings = list(warnings) + [n for n in notes if isinstance(n, str)]
    scheme = {"matcher": cfg.matcher, "matcher_description": matcher.description, "selector": selector_name,
              "baseline": not transfers}
    plugin_set = plugins.worker_spec([("problem", cfg.problem), ("backend", cfg.backend), ("matcher", cfg.matcher)])
    return {"problem": problem, "selector_name": selector_name, "transfers": transfers, "warnings": warnings,
            "scheme": scheme, "plugin_set": plugin_set}


def check_precision(cfg: RunConfig, backend) -> None:
    """Refuse a --precision the backend does not train in (its `precisions` trait; fp32 only when
    it declares none), or tf32 on a CPU, before anything runs."""
    offered = tuple(backend.traits.get("precisions", ("fp32",)))
    if cfg.precision not in offered:
        raise ConfigError(f"--precision {cfg.precision}: backend {cfg.backend!r} trains in {', '.join(offered)}; "
                          f"use --precision {offered[0]}" + (" or --backend torch" if cfg.backend != "torch" else ""))
    if cfg.precision == "tf32" and cfg.device == "cpu":
        raise ConfigError("--precision tf32 needs --device cuda (TensorFloat-32 is an NVIDIA tensor-core format); "
                          "use --precision fp32 or bf16 on CPU")


def run_search(cfg: RunConfig | None = None, *, plugins: Plugins | None = None,
               observer: SearchObserver | None = None, resume: str | Path | None = None,
               overwrite: bool = False, overrides: dict[str, Any] | None = None,
               force_change: bool = False) -> RunSummary | None:
    """Run (or resume) a search; return its summary (None in a process that only served as a
    worker, e.g. an MPI rank > 0). `overrides` apply on resume: budget-like settings freely, the
    settings that define candidates only with `force_change` (config.resume_config). The run
    directory is leased for the whole search (run/lease.py)."""
    plugins = plugins or default_plugins()
    observer = observer or cast(SearchObserver, Silent())
    changes: dict[str, list] = {}
    if resume is not None:
        run_dir = Path(resume)
        if not is_run_dir(run_dir):
            raise RunDirError(not_a_run(run_dir, "drop --resume to start a new run there"))
        cfg, changes = resume_config(load_config_file(run_dir / CONFIG_NAME), overrides, force=force_change,
                                     source=str(run_dir / CONFIG_NAME), registry=plugins.registry)
        cfg.run_dir = str(run_dir)
    else:
        cfg = (cfg or RunConfig()).validate()
        run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
    parts = resolve_run(cfg, plugins)
    executor, job_device = create_executor(cfg, plugins)
    if serve_if_worker(executor):  # e.g. MPI ranks > 0: evaluate jobs, touch nothing else
        return None
    lease = RunLease(run_dir, "wtnas run")
    try:
        lease.acquire()
    except BaseException:
        executor.shutdown()   # e.g. MPI ranks waiting for work are released
        raise
    try:
        scheduler = Scheduler(cfg, run_dir, parts, executor, job_device, plugins, observer, lease)
        scheduler.open(resumed=resume is not None, overwrite=overwrite, changes=changes, force_change=force_change)
        scheduler.replay()
        return scheduler.run()
    finally:
        lease.release()


class Scheduler:
    """One search, run while its caller holds the run directory's lease. Its steps, in order:
    `open` (directory, store, the run's definition), `replay` (what a resumed run had finished,
    into the strategy, selector, retention and controls), then `run`: `pump` asks `next_job` for
    work and hands each result to `on_result`, one store transaction per `batch`."""

    def __init__(self, cfg: RunConfig, run_dir: Path, parts: dict, executor, job_device: str, plugins: Plugins,
                 observer: SearchObserver, lease: RunLease):
        self.cfg, self.run_dir, self.parts, self.executor = cfg, run_dir, parts, executor
        self.job_device, self.plugins, self.observer, self.lease = job_device, plugins, observer, lease
        self.problem_options = cfg.problem_options()
        self.space = parts["problem"].space
        self.summary = RunSummary(run_dir, total=cfg.max_evals)
        self.stop = False
        self.in_flight = 0
        self.disk_full: list[str] = []
        self.same_failures: list[str] = []   # the errors of a run whose candidates have all failed so far
        self.failure_kind = ""   # what makes them alike: their error's first line, or their fault
        self.hook_failures: set[tuple[str, str]] = set()
        # checkpoint files marked deleted in the batch under way (staged) and in committed batches: the
        # next job's worker removes the committed ones before it trains (Job.remove_checkpoints), what
        # is left when the run ends is removed here; a rolled-back mark never loses its file
        self.staged: list[str] = []
        self.committed: list[str] = []

    # -- open and replay ------------------------------------------------------------------------

    def open(self, *, resumed: bool, overwrite: bool, changes: dict[str, list], force_change: bool) -> None:
        """Prepare the run directory and its store; record the run's settings and definition (a
        forced change on resume as a new segment)."""
        cfg, run_dir, problem, parts = self.cfg, self.run_dir, self.parts["problem"], self.parts
        prepare_run_dir(run_dir, resume=resumed, overwrite=overwrite)
        cfg.run_dir = str(run_dir)
        self.store = store = RunStore(run_dir / STORE_NAME)
        try:
            changes = {**changes, **definition_changes(cfg, run_dir, store, problem,
                                                        force=force_change if resumed else None)}
        except BaseException:
            store.close()
            raise
        (run_dir / CONFIG_NAME).write_text(to_toml(cfg.to_dict()))
        record_definition(cfg, run_dir, store, problem)
        if store.get_meta("config") is None:   # how the run was made; a forced change is a segment, not a rewrite
            store.set_meta("config", cfg.to_dict())
            store.set_meta("scheme", parts["scheme"])
        if changes:
            segments = store.get_meta("segments", [])
            segments.append({"from_id": store.next_id(), "at": time.time(), "changes": changes,
                             "scheme": parts["scheme"]})
            store.set_meta("segments", segments)
            self.observer.warning(f"forced change from candidate {store.next_id()} on: " + ", ".join(
                f"{k} {old} -> {new}" for k, (old, new) in changes.items()) + " (recorded as a new segment)")
        for message in parts["warnings"]:
            self.observer.warning(message)
        if resumed:   # checkpoints whose deletion a crash interrupted (marked deleted, file still there)
            for cid in store.deleted_checkpoint_ids():
                checkpoint_path(run_dir, cid).unlink(missing_ok=True)

    def replay(self) -> None:
        """Create the strategy and selector and feed them what the run already finished (in
        finish order); queue again what was in flight, candidates and controls."""
        cfg, store, reg, summary = self.cfg, self.store, self.plugins.registry, self.summary
        self.retention = retention = Retention(cfg.keep, cfg.keep_top, cfg.tau_reserve, cfg.seed, cfg.max_checkpoints)
        finished = [r for r in store.candidates(order="finish_seq") if r["status"] in ("ok", "failed")]
        pending = store.candidates(status="pending")
        self.strategy = reg.create("strategy", cfg.strategy, self.space, seed=cfg.seed + 104_729 * len(finished),
                                   **cfg.options_of("strategy", cfg.strategy))
        self.tell = teller(self.strategy)
        self.promotes = promotes(self.strategy)
        if self.promotes:   # the rung ladder, for readers of the run (wtnas topk, the report)
            store.set_meta("rung_epochs", list(self.strategy.rung_epochs))
        selector_name = self.parts["selector_name"]
        self.selector = reg.create("selector", selector_name, self.space, **cfg.options_of("selector", selector_name))
        self.seqs: dict[int, tuple] = {}
        self.checkpoints: dict[int, str] = {}
        self.promotion_queue: list[dict] = []   # promotions an interrupted run left in flight
        if self.promotes:
            self.replay_with_promotions(finished)
        else:
            for r in finished:
                self.absorb(r)
        for r in pending:   # a re-queued candidate keeps its parent's checkpoint until its job takes over
            if r["parent_id"] is not None:
                retention.hold(r["parent_id"])
        _unlink(self.prune())
        self.elapsed_offset = summary.elapsed_s = max((r["elapsed_s"] or 0.0 for r in finished), default=0.0)

        self.requeue = [Proposal(tuple(r["arch_seq"]), r["parent_id"]) for r in pending]
        self.requeue_ids = [r["id"] for r in pending]
        by_id = {r["id"]: r for r in store.candidates()}
        # controls left pending by an interrupted run are re-queued (their candidate's job, from scratch)
        self.control_queue = [scratch_twin(cfg, self.run_dir, c["candidate_id"], by_id[c["candidate_id"]]["arch_seq"],
                                           self.job_device, self.parts["plugin_set"])
                              for c in store.controls(status="pending") if c["candidate_id"] in by_id]
        # (warm, scratch) pairs: a candidate and its control finish in either order, so the first half
        # waits for the second; only open halves are held (memory stays flat over long runs)
        warm = {r["id"]: r["score"] for r in finished if r["status"] == "ok" and r["n_transferred"]}
        scratch = {c["candidate_id"]: c["score"] for c in store.controls(status="ok")
                   if (c["origin"] or "search") == "search"}
        for cid in sorted(scratch.keys() & warm.keys()):
            summary.control_tally.add(cid, warm[cid], scratch[cid])
        self.awaiting_control = {c["candidate_id"] for c in store.controls(status="pending")}
        self.warm_open = {cid: warm[cid] for cid in self.awaiting_control if cid in warm}
        self.scratch_open = {cid: score for cid, score in scratch.items()
                             if by_id.get(cid, {}).get("status") == "pending"}
        # (a resumed 100,000-candidate run need not hold its rows: they are this method's locals)
        self.submitted = len(finished) + len(pending)
        self.next_id = store.next_id()
        self.candidates_in_flight: set[int] = set(self.requeue_ids)   # submitted (or to be re-run), not finished

    def replay_with_promotions(self, finished: list[dict]) -> None:
        """A promoting strategy's replay: candidates (with their rung-0 scores) and finished
        promotions in finish order; promotions left pending are re-issued, their checkpoints held."""
        rungs = self.store.rungs()
        first = {r["candidate_id"]: r["score"] for r in rungs if r["rung"] == 0}
        done = [r for r in rungs if r["rung"] > 0 and r["status"] in ("ok", "failed")]
        events = [(r["finish_seq"], 0, r) for r in finished] + [(r["finish_seq"], 1, r) for r in done]
        for _, is_promotion, r in sorted(events, key=lambda e: (e[0], e[1])):
            if is_promotion:
                self.absorb_promotion(r["candidate_id"], r["rung"], r["score"] if r["status"] == "ok" else None)
            else:
                self.absorb({**r, "score": first.get(r["id"], r["score"])})
        for r in rungs:
            if r["status"] == "pending" and r["rung"] > 0:
                self.strategy.replay_promotion(r["candidate_id"], r["rung"])
                self.retention.hold(r["candidate_id"])
                self.promotion_queue.append(r)
        self.summary.promotions = len(done)
        best = self.store.candidates(status="ok", order="score", limit=1)
        self.summary.best = best[0] if best else None

    def absorb_promotion(self, cid: int, rung: int, score: float | None) -> None:
        """A finished promotion, for the strategy and retention (a kept checkpoint is ranked by its
        new score)."""
        self.strategy.tell_promotion(cid, rung, score)
        if score is not None:
            self.retention.rescore(cid, score)

    def absorb(self, record: dict, live: bool = False) -> None:
        absorb(record, self.tell, self.selector, self.summary, self.seqs, self.checkpoints, self.retention, live)

    def prune(self) -> list[str | None]:
        """Mark the checkpoints nothing can need any more deleted (run/retention.py) and return their
        files, which the caller removes once the transaction holding the marks has committed."""
        cfg, store, retention = self.cfg, self.store, self.retention
        doomed = []
        with store.transaction():
            for cid in retention.deletable([self.strategy, self.selector]):
                doomed.append(store.drop_checkpoint(cid, f"not needed (--keep needed; top {cfg.keep_top}, "
                                                         f"tau reserve {cfg.tau_reserve})",
                                                    self.checkpoints.pop(cid, None)))
                self.seqs.pop(cid, None)
                retention.dropped(cid)
                forget = getattr(self.selector, "forget", None)
                if forget is not None:
                    forget(cid)
        return doomed

    # -- the loop's steps -----------------------------------------------------------------------

    def elapsed(self) -> float:
        return self.elapsed_offset + time.time() - self.t0

    def next_job(self) -> Job | None:
        """The next job to submit: a queued control, a re-queued candidate or the strategy's next
        proposal; None when the run stops (time budget, lost lease, Ctrl-C) or has all it needs."""
        cfg, observer = self.cfg, self.observer
        if cfg.time_budget and self.elapsed() >= cfg.time_budget and not self.stop:
            self.stop = self.summary.stopped_by_time = True
            observer.stopping(f"time budget of {cfg.time_budget:g} s reached; finishing the "
                              f"{self.in_flight} candidates in flight")
        if self.lease.lost and not self.stop:
            self.stop = self.summary.interrupted = True
            observer.stopping(f"this run directory's lease was taken over by {describe_lease(self.lease.lost)}; "
                              f"finishing the {self.in_flight} candidates in flight and stopping")
        if self.stop:
            return None
        if self.control_queue:
            self.in_flight += 1
            return self.with_removals(self.control_queue.pop(0))
        promotion = self.next_promotion() if self.promotes else None
        if promotion is not None:
            self.in_flight += 1
            return self.with_removals(promotion)
        if not (self.requeue or self.submitted < cfg.max_evals):
            return None
        if self.requeue:
            proposal, cid = self.requeue.pop(0), self.requeue_ids.pop(0)
            if proposal.parent_id is not None:   # the job (below) protects its own provider from here on
                self.retention.release(proposal.parent_id)
        else:
            proposal, cid = self.strategy.ask(), self.next_id
            self.next_id += 1
            self.submitted += 1
        job = self.candidate_job(cid, proposal)
        distance = (self.space.distance(self.seqs[job.provider_id], proposal.arch_seq)
                    if job.provider_id is not None else None)
        self.store.add_pending(job, proposal.parent_id, distance)
        self.candidates_in_flight.add(cid)
        if job.provider_id is not None:
            self.retention.hold(job.provider_id)
            if gets_control(cfg.seed, cid, cfg.controls):
                self.store.add_control(cid)
                self.control_queue.append(control_job(job))
                self.awaiting_control.add(cid)
        self.in_flight += 1
        return self.with_removals(job)

    def next_promotion(self) -> Job | None:
        """A promotion left in flight by an interrupted run, else the strategy's next one (its
        checkpoint is held until the promotion finishes)."""
        if self.promotion_queue:
            row = self.promotion_queue.pop(0)
            return self.promotion_job(row["candidate_id"], row["rung"])
        while (promotion := self.strategy.promote()) is not None:
            cid = promotion.candidate_id
            if cid not in self.checkpoints:   # its checkpoint was capped away (--max-checkpoints)
                self.strategy.tell_promotion(cid, promotion.rung, None)
                continue
            self.store.add_promotion(cid, promotion.rung, self.strategy.rung_epochs[promotion.rung])
            self.retention.hold(cid)
            return self.promotion_job(cid, promotion.rung)
        return None

    def promotion_job(self, cid: int, rung: int) -> Job:
        """Candidate `cid` trained on from its own checkpoint to rung `rung`'s epochs."""
        epochs = self.strategy.rung_epochs
        return candidate_job(self.cfg, cid, self.seqs[cid], device=self.job_device, plugin_set=self.parts["plugin_set"],
                             checkpoint=self.checkpoints[cid], seed=candidate_seed(self.cfg.seed, cid),
                             epochs=epochs[rung] - epochs[rung - 1], matcher=self.cfg.matcher,
                             problem_options=self.problem_options, role="promotion", start_epoch=epochs[rung - 1],
                             rung=rung, keep_optimizer=True)

    def candidate_job(self, cid: int, proposal: Proposal) -> Job:
        """A proposal's job, with the provider the selector picks (when the run transfers)."""
        provider = self.selector.select(proposal) if self.parts["transfers"] else None
        if provider is not None and provider not in self.checkpoints:
            raise WtnasError(f"selector chose provider {provider}, which has no checkpoint")
        job = search_job(self.cfg, self.run_dir, cid, proposal.arch_seq, self.job_device, self.parts["plugin_set"],
                         provider_id=provider, problem_options=self.problem_options,
                         provider_checkpoint=self.checkpoints[provider] if provider is not None else None)
        if self.promotes:   # rung 0 of a promoting strategy: its epochs, and the optimizer kept for promotions
            job.epochs, job.rung, job.keep_optimizer = self.strategy.rung_epochs[0], 0, True
        return job

    def with_removals(self, job: Job) -> Job:
        """`job` carrying the checkpoint files of committed deletions (its worker removes them)."""
        if self.committed:
            job.remove_checkpoints, self.committed = self.committed, []
        return job

    @contextmanager
    def batch(self):
        """One poll's results and the jobs refilling its capacity: one store transaction (pump)."""
        kept = True
        try:
            with self.store.transaction():
                yield
        except BaseException as exc:  # rolled back (its marked files stay), unless Ctrl-C: then committed
            kept = isinstance(exc, KeyboardInterrupt)
            raise
        finally:
            if kept:
                self.committed += self.staged
            self.staged = []

    def on_result(self, result) -> None:
        """Store a finished job's result and let everything that follows from it follow."""
        self.in_flight -= 1
        if result.fault == "disk_full":  # not the candidate's fault: it stays pending and reruns on resume
            if not self.disk_full:
                self.observer.stopping(f"disk full: {result.error}; finishing the candidates in flight")
            self.disk_full.append(result.error)
            self.stop = True
            return
        if result.fault == "device_oom":   # the device's doing, not the candidate's: say it as it happens
            self.observer.warning(f"candidate {result.candidate_id} failed: {result.error}")
        if result.role == "control":
            self.on_control(result)
            return
        if result.role == "promotion":
            self.on_promotion(result)
            return
        store, summary = self.store, self.summary
        self.candidates_in_flight.discard(result.candidate_id)
        with store.transaction():   # the result and the deletions it allows: one commit
            record = store.record(result, self.elapsed())
            self.absorb(record, live=True)
            if record["provider_id"] is not None:
                self.retention.release(record["provider_id"])
            self.staged += [path for path in self.prune() if path]
        summary.elapsed_s = record["elapsed_s"]
        self.fail_fast(record, result.fault)
        scratch_score = self.scratch_open.pop(record["id"], None)
        if record["status"] == "ok" and record["n_transferred"]:
            if scratch_score is not None:
                summary.control_tally.add(record["id"], record["score"], scratch_score)
            elif record["id"] in self.awaiting_control:
                self.warm_open[record["id"]] = record["score"]
        notify(self.plugins, "wtnas_candidate_evaluated", self.observer.warning, self.hook_failures,
               run_dir=self.run_dir, record=record)
        self.observer.candidate_done(record, summary)

    @property
    def failing_alike(self) -> bool:
        """Enough of the first candidates failed with one error to call the configuration broken."""
        return len(self.same_failures) >= min(FAIL_FAST, self.cfg.max_evals)

    def fail_fast(self, record: dict, fault: str | None = None) -> None:
        """Stop a run whose first candidates all fail with one error (a configuration that cannot
        work, e.g. --device cuda without a GPU, or models that do not fit the GPU even alone): `run`
        then raises it, instead of failing every candidate the same way and exiting as if it had
        searched. A `fault` (device_oom) is one kind of error whatever sizes its message names."""
        if self.summary.ok or record["status"] != "failed":
            self.same_failures = []
            return
        line = record["error"].splitlines()[0] if record["error"] else ""
        kind = fault or line
        if self.same_failures and kind != self.failure_kind:
            self.same_failures = []   # failures of different kinds: the candidates', not the configuration's
            return
        self.failure_kind = kind
        self.same_failures.append(line)
        if self.failing_alike and not self.stop:
            self.stop = True
            self.observer.stopping(f"the first {len(self.same_failures)} candidates all failed with: "
                                   f"{self.same_failures[0]}")

    def on_promotion(self, result) -> None:
        """Store a finished promotion (the candidate's row takes the new rung's score) and tell the
        strategy; its checkpoint is released (and ranked by the new score)."""
        ok = result.status == "ok"
        with self.store.transaction():
            record = self.store.record_promotion(result, self.elapsed())
            self.absorb_promotion(result.candidate_id, result.rung, result.score if ok else None)
            self.retention.release(result.candidate_id)
            self.staged += [path for path in self.prune() if path]
        summary = self.summary
        summary.promotions += 1
        summary.elapsed_s = max(summary.elapsed_s, record.get("elapsed_s") or 0.0)
        if ok and (summary.best is None or record["score"] > summary.best["score"]):
            summary.best = record
        done = getattr(self.observer, "promotion_done", None)
        if done is not None:
            done(record, summary)

    def on_control(self, result) -> None:
        """A control's from-scratch score, paired with its candidate's when both have finished."""
        self.store.record_control(result)
        cid = result.candidate_id
        self.awaiting_control.discard(cid)
        warm_score = self.warm_open.pop(cid, None)
        if result.status == "ok":
            if warm_score is not None:
                self.summary.control_tally.add(cid, warm_score, result.score)
            elif cid in self.candidates_in_flight:    # its candidate has yet to finish
                self.scratch_open[cid] = result.score
        self.observer.control_done(self.summary)

    def first_interrupt(self) -> None:
        self.stop = self.summary.interrupted = True
        self.observer.stopping(f"Ctrl-C: finishing the {self.in_flight} candidates in flight "
                               f"(Ctrl-C again to stop at once)")

    # -- the whole search -----------------------------------------------------------------------

    def run(self) -> RunSummary:
        """Pump jobs until the run is done or stopped; store the summary, whatever happened."""
        summary, executor, observer = self.summary, self.executor, self.observer
        self.t0 = time.time()
        try:
            with GracefulInterrupt(self.first_interrupt):
                executor.start()
                observer.started(self.cfg, self.run_dir, self.cfg.max_evals, summary.done, executor.capacity)
                pump(executor, self.next_job, self.on_result, batch=self.batch)
        except KeyboardInterrupt:
            summary.interrupted = True
            observer.stopping("stopped at once; candidates in flight will be re-run on --resume")
        except sqlite3.OperationalError as exc:
            if not is_disk_full(exc):
                raise
            self.disk_full.append(f"run store {self.run_dir / STORE_NAME}: {exc}")
        finally:
            executor.shutdown()
            summary.workers_replaced = optional(executor, "replaced")
            self.close()
        if self.same_failures and self.failing_alike:
            raise RunFailedError(f"the first {len(self.same_failures)} candidates all failed with the same error, so "
                                 f"the run stopped: {self.same_failures[0]} (fix that, then run again with "
                                 f"--overwrite, or --resume {self.run_dir})")
        if self.disk_full:
            raise StorageFullError(f"disk full ({self.disk_full[0]}); the run stopped with {summary.done} of "
                                   f"{summary.total} candidates stored: free space, then run "
                                   f"`wtnas run --resume {self.run_dir}`")
        notify(self.plugins, "wtnas_run_finished", observer.warning, self.hook_failures, run_dir=self.run_dir,
               summary={"ok": summary.ok, "failed": summary.failed, "with_transfer": summary.with_transfer,
                        "best_score": summary.best["score"] if summary.best else None,
                        "elapsed_s": summary.elapsed_s, "interrupted": summary.interrupted,
                        "controls": len(summary.control_pairs), "inheritance_lift": summary.controls.lift,
                        "warm_scratch_tau": summary.controls.tau})
        return summary

    def close(self) -> None:
        """Write what readers of the run need (top candidates, results.csv, the tau reservoir, the
        last summary), close the store and remove the files of committed deletions."""
        summary, store = self.summary, self.store
        try:
            summary.top = store.candidates(status="ok", order="score", limit=10)
            store.export_csv(self.run_dir / "results.csv")
            store.set_meta("tau_reservoir", self.retention.reservoir)   # wtnas topk --tau-sample draws from it
            store.set_meta("last_summary", {"ok": summary.ok, "failed": summary.failed,
                                            "interrupted": summary.interrupted, "elapsed_s": summary.elapsed_s})
        except (OSError, sqlite3.Error) as exc:
            if not is_disk_full(exc):
                raise
            self.disk_full.append(f"{self.run_dir}: {exc}")
        finally:
            store.close()
            _unlink(self.committed)


def _unlink(paths: Sequence[str | None]) -> None:
    for path in paths:
        if path:
            Path(path).unlink(missing_ok=True)


def absorb(record: dict, tell: Tell, selector, summary: RunSummary, seqs: dict, checkpoints: dict,
           retention: Retention, live: bool = False) -> None:
    """Feed one finished candidate to the strategy, the selector, retention and the running summary.
    A `live` result says whether its worker wrote the checkpoint; a replayed one's file is looked for."""
    cid, seq = record["id"], tuple(record["arch_seq"])
    ok = record["status"] == "ok"
    score = record["score"] if ok else None
    has_ckpt = bool(ok and record.get("checkpoint") and (
        record.get("checkpoint_bytes") is not None if live else Path(record["checkpoint"]).is_file()))
    tell(cid, seq, score, record.get("parent_id"))
    selector.observe(cid, seq, score, has_ckpt)
    retention.observe(cid, score, has_ckpt)
    if ok:
        summary.ok += 1
        if has_ckpt:   # (both maps shrink as retention deletes checkpoints: memory stays flat)
            seqs[cid] = seq
            checkpoints[cid] = record["checkpoint"]
        if record.get("n_transferred"):
            summary.with_transfer += 1
        if summary.best is None or score > summary.best["score"]:
            summary.best = record
    else:
        summary.failed += 1
