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
from typing import Any, Protocol, Sequence

from .config import RunConfig, load_config_file, resume_config, to_toml
from .controls import ControlStats, ControlTally, control_job, gets_control
from .definition import definition_changes, record_definition
from .errors import ConfigError, RunDirError, StorageFullError, WtnasError
from .evaluator import is_disk_full
from .interrupts import GracefulInterrupt
from .lease import RunLease, describe as describe_lease
from .executor import optional, pump, serve_if_worker
from .job import Job
from .plugins import Plugins, default_plugins, notify
from .options import settle
from .scheme import check_scheme, is_baseline, run_selector
from .rundir import CONFIG_NAME, STORE_NAME, checkpoint_path, default_run_dir, is_run_dir, prepare_run_dir
from .retention import Retention
from .store import RunStore
from .strategy import Proposal, Tell, teller


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


class SearchObserver(Protocol):
    def started(self, cfg: RunConfig, run_dir: Path, total: int, done: int, workers: int) -> None: ...

    def candidate_done(self, record: dict, summary: RunSummary) -> None: ...

    def stopping(self, reason: str) -> None: ...

    def warning(self, message: str) -> None: ...

    def control_done(self, summary: RunSummary) -> None: ...


class _Silent:
    def started(self, *a, **k): pass

    def candidate_done(self, *a, **k): pass

    def stopping(self, *a, **k): pass

    def warning(self, *a, **k): pass

    def control_done(self, *a, **k): pass


def candidate_seed(run_seed: int, candidate_id: int) -> int:
    return (run_seed * 1_000_003 + candidate_id * 7_919 + 17) % (2 ** 31 - 1)


def resolve_run(cfg: RunConfig, plugins: Plugins) -> dict[str, Any]:
    """Check every component the run needs, and their options, before anything is written;
    return them. `cfg.options` is settled: every option of the run's components, by component."""
    reg = plugins.registry
    settle(cfg, reg)
    problem = reg.create("problem", cfg.problem, **cfg.problem_options())
    backend = reg.get("backend", cfg.backend)
    if not backend.available:
        backend.create()  # raises the one-line 'install it with' error
    matcher = reg.get("matcher", cfg.matcher)
    transfers = not is_baseline(reg, "matcher", cfg.matcher)
    selector_name = run_selector(cfg, reg)
    for kind, name, args in (("strategy", cfg.strategy, (problem.space,)), ("selector", selector_name, (problem.space,))):
        try:   # cheap objects: made once here so that options they refuse stop the run before it starts
            reg.create(kind, name, *args, **({"seed": cfg.seed} if kind == "strategy" else {}),
                       **cfg.options_of(kind, name))
        except ValueError as exc:
            listed = ", ".join(o.name for o in reg.get(kind, name).options) or "none"
            raise ConfigError(f"{kind} {name!r}: {exc} (its options: {listed}; set them with -o "
                              f"{name}.OPTION=VALUE)") from None
    warnings = check_scheme(cfg, reg, selector_name)
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


def create_executor(cfg: RunConfig, plugins: Plugins, workers: int | None = None) -> tuple[Any, str]:
    """The run's executor (the backend's max_jobs_per_worker trait filled in) and the device its
    jobs train on: workers that were each given one GPU see it as 'cuda'."""
    options = cfg.executor_options()
    options["max_jobs_per_worker"] = (cfg.max_jobs_per_worker
                                      or plugins.registry.get("backend", cfg.backend).traits.get("max_jobs_per_worker"))
    if workers:
        options["workers"] = workers
    executor = plugins.registry.create("executor", cfg.executor, **options, **cfg.options_of("executor", cfg.executor))
    return executor, "cuda" if options["devices"] else cfg.device


def run_search(cfg: RunConfig | None = None, *, plugins: Plugins | None = None,
               observer: SearchObserver | None = None, resume: str | Path | None = None,
               overwrite: bool = False, overrides: dict[str, Any] | None = None,
               force_change: bool = False) -> RunSummary | None:
    """Run (or resume) a search; return its summary (None in a process that only served as a
    worker, e.g. an MPI rank > 0). `overrides` apply on resume: budget-like settings freely, the
    settings that define candidates only with `force_change` (config.resume_config). The run
    directory is leased for the whole search (lease.py)."""
    plugins = plugins or default_plugins()
    observer = observer or _Silent()
    changes: dict[str, list] = {}
    if resume is not None:
        run_dir = Path(resume)
        if not is_run_dir(run_dir):
            raise RunDirError(f"{run_dir} holds no wtnas run (no {STORE_NAME}); drop --resume to start a new run there")
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
        return _search(cfg, run_dir, parts, executor, job_device, plugins, observer, lease, resumed=resume is not None,
                       overwrite=overwrite, changes=changes, force_change=force_change)
    finally:
        lease.release()


def _search(cfg: RunConfig, run_dir: Path, parts: dict, executor, job_device: str, plugins: Plugins,
            observer: SearchObserver, lease: RunLease, *, resumed: bool, overwrite: bool,
            changes: dict[str, list], force_change: bool = False) -> RunSummary:
    """The search itself, holding the run directory's lease."""
    problem_options = cfg.problem_options()
    prepare_run_dir(run_dir, resume=resumed, overwrite=overwrite)
    cfg.run_dir = str(run_dir)
    problem = parts["problem"]
    space = problem.space
    store = RunStore(run_dir / STORE_NAME)
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
        segments.append({"from_id": store.next_id(), "at": time.time(), "changes": changes, "scheme": parts["scheme"]})
        store.set_meta("segments", segments)
        observer.warning(f"forced change from candidate {store.next_id()} on: " + ", ".join(
            f"{k} {old} -> {new}" for k, (old, new) in changes.items()) + " (recorded as a new segment)")
    for message in parts["warnings"]:
        observer.warning(message)
    reg = plugins.registry

    if resumed:   # checkpoints whose deletion a crash interrupted (marked deleted, file still there)
        for cid in store.deleted_checkpoint_ids():
            checkpoint_path(run_dir, cid).unlink(missing_ok=True)
    retention = Retention(cfg.keep, cfg.keep_top, cfg.tau_reserve, cfg.seed, cfg.max_checkpoints)
    finished = [r for r in store.candidates(order="finish_seq") if r["status"] in ("ok", "failed")]
    pending = store.candidates(status="pending")
    strategy = reg.create("strategy", cfg.strategy, space, seed=cfg.seed + 104_729 * len(finished),
                          **cfg.options_of("strategy", cfg.strategy))
    tell = teller(strategy)
    selector = reg.create("selector", parts["selector_name"], space,
                          **cfg.options_of("selector", parts["selector_name"]))
    summary = RunSummary(run_dir, total=cfg.max_evals)
    seqs: dict[int, tuple] = {}
    checkpoints: dict[int, str] = {}
    for r in finished:
        _absorb(r, tell, selector, summary, seqs, checkpoints, retention)
    for r in pending:   # a re-queued candidate keeps its parent's checkpoint until its job takes over
        if r["parent_id"] is not None:
            retention.hold(r["parent_id"])

    def prune() -> list[str | None]:
        """Mark the checkpoints nothing can need any more deleted (retention.py) and return their
        files, which the caller removes once the transaction holding the marks has committed."""
        doomed = []
        with store.transaction():
            for cid in retention.deletable([strategy, selector]):
                doomed.append(store.drop_checkpoint(cid, f"not needed (--keep needed; top {cfg.keep_top}, "
                                                         f"tau reserve {cfg.tau_reserve})", checkpoints.pop(cid, None)))
                seqs.pop(cid, None)
                retention.dropped(cid)
                forget = getattr(selector, "forget", None)
                if forget is not None:
                    forget(cid)
        return doomed

    _unlink(prune())
    elapsed_offset = max((r["elapsed_s"] or 0.0 for r in finished), default=0.0)
    summary.elapsed_s = elapsed_offset

    requeue = [Proposal(tuple(r["arch_seq"]), r["parent_id"]) for r in pending]
    requeue_ids = [r["id"] for r in pending]
    by_id = {r["id"]: r for r in store.candidates()}
    # controls left pending by an interrupted run are re-queued (their candidate's job, from scratch)
    control_queue = [scratch_twin(cfg, run_dir, c["candidate_id"], by_id[c["candidate_id"]]["arch_seq"], job_device,
                                  parts["plugin_set"])
                     for c in store.controls(status="pending") if c["candidate_id"] in by_id]
    # (warm, scratch) pairs: a candidate and its control finish in either order, so the first half
    # waits for the second; only open halves are held (memory stays flat over long runs)
    warm = {r["id"]: r["score"] for r in finished if r["status"] == "ok" and r["n_transferred"]}
    scratch = {c["candidate_id"]: c["score"] for c in store.controls(status="ok") if (c["origin"] or "search") == "search"}
    for cid in sorted(scratch.keys() & warm.keys()):
        summary.control_tally.add(cid, warm[cid], scratch[cid])
    awaiting_control = {c["candidate_id"] for c in store.controls(status="pending")}
    warm_open = {cid: warm[cid] for cid in awaiting_control if cid in warm}
    scratch_open = {cid: score for cid, score in scratch.items() if by_id.get(cid, {}).get("status") == "pending"}
    submitted = len(finished) + len(pending)
    del warm, scratch, by_id, finished    # a resumed 100,000-candidate run need not hold its rows
    next_id = store.next_id()
    candidates_in_flight: set[int] = set(requeue_ids)   # submitted (or to be re-run) and not finished
    t0 = time.time()
    state = {"stop": False, "in_flight": 0}

    def next_job() -> Job | None:
        nonlocal next_id, submitted
        elapsed = elapsed_offset + time.time() - t0
        if cfg.time_budget and elapsed >= cfg.time_budget and not state["stop"]:
            state["stop"] = summary.stopped_by_time = True
            observer.stopping(f"time budget of {cfg.time_budget:g} s reached; finishing the "
                              f"{state['in_flight']} candidates in flight")
        if lease.lost and not state["stop"]:
            state["stop"] = summary.interrupted = True
            observer.stopping(f"this run directory's lease was taken over by {describe_lease(lease.lost)}; "
                              f"finishing the {state['in_flight']} candidates in flight and stopping")
        if state["stop"]:
            return None
        if control_queue:
            state["in_flight"] += 1
            return with_removals(control_queue.pop(0))
        if not (requeue or submitted < cfg.max_evals):
            return None
        if requeue:
            proposal, cid = requeue.pop(0), requeue_ids.pop(0)
            if proposal.parent_id is not None:   # the job (below) protects its own provider from here on
                retention.release(proposal.parent_id)
        else:
            proposal, cid = strategy.ask(), next_id
            next_id += 1
            submitted += 1
        job = _make_job(cfg, run_dir, cid, proposal, selector if parts["transfers"] else None, checkpoints,
                        job_device, problem_options, parts["plugin_set"])
        distance = space.distance(seqs[job.provider_id], proposal.arch_seq) if job.provider_id is not None else None
        store.add_pending(job, proposal.parent_id, distance)
        candidates_in_flight.add(cid)
        if job.provider_id is not None:
            retention.hold(job.provider_id)
        if job.provider_id is not None and gets_control(cfg.seed, cid, cfg.controls):
            store.add_control(cid)
            control_queue.append(control_job(job))
            awaiting_control.add(cid)
        state["in_flight"] += 1
        return with_removals(job)

    def with_removals(job: Job) -> Job:
        if removals["committed"]:
            job.remove_checkpoints, removals["committed"] = removals["committed"], []
        return job

    disk_full: list[str] = []
    hook_failures: set[tuple[str, str]] = set()
    # checkpoint files marked deleted in the batch under way (staged) and in committed batches: the
    # next job's worker removes the committed ones before it trains (Job.remove_checkpoints), what
    # is left when the run ends is removed here; a rolled-back mark never loses its file
    removals: dict[str, list[str]] = {"staged": [], "committed": []}

    @contextmanager
    def batch():
        """One poll's results and the jobs refilling its capacity: one store transaction (pump)."""
        kept = True
        try:
            with store.transaction():
                yield
        except BaseException as exc:  # rolled back (its marked files stay), unless Ctrl-C: then committed
            kept = isinstance(exc, KeyboardInterrupt)
            raise
        finally:
            if kept:
                removals["committed"] += removals["staged"]
            removals["staged"] = []

    def on_result(result) -> None:
        state["in_flight"] -= 1
        if result.fault == "disk_full":  # not the candidate's fault: it stays pending and reruns on resume
            if not disk_full:
                observer.stopping(f"disk full: {result.error}; finishing the candidates in flight")
            disk_full.append(result.error)
            state["stop"] = True
            return
        if result.role == "control":
            store.record_control(result)
            cid = result.candidate_id
            awaiting_control.discard(cid)
            warm_score = warm_open.pop(cid, None)
            if result.status == "ok":
                if warm_score is not None:
                    summary.control_tally.add(cid, warm_score, result.score)
                elif cid in candidates_in_flight:    # its candidate has yet to finish
                    scratch_open[cid] = result.score
            observer.control_done(summary)
            return
        candidates_in_flight.discard(result.candidate_id)
        with store.transaction():   # the result and the deletions it allows: one commit
            record = store.record(result, elapsed_offset + time.time() - t0)
            _absorb(record, tell, selector, summary, seqs, checkpoints, retention, live=True)
            if record["provider_id"] is not None:
                retention.release(record["provider_id"])
            removals["staged"] += [path for path in prune() if path]
        summary.elapsed_s = record["elapsed_s"]
        scratch_score = scratch_open.pop(record["id"], None)
        if record["status"] == "ok" and record["n_transferred"]:
            if scratch_score is not None:
                summary.control_tally.add(record["id"], record["score"], scratch_score)
            elif record["id"] in awaiting_control:
                warm_open[record["id"]] = record["score"]
        notify(plugins, "wtnas_candidate_evaluated", observer.warning, hook_failures, run_dir=run_dir, record=record)
        observer.candidate_done(record, summary)

    def first_interrupt() -> None:
        state["stop"] = summary.interrupted = True
        observer.stopping(f"Ctrl-C: finishing the {state['in_flight']} candidates in flight "
                          f"(Ctrl-C again to stop at once)")

    try:
        with GracefulInterrupt(first_interrupt):
            executor.start()
            observer.started(cfg, run_dir, cfg.max_evals, summary.done, executor.capacity)
            pump(executor, next_job, on_result, batch=batch)
    except KeyboardInterrupt:
        summary.interrupted = True
        observer.stopping("stopped at once; candidates in flight will be re-run on --resume")
    except sqlite3.OperationalError as exc:
        if not is_disk_full(exc):
            raise
        disk_full.append(f"run store {run_dir / STORE_NAME}: {exc}")
    finally:
        executor.shutdown()
        summary.workers_replaced = optional(executor, "replaced")
        try:
            summary.top = store.candidates(status="ok", order="score", limit=10)
            store.export_csv(run_dir / "results.csv")
            store.set_meta("tau_reservoir", retention.reservoir)   # wtnas topk --tau-sample draws from it
            store.set_meta("last_summary", {"ok": summary.ok, "failed": summary.failed,
                                            "interrupted": summary.interrupted, "elapsed_s": summary.elapsed_s})
        except (OSError, sqlite3.Error) as exc:
            if not is_disk_full(exc):
                raise
            disk_full.append(f"{run_dir}: {exc}")
        finally:
            store.close()
            _unlink(removals["committed"])
    if disk_full:
        raise StorageFullError(f"disk full ({disk_full[0]}); the run stopped with {summary.done} of "
                               f"{summary.total} candidates stored: free space, then run "
                               f"`wtnas run --resume {run_dir}`")
    notify(plugins, "wtnas_run_finished", observer.warning, hook_failures, run_dir=run_dir, summary={
        "ok": summary.ok, "failed": summary.failed, "with_transfer": summary.with_transfer,
        "best_score": summary.best["score"] if summary.best else None, "elapsed_s": summary.elapsed_s,
        "interrupted": summary.interrupted, "controls": len(summary.control_pairs),
        "inheritance_lift": summary.controls.lift, "warm_scratch_tau": summary.controls.tau})
    return summary


def _make_job(cfg: RunConfig, run_dir: Path, cid: int, proposal: Proposal, selector, checkpoints: dict,
              device: str, problem_options: dict, plugin_set: dict | None) -> Job:
    provider = selector.select(proposal) if selector is not None else None
    if provider is not None and provider not in checkpoints:
        raise WtnasError(f"selector chose provider {provider}, which has no checkpoint")
    return Job(candidate_id=cid, arch_seq=list(proposal.arch_seq), problem=cfg.problem, backend=cfg.backend,
               matcher=cfg.matcher, epochs=cfg.epochs, seed=candidate_seed(cfg.seed, cid),
               checkpoint_path=str(checkpoint_path(run_dir, cid)), provider_id=provider,
               provider_checkpoint=checkpoints.get(provider) if provider is not None else None,
               device=device, problem_options=problem_options, plugins=plugin_set,
               backend_options=cfg.options_of("backend", cfg.backend), matcher_options=cfg.options_of("matcher", cfg.matcher))


def scratch_twin(cfg: RunConfig, run_dir: Path, cid: int, arch_seq, device: str, plugin_set: dict | None) -> Job:
    """A candidate's search job from random weights (its control, or a top-K check): same seed
    and budget, no provider, no checkpoint."""
    job = _make_job(cfg, run_dir, cid, Proposal(tuple(arch_seq)), None, {}, device, cfg.problem_options(),
                    plugin_set)
    return control_job(job)


def _unlink(paths: Sequence[str | None]) -> None:
    for path in paths:
        if path:
            Path(path).unlink(missing_ok=True)


def _absorb(record: dict, tell: Tell, selector, summary: RunSummary, seqs: dict, checkpoints: dict,
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
