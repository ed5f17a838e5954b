"""`wtnas topk`: the second stage of NAS — fully train the K best candidates of a run.

Each model warm-starts from its own search checkpoint (all tensors, through the same transfer
path as the search) or from scratch, and trains with Keras-style early stopping. Results go to
the run store's `trained` table, keyed by candidate, mode and training settings, so a rerun
trains only what is missing. Jobs run through the run's executor, one model per worker.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import ConfigError, StorageFullError
from ..model.problem import constant_score
from ..plugins.manager import Plugins, default_plugins, notify
from ..run.config import RunConfig
from ..run.job import Job
from ..run.lease import RunLease
from ..run.rundir import STORE_NAME, checkpoint_path
from ..run.store import RunStore, latest_settings_key, selection_key, topk_checks_key, topk_wall_key
from ..search.executor_protocol import serve_if_worker
from ..search.jobs import candidate_job, candidate_seed, create_executor, scratch_twin
from ..search.pump import pump
from ..util.interrupts import GracefulInterrupt
from ..util.silent import Silent
from ..util.stats import kept_epoch
from ..weights.matching import SAME_MODEL
from .candidate import run_config, run_problem
from .formatting import TOP_RUNG_NOTE
from .lineage import count_lineages, founders_and_depths
from .selection import (
    CHECK_POOL,
    MIN_REFERENCE,
    RANKS,
    VERIFY_MODES,
    families,
    known_checks,
    rerank_by_check,
    scratch_reference,
    select,
    stored_checks,
    verify_threshold,
)

STOP_REFERENCES = ("start", "first-epoch")
AFTER_RULES = " (after the diversity rule and verification)"


@dataclass
class TopKConfig:
    k: int = 10
    before: float | None = None
    from_scratch: bool = False
    early_stop: bool = True
    patience: int = 2
    min_delta: float | None = None  # None: the problem's threshold
    max_epochs: int = 20
    tau_sample: int = 0
    workers: int | None = None
    seed: int = 0
    # from-scratch checks (selection.py): "known" uses the checks the run already has (controls,
    # candidates that inherited nothing) at no cost; "all" (or True) checks every top-K candidate;
    # "off" (or False) none. "all" costs 21-58% of top-K time (docs/benchmarks.md): not the default.
    verify: str | bool = "known"
    min_distance: int = 2    # no two of the top-K closer than this many changed nodes (1: no rule)
    max_per_lineage: int = 0  # at most this many of the top-K share a weight lineage (0: no cap; opt-in)
    min_lineages: int = 0     # at least this many weight lineages in the top-K while the run has them (opt-in)
    rank: str = "score"      # "check": the best from-scratch checks among 2K candidates (opt-in)
    # epochs of a from-scratch check (--verify all, --rank check); None: the search's own budget,
    # whose controls count as checks. Longer checks are stored apart (RunStore.checks)
    check_epochs: int | None = None
    # early stopping's reference: "first-epoch" = Keras' default, the paper's (the first epoch
    # sets it, so every model trains >= patience + 1 and hands back its best trained epoch);
    # "start" = each model's score before top-K training (a warm start must beat its checkpoint;
    # one that never does keeps it, kept epoch 0). Not the default: a top-K's start scores are
    # the maxima it was selected by, so they are optimistic and training rarely "beats" them on
    # validation while it does improve the held-out test objective (docs/decisions.md)
    stop_reference: str = "first-epoch"

    def validate(self) -> "TopKConfig":
        for ok, message in [(self.k >= 1, "--k must be at least 1"),
                            (self.patience >= 1, "--patience must be at least 1"),
                            (self.max_epochs >= 1, "--max-epochs must be at least 1"),
                            (self.tau_sample >= 0, "--tau-sample must be 0 or more"),
                            (self.min_delta is None or self.min_delta >= 0, "--min-delta must be 0 or more"),
                            (self.min_distance >= 1, "--min-distance must be at least 1 (1 = no diversity rule)"),
                            (self.max_per_lineage >= 0, "--max-per-lineage must be 0 (no rule) or more"),
                            (0 <= self.min_lineages <= self.k, "--min-lineages must be between 0 (no rule) and --k"),
                            (self.rank in RANKS, f"--rank must be one of {', '.join(RANKS)}"),
                            (self.verify_mode in VERIFY_MODES, f"--verify must be one of {', '.join(VERIFY_MODES)}"),
                            (self.before is None or self.before > 0, "--before must be positive (seconds)"),
                            (self.check_epochs is None or self.check_epochs >= 1, "--check-epochs must be at least 1"),
                            (self.stop_reference in STOP_REFERENCES,
                             f"--stop-reference must be one of {', '.join(STOP_REFERENCES)}"),
                            (self.check_epochs is None or self.verify_mode == "all" or self.rank == "check",
                             "--check-epochs runs new checks: use it with --verify all or --rank check")]:
            if not ok:
                raise ConfigError(message)
        return self

    @property
    def verify_mode(self) -> str:
        return {True: "all", False: "off"}[self.verify] if isinstance(self.verify, bool) else self.verify

    @property
    def mode(self) -> str:
        return "scratch" if self.from_scratch else "warm"

    @property
    def reference(self) -> str:
        """The stop reference training uses: a from-scratch start is random weights, not a model
        to keep or measure against, so from-scratch top-K training always measures against its
        first epoch (with "start", a model that did not beat its random initialization within
        `patience` epochs was stopped and handed back its random weights)."""
        return "first-epoch" if self.from_scratch else self.stop_reference


def settings_key(cfg: TopKConfig, min_delta: float) -> str:
    """Models trained under other settings are other rows (and other checkpoint files). Keras'
    reference (the first epoch) adds nothing: rows trained before `stop_reference` existed keep
    their key."""
    key = f"patience={cfg.patience},min_delta={min_delta:g},max_epochs={cfg.max_epochs},early_stop={int(cfg.early_stop)}"
    return key if cfg.reference == "first-epoch" else f"{key},reference={cfg.reference}"


@dataclass
class TopKSummary:
    run_dir: Path
    mode: str
    settings: str
    selected: int = 0
    available: int = 0
    trained_now: int = 0
    reused: int = 0
    failed: int = 0
    interrupted: bool = False
    rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    choice: dict = field(default_factory=dict)   # how the top-K was chosen (verification, diversity)


def select_candidates(rows: list[dict], k: int, before: float | None) -> list[dict]:
    """The K best finished candidates by estimated score (ties: lower id), optionally only those
    finished within `before` seconds of the search's start."""
    ok = [r for r in rows if r["status"] == "ok" and r["score"] is not None
          and (before is None or (r["elapsed_s"] or 0.0) <= before)]
    ok.sort(key=lambda r: (-r["score"], r["id"]))
    return ok[:k]


def run_topk(run_dir: str | Path, cfg: TopKConfig | None = None, *, plugins: Plugins | None = None,
             observer=None) -> TopKSummary | None:
    cfg = (cfg or TopKConfig()).validate()
    run_dir = Path(run_dir)
    plugins = plugins or default_plugins()
    run_cfg = run_config(run_dir, plugins)
    observer = observer or Silent()
    problem = run_problem(run_cfg, plugins)
    plugin_set = plugins.worker_spec([("problem", run_cfg.problem), ("backend", run_cfg.backend)])
    min_delta = problem.min_delta if cfg.min_delta is None else cfg.min_delta
    settings = settings_key(cfg, min_delta)
    tag = hashlib.sha1(settings.encode()).hexdigest()[:8]
    summary = TopKSummary(run_dir, cfg.mode, settings)

    executor, device = create_executor(run_cfg, plugins, workers=cfg.workers)
    if serve_if_worker(executor):
        return None
    lease = RunLease(run_dir, "wtnas topk")   # a search or another topk writing here refuses this one
    try:
        lease.acquire()
    except BaseException:
        executor.shutdown()
        raise
    try:
        _train_top(run_dir, cfg, run_cfg, problem, settings, tag, summary, executor, device, observer, plugin_set)
    finally:
        lease.release()
    notify(plugins, "wtnas_topk_finished", observer.note, set(), run_dir=run_dir, models=summary.rows, summary={
        "mode": summary.mode, "settings": summary.settings, "k": cfg.k, "selected": summary.selected,
        "trained_now": summary.trained_now, "reused": summary.reused, "failed": summary.failed,
        "interrupted": summary.interrupted})
    return summary


def _train_top(run_dir: Path, cfg: TopKConfig, run_cfg: RunConfig, problem, settings: str, tag: str,
               summary: TopKSummary, executor, device: str, observer, plugin_set: dict | None) -> TopKSummary:
    """Choose and train the top-K, holding the run directory's lease."""
    min_delta = problem.min_delta if cfg.min_delta is None else cfg.min_delta
    store = RunStore(run_dir / STORE_NAME)
    t0 = time.time()
    started: list[bool] = []

    def start() -> None:
        if not started:
            executor.start()
            started.append(True)
    try:
        rows = store.candidates()
        finished = [r for r in rows if r["status"] == "ok"]
        summary.available = len([r for r in finished if cfg.before is None or (r["elapsed_s"] or 0) <= cfg.before])
        top, choice = _choose_top(store, rows, cfg, run_cfg, problem, run_dir, device, executor, start,
                                  observer, summary, plugin_set)
        checks = topk_checks_key(cfg.mode, settings)
        store.set_meta(checks, store.get_meta(checks, 0.0) + time.time() - t0)
        if not cfg.from_scratch:
            gone = [r["id"] for r in top if r["checkpoint_deleted"]]
            if gone:
                summary.notes.append(f"{len(gone)} of the top-K have no checkpoint (deleted by --keep needed: "
                                     f"outside the search's --keep-top); they train from scratch: "
                                     f"{', '.join(map(str, gone))}")
        if len(top) < cfg.k:
            summary.notes.append(f"only {len(top)} eligible candidates{' within --before' if cfg.before else ''}"
                                 f"{AFTER_RULES if choice['similar'] or choice['flagged'] else ''}; "
                                 f"training {len(top)} instead of {cfg.k}")
        tau = []
        if cfg.tau_sample:
            pool = sorted(finished, key=lambda r: r["id"])
            reserve = store.get_meta("tau_reservoir")
            if reserve is not None and any(r["checkpoint_deleted"] for r in rows):   # --keep needed deleted some
                pool = [r for r in pool if r["id"] in set(reserve)]
                summary.notes.append(f"tau sample drawn from the run's reserved uniform sample of {len(pool)} "
                                     f"candidates (--keep needed kept their checkpoints)")
            n = min(cfg.tau_sample, len(pool))
            if n < cfg.tau_sample:
                summary.notes.append(f"--tau-sample {cfg.tau_sample} asked, {n} finished candidates exist")
            picks: np.ndarray | list[int] = (np.random.default_rng(cfg.seed).choice(len(pool), size=n, replace=False)
                                             if n else [])
            tau = [pool[int(i)] for i in sorted(picks)]
        top_ids = {r["id"] for r in top}
        tau_ids = {r["id"] for r in tau}
        chosen = {r["id"]: r for r in top + tau}
        for cid, r in chosen.items():
            store.select_for_training(cid, cfg.mode, settings, r["score"], cid in top_ids, cid in tau_ids)
        # the report describes this call's selection, not the union of every call's
        store.set_meta(selection_key(cfg.mode, settings), {"k": cfg.k, "before": cfg.before, "topk": sorted(top_ids),
                                                           "tau": sorted(tau_ids), **choice})
        store.set_meta(latest_settings_key(cfg.mode), settings)
        summary.selected = len(chosen)
        summary.choice = choice
        done = {r["candidate_id"] for r in store.trained(cfg.mode, settings) if r["status"] == "ok"}
        todo = [chosen[cid] for cid in sorted(chosen, key=lambda c: (-chosen[c]["score"], c)) if cid not in done]
        summary.reused = len(chosen) - len(todo)
        for note in summary.notes:
            observer.note(note)

        top_rung = _top_rung(store, cfg)
        jobs = [_make_job(run_dir, run_cfg, r, cfg, min_delta, tag, device, plugin_set, top_rung) for r in todo]
        scored_only = {job.candidate_id: job.start_epoch for job in jobs if job.epochs == 0}
        if jobs:
            queue = list(jobs)
            disk_full: list[str] = []

            def on_result(result) -> None:
                if result.fault == "disk_full":  # stays pending; rerun trains it
                    disk_full.append(result.error)
                    queue.clear()
                    return
                if result.candidate_id in scored_only:
                    result.events.insert(0, f"{TOP_RUNG_NOTE} ({scored_only[result.candidate_id]} epochs): scored "
                                            f"on validation and test, not trained again")
                if result.fault == "device_oom":
                    observer.note(f"#{result.candidate_id} failed: {result.error}")
                row = store.record_trained(result, cfg.mode, settings)
                summary.trained_now += 1
                summary.failed += result.status != "ok"
                observer.model_done(row)

            def first_interrupt() -> None:
                summary.interrupted = True
                queue.clear()
                observer.note("Ctrl-C: finishing the models in training (Ctrl-C again to stop at once)")

            try:
                with GracefulInterrupt(first_interrupt):
                    start()
                    observer.started(len(chosen), summary.reused, executor.capacity)
                    pump(executor, lambda: queue.pop(0) if queue else None, on_result)
            except KeyboardInterrupt:
                summary.interrupted = True
            if disk_full:
                raise StorageFullError(f"disk full ({disk_full[0]}): free space, then run the same `wtnas topk` "
                                       f"again; models already trained are kept")
        else:
            observer.started(len(chosen), summary.reused, 0)
        summary.rows = [r for r in store.trained(cfg.mode, settings) if r["candidate_id"] in chosen]
        summary.notes += outcome_notes(summary.rows, cfg)
        wall = topk_wall_key(cfg.mode, settings)   # checks and training, this call added to earlier ones
        store.set_meta(wall, store.get_meta(wall, 0.0) + time.time() - t0)
    finally:
        executor.shutdown()  # also when nothing ran: MPI ranks are waiting to be released
        store.close()
    return summary


def _choose_top(store: RunStore, rows: list[dict], cfg: TopKConfig, run_cfg: RunConfig, problem, run_dir: Path,
                device: str, executor, start, observer, summary: TopKSummary,
                plugin_set: dict | None) -> tuple[list[dict], dict]:
    """The top-K after the diversity rule and verification (selection.py); runs the missing
    from-scratch checks on the executor, in batches, and stores them with the controls (at the
    search's budget) or apart (longer checks)."""
    space = problem.space
    ranked = select_candidates(rows, len(rows), cfg.before)
    controls = store.controls()
    reference = scratch_reference(rows, controls)
    verify = cfg.verify_mode
    floor = None
    if verify != "off" and len(reference) >= MIN_REFERENCE:
        floor = store.get_meta("constant_score")
        if floor is None:   # loads the data once per run: the scheduler has no other use for it
            floor = constant_score(problem)
            store.set_meta("constant_score", floor)
    check_epochs = cfg.check_epochs or run_cfg.epochs
    longer = check_epochs != run_cfg.epochs   # the controls are checks at the search's budget only
    threshold = verify_threshold(reference, floor, learned=longer) if verify != "off" else None
    if verify != "off" and threshold is None:
        summary.notes.append(f"not verified: the run has {len(reference)} from-scratch scores, {MIN_REFERENCE} are "
                             f"needed for a threshold (run the search with --controls)")
    checks = stored_checks(store.checks(check_epochs)) if longer else known_checks(rows, controls)
    founder, _ = founders_and_depths(rows)
    by_check = cfg.rank == "check"
    rules = dict(min_distance=cfg.min_distance, distance=space.distance, checks=checks, threshold=threshold,
                 need_checks=(threshold is not None and verify == "all") or by_check, founder=founder,
                 max_per_lineage=cfg.max_per_lineage, min_lineages=cfg.min_lineages)
    checked_now = 0
    while True:
        choice = select(ranked, cfg.k * CHECK_POOL if by_check else cfg.k, **rules)
        if not choice.to_check:
            break
        against = f"against the run's threshold {threshold:.4f}" if threshold is not None else "to rank them"
        observer.note(f"checking {len(choice.to_check)} candidates from scratch ({check_epochs} epoch(s) each) "
                      f"{against}")
        jobs = []
        for r in choice.to_check:
            if longer:
                store.add_check(r["id"], check_epochs)
            else:
                store.add_control(r["id"], origin="verify")
            jobs.append(replace(scratch_twin(run_cfg, run_dir, r["id"], r["arch_seq"], device, plugin_set),
                                epochs=check_epochs))

        def on_check(result) -> None:
            if longer:
                store.record_check(result, check_epochs)
            else:
                store.record_control(result)
            checks[result.candidate_id] = result.score if result.status == "ok" else float("-inf")

        start()
        pump(executor, lambda: jobs.pop(0) if jobs else None, on_check)
        checked_now += len(choice.to_check)
    top = choice.selected
    if by_check:   # the pool passed every rule; keep its K best from scratch (rules again: caps within K)
        reranked = select(rerank_by_check(top, checks), cfg.k, **rules)
        top = reranked.selected
    return top, {
        "verified": threshold is not None and verify == "all", "verify": verify if threshold is not None else "off",
        "checked": sum(r["id"] in checks for r in top), "threshold": threshold, "reference_n": len(reference),
        "quartile": verify_threshold(reference) if threshold is not None else None,
        "floor": floor, "check_epochs": check_epochs, "checks": {str(r["id"]): checks[r["id"]] for r in top if r["id"] in checks},
        "checked_now": checked_now, "min_distance": cfg.min_distance, "max_per_lineage": cfg.max_per_lineage,
        "min_lineages": cfg.min_lineages, "rank": cfg.rank,
        "flagged": [{"id": r["id"], "score": r["score"], "check": r["check"]} for r in choice.flagged],
        "similar": [r["id"] for r in choice.similar], "capped": [r["id"] for r in choice.capped],
        "families": families(top, space.distance), "lineages": count_lineages([r["id"] for r in top], founder),
        "distinct_architectures": len({tuple(r["arch_seq"]) for r in top})}


def outcome_notes(rows: list[dict], cfg: TopKConfig) -> list[str]:
    """What a user must know to read the trained models' numbers: how many warm starts no epoch
    improved on (their speed-up comes from not training), and whether there are test scores."""
    ok = [r for r in rows if r["status"] == "ok"]
    notes = []
    warm = [r for r in ok if r["warm_started"]]
    kept = [r for r in warm if r["converged"] and kept_epoch(r["epochs_to_converge"], True, cfg.patience) == 0]
    if kept:
        notes.append(f"{len(kept)} of {len(warm)} warm-started models kept their search weights (no epoch beat the "
                     f"checkpoint within --patience {cfg.patience}): their epochs saved are epochs not trained")
    if ok and all(r["objective_test"] is None for r in ok):
        notes.append("no test scores: this run's problem holds out no test split (a run made before wtnas had test "
                     "splits, -o PROBLEM.test_split=false, or a problem without one)")
    return notes


def _top_rung(store: RunStore, cfg: TopKConfig) -> int | None:
    """A promoting (asha) run's top rung, whose candidates the search trained fully (the ladder
    the scheduler stored); None for other runs and for from-scratch top-K training."""
    ladder = store.get_meta("rung_epochs")
    return None if cfg.from_scratch or not ladder else len(ladder) - 1


def _make_job(run_dir: Path, run_cfg: RunConfig, row: dict, cfg: TopKConfig, min_delta: float, tag: str,
              device: str, plugin_set: dict | None, top_rung: int | None = None) -> Job:
    """A top-K model's job: its own checkpoint (or random weights) trained up to --max-epochs. A
    candidate a promoting search trained to its top rung counts as trained: its checkpoint is
    only scored (validation and test), never trained again."""
    cid = row["id"]
    warm = not cfg.from_scratch
    if warm and top_rung is not None and row.get("rung") == top_rung and row["checkpoint"]:
        return candidate_job(run_cfg, cid, row["arch_seq"], device=device, plugin_set=plugin_set,
                             checkpoint=str(run_dir / "topk" / f"c{cid:05d}-{cfg.mode}-{tag}.h5"),
                             seed=candidate_seed(run_cfg.seed + 1 + cfg.seed, cid), epochs=0, matcher=SAME_MODEL,
                             provider_id=cid, provider_checkpoint=row["checkpoint"], start_epoch=row["epochs"] or 0,
                             score_test=True)
    return candidate_job(run_cfg, cid, row["arch_seq"], device=device, plugin_set=plugin_set,
                         checkpoint=str(run_dir / "topk" / f"c{cid:05d}-{cfg.mode}-{tag}.h5"),
                         seed=candidate_seed(run_cfg.seed + 1 + cfg.seed, cid), epochs=cfg.max_epochs,
                         matcher=SAME_MODEL, provider_id=cid if warm else None,
                         provider_checkpoint=(row["checkpoint"] or str(checkpoint_path(run_dir, cid))) if warm else None,
                         patience=cfg.patience, min_delta=min_delta, early_stop=cfg.early_stop,
                         stop_reference=cfg.reference, score_test=True)
