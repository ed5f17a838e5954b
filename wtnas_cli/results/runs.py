"""A run as the report sees it: its store, configuration, candidates, controls and top-K
sets, loaded read-only (`wtnas report`, `wtnas show` and the Python API read runs through it)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import WtnasError
from ..run.job import TIMING_KEYS
from ..run.lease import check_reader_host
from ..run.rundir import STORE_NAME, is_run_dir, not_a_run
from ..run.scheme import label as scheme_label
from ..run.store import RunStore, latest_settings_key, selection_key, topk_checks_key, topk_wall_key
from ..search.controls import ControlStats, control_pairs, control_stats
from ..util.stats import kendall_tau, kept_epoch, time_slots
from .formatting import top_rung


@dataclass
class TrainedSet:
    """Top-K (and tau-sample) models of one run trained in one mode under one setting."""

    mode: str
    settings: str
    topk: list[dict]
    tau_rows: list[dict]
    choice: dict = field(default_factory=dict)   # how `wtnas topk` chose the top-K (selection.py)
    wall_s: float | None = None   # `wtnas topk`'s wall time for this setting, checks included (None: not recorded)
    checks_s: float | None = None   # the part of it spent choosing the top-K (verification checks)

    @property
    def epochs(self) -> list[int]:
        """Epochs to converge of the models top-K training trained (not those a promoting search
        trained to its top rung: scored only, they have no top-K epochs)."""
        return [r["epochs_to_converge"] for r in self.topk if not top_rung(r)]

    @property
    def patience(self) -> int:
        fields = dict(part.split("=", 1) for part in self.settings.split(",") if "=" in part)
        return int(fields.get("patience", 2))

    @property
    def kept_epochs(self) -> list[int]:
        return [kept_epoch(r["epochs_to_converge"], bool(r["converged"]), self.patience) for r in self.topk
                if not top_rung(r)]

    def objective(self, key: str) -> list[float]:
        return [r[key] for r in self.topk if r[key] is not None]

    @property
    def tau(self) -> tuple[float, int, str]:
        """Kendall tau between estimated scores and trained objectives, over the tau sample if
        there is one, else over the top-K (range-restricted, labelled as such)."""
        rows, label = (self.tau_rows, "random sample") if len(self.tau_rows) >= 2 else (self.topk, "top-K only")
        return kendall_tau([r["estimated_score"] for r in rows], [r["objective_final"] for r in rows]), len(rows), label


@dataclass
class RunReport:
    run_dir: Path
    config: dict
    candidates: list[dict]
    events: list[dict]
    trained: dict[str, TrainedSet] = field(default_factory=dict)  # by mode
    slot_s: float = 0.0
    # what the run used (store meta "scheme"); runs written before it was recorded: what happened
    scheme_meta: dict = field(default_factory=dict)
    controls: list[dict] = field(default_factory=list)   # lineage-bias controls (search/controls.py)
    segments: list[dict] = field(default_factory=list)   # settings forced to change on resume (--force-change)
    search_wall_s: float = 0.0   # the search's wall time (its last summary; older runs: its last candidate's)
    rungs: list[dict] = field(default_factory=list)   # promoting strategies (asha): one row per candidate and rung
    rung_epochs: list[int] = field(default_factory=list)   # their ladder: epochs in all at each rung

    @property
    def rungs_reached(self) -> list[int]:
        """Candidates that reached each rung (promoting strategies; [] for other runs)."""
        return [sum(r["rung"] == k and r["status"] == "ok" for r in self.rungs) for k in range(len(self.rung_epochs))]

    @property
    def rung_summary(self) -> str | None:
        """How many candidates reached each rung, in words; None for a run without rungs."""
        if not self.rung_epochs:
            return None
        parts = [f"{n} at {e} epoch{'s' if e != 1 else ''}" for n, e in zip(self.rungs_reached, self.rung_epochs)]
        return (f"rungs (successive halving): {', '.join(parts)}; a promotion trains a candidate on from its own "
                f"checkpoint")

    @property
    def search_controls(self) -> list[dict]:
        return [c for c in self.controls if (c.get("origin") or "search") == "search"]

    @property
    def control_stats(self) -> ControlStats:
        return control_stats(control_pairs(self.candidates, self.controls))

    @property
    def control_cost(self) -> float:
        """Controls' share of all worker time spent by the search."""
        ctl = sum(c["wall_s"] or 0.0 for c in self.controls
                  if c["status"] != "pending" and (c.get("origin") or "search") == "search")
        cand = sum((r["finished_at"] or 0) - (r["started_at"] or 0) for r in self.candidates
                   if r["status"] in ("ok", "failed") and r["started_at"])
        return ctl / (ctl + cand) if ctl + cand > 0 else float("nan")

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def is_baseline(self) -> bool:
        """The matcher's or selector's `baseline` trait as the store recorded it; a store from
        before that record: a run in which no candidate received weights (names no plugin)."""
        if "baseline" in self.scheme_meta:
            return bool(self.scheme_meta["baseline"])
        return not any(r["n_transferred"] for r in self.ok)

    @property
    def scheme(self) -> str:
        """What happened: 'baseline', or matcher · selector · share of candidates that got weights."""
        warm = sum(1 for r in self.ok if r["n_transferred"])
        return scheme_label(self.config.get("matcher", "?"), self.scheme_meta.get("selector", self.config.get("selector")),
                            warm, len(self.ok), self.is_baseline)

    @property
    def matching(self) -> str:
        """Which matching rule the run used, in words."""
        meta = self.scheme_meta
        if "matcher_description" in meta:
            return f"`{meta['matcher']}`: {meta['matcher_description']}"
        return (f"`{self.config.get('matcher')}` (recorded by an earlier wtnas, whose lp/lcs compared shapes only, "
                f"as today's lp-shape/lcs-shape)")

    def kids(self) -> list[dict]:
        return [r for r in self.ok if r["provider_id"] is not None and r["n_tensors"]]

    @property
    def params_transferred_share(self) -> float:
        shares = [r["transfer_share"] for r in self.kids() if r.get("transfer_share") is not None]
        return statistics.mean(shares) if shares else float("nan")

    def total(self, column: str) -> int:
        return sum(r.get(column) or 0 for r in self.ok)

    @property
    def ok(self) -> list[dict]:
        return [r for r in self.candidates if r["status"] == "ok"]

    @property
    def failed(self) -> int:
        return sum(r["status"] == "failed" for r in self.candidates)

    @property
    def transfer_share(self) -> float:
        ok = self.ok
        return sum(1 for r in ok if r["n_transferred"]) / len(ok) if ok else 0.0

    @property
    def tensors_transferred_share(self) -> float:
        kids = self.kids()
        return statistics.mean(r["n_transferred"] / r["n_tensors"] for r in kids) if kids else 0.0

    @property
    def fallbacks(self) -> int:
        return sum(e["kind"] in ("transfer_fallback", "topk_fallback") for e in self.events)

    @property
    def mean_score_second_half(self) -> float:
        scores = [r["score"] for r in sorted(self.ok, key=lambda r: r["finish_seq"])]
        return statistics.mean(scores[len(scores) // 2:]) if scores else float("nan")

    @property
    def curve(self) -> list[tuple[float, float, float, int]]:
        ok = self.ok
        return time_slots([r["elapsed_s"] for r in ok], [r["score"] for r in ok], self.slot_s)

    def overhead_ms(self) -> dict[str, float]:
        out = {}
        for key in TIMING_KEYS:
            values = [r[key] for r in self.ok if r[key] is not None]
            out[key] = statistics.median(values) * 1000 if values else float("nan")
        return out

    def disk(self) -> dict:
        """Checkpoints written by the search and still kept (--keep needed deletes the others)."""
        written = [r for r in self.ok if r["checkpoint_bytes"]]
        kept = [r for r in written if not r.get("checkpoint_deleted")]
        return {"written": len(written), "kept": len(kept), "written_mb": sum(r["checkpoint_bytes"] for r in written) / 1e6,
                "kept_mb": sum(r["checkpoint_bytes"] for r in kept) / 1e6}

    def checkpoint_mb(self) -> float:
        sizes = [r["checkpoint_bytes"] for r in self.ok if r["checkpoint_bytes"]]
        return statistics.median(sizes) / 1e6 if sizes else float("nan")


def open_run_store(run_dir: Path) -> RunStore:
    """A run's store, for reading (also while the run goes on, on the writer's host)."""
    if not is_run_dir(run_dir):
        raise WtnasError(not_a_run(run_dir, "give directories written by `wtnas run`"))
    check_reader_host(run_dir)
    return RunStore(run_dir / STORE_NAME)


def load_candidates(run_dir: str | Path) -> list[dict]:
    store = open_run_store(Path(run_dir))
    try:
        return store.candidates()
    finally:
        store.close()


def load_rungs(run_dir: str | Path, candidate_id: int | None = None) -> list[dict]:
    """The rung rows of a promoting (asha) run, one per candidate and rung; [] for other runs."""
    store = open_run_store(Path(run_dir))
    try:
        return store.rungs(candidate_id)
    finally:
        store.close()


def load_run(run_dir: str | Path, slot_s: float | None = None) -> RunReport:
    run_dir = Path(run_dir)
    store = open_run_store(run_dir)
    try:
        report = RunReport(run_dir, store.get_meta("config", {}), store.candidates(), store.events(),
                           scheme_meta=store.get_meta("scheme", {}), controls=store.controls(),
                           segments=store.get_meta("segments", []), rungs=store.rungs(),
                           rung_epochs=store.get_meta("rung_epochs", []))
        for mode in ("warm", "scratch"):
            rows = [r for r in store.trained(mode) if r["status"] == "ok"]
            if not rows:
                continue
            latest = store.get_meta(latest_settings_key(mode))   # the latest call's, trained now or before
            if not any(r["settings"] == latest for r in rows):    # (older stores: the latest trained)
                latest = max(rows, key=lambda r: r["finished_at"] or 0)["settings"]
            rows = [r for r in rows if r["settings"] == latest]
            selection = store.get_meta(selection_key(mode, latest))
            if selection:   # the latest `wtnas topk` call's selection (--k 4 then --k 2 reports 2)
                topk = [r for r in rows if r["candidate_id"] in set(selection["topk"])]
                tau = [r for r in rows if r["candidate_id"] in set(selection["tau"])]
            else:           # stores written before selections were recorded
                topk, tau = [r for r in rows if r["in_topk"]], [r for r in rows if r["in_tau_sample"]]
            report.trained[mode] = TrainedSet(mode, latest, topk, tau, selection or {},
                                              store.get_meta(topk_wall_key(mode, latest)),
                                              store.get_meta(topk_checks_key(mode, latest)))
        report.search_wall_s = (store.get_meta("last_summary") or {}).get("elapsed_s") or max(
            (r["elapsed_s"] or 0.0 for r in report.ok), default=0.0)
    finally:
        store.close()
    last = max((r["elapsed_s"] or 0.0 for r in report.ok), default=0.0)
    report.slot_s = slot_s or _nice_slot(last)
    return report


def _nice_slot(duration_s: float) -> float:
    """About 20 slots over the run, rounded to 1, 2 or 5 times a power of ten."""
    raw = max(duration_s / 20, 0.1)
    base = 10 ** math.floor(math.log10(raw))
    return next(m * base for m in (1, 2, 5, 10) if m * base >= raw)


def load_runs(run_dirs: Sequence[str | Path], slot_s: float | None = None) -> list[RunReport]:
    if not run_dirs:
        raise WtnasError("give at least one run directory")
    reports = [load_run(d, slot_s) for d in run_dirs]
    problems = {r.config.get("problem") for r in reports}
    if len(problems) > 1:
        listing = ", ".join(f"{r.run_dir} ({r.config.get('problem')})" for r in reports)
        raise WtnasError(f"runs solve different problems: {listing}; compare runs of one problem only")
    if slot_s is None and len(reports) > 1:
        common = max(r.slot_s for r in reports)
        for r in reports:
            r.slot_s = common
    return reports
