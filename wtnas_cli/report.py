"""`wtnas report`: what a run (or several runs of one problem) found, in numbers and plots.

Everything is computed from the run store; nothing is retrained. Plots need matplotlib
(`pip install 'wtnas[report]'`); without it the report is written without them and says so.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .errors import WtnasError
from .job import TIMING_KEYS
from .lease import check_reader_host
from .lineage import ancestry
from .rundir import STORE_NAME, is_run_dir
from .controls import ControlStats, control_pairs, control_stats
from .scheme import label as scheme_label
from .selection import choice_checks, flag_reason, known_checks, lineage_rule_words, threshold_words
from .stats import geometric_mean, kendall_tau, kept_epoch, time_slots
from .store import RunStore, latest_settings_key, selection_key


@dataclass
class TrainedSet:
    """Top-K (and tau-sample) models of one run trained in one mode under one setting."""

    mode: str
    settings: str
    topk: list[dict]
    tau_rows: list[dict]
    choice: dict = field(default_factory=dict)   # how `wtnas topk` chose the top-K (selection.py)

    @property
    def epochs(self) -> list[int]:
        return [r["epochs_to_converge"] for r in self.topk]

    @property
    def patience(self) -> int:
        fields = dict(part.split("=", 1) for part in self.settings.split(",") if "=" in part)
        return int(fields.get("patience", 2))

    @property
    def kept_epochs(self) -> list[int]:
        return [kept_epoch(r["epochs_to_converge"], bool(r["converged"]), self.patience) for r in self.topk]

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
    controls: list[dict] = field(default_factory=list)   # lineage-bias controls (controls.py)
    segments: list[dict] = field(default_factory=list)   # settings forced to change on resume (--force-change)

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
        raise WtnasError(f"{run_dir} holds no wtnas run (no {STORE_NAME}); give directories written by `wtnas run`")
    check_reader_host(run_dir)
    return RunStore(run_dir / STORE_NAME)


def load_candidates(run_dir: str | Path) -> list[dict]:
    store = open_run_store(Path(run_dir))
    try:
        return store.candidates()
    finally:
        store.close()


def load_run(run_dir: str | Path, slot_s: float | None = None) -> RunReport:
    run_dir = Path(run_dir)
    store = open_run_store(run_dir)
    try:
        report = RunReport(run_dir, store.get_meta("config", {}), store.candidates(), store.events(),
                           scheme_meta=store.get_meta("scheme", {}), controls=store.controls(),
                           segments=store.get_meta("segments", []))
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
            report.trained[mode] = TrainedSet(mode, latest, topk, tau, selection or {})
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


def comparison(reports: list[RunReport], mode: str = "warm") -> list[dict]:
    """One row per run against the baseline (the first run that transfers nothing, else the first)."""
    base = next((r for r in reports if r.is_baseline), reports[0])
    base_set = base.trained.get(mode)
    base_gm = geometric_mean(base_set.epochs) if base_set else float("nan")
    # kept epochs are means, not geometric means: 0 (a model that kept its start) is a real value
    base_kept = statistics.mean(base_set.kept_epochs) if base_set and base_set.topk else float("nan")
    base_obj = statistics.mean(base_set.objective("objective_final")) if base_set and base_set.topk else float("nan")
    rows = []
    for r in reports:
        t = r.trained.get(mode)
        gm = geometric_mean(t.epochs) if t and t.topk else float("nan")
        kept = statistics.mean(t.kept_epochs) if t and t.topk else float("nan")
        obj = statistics.mean(t.objective("objective_final")) if t and t.topk else float("nan")
        stop = statistics.mean(t.objective("objective_at_stop")) if t and t.topk else float("nan")
        tau = t.tau if t else (float("nan"), 0, "")
        rows.append({
            "run": r.name, "scheme": r.scheme, "baseline": r is base, "candidates": len(r.ok), "failed": r.failed,
            "mean_score_2nd_half": r.mean_score_second_half, "transfer_share": r.transfer_share,
            "topk_n": len(t.topk) if t else 0, "epochs_gmean": gm,
            "speedup_vs_baseline": base_gm / gm if gm and not math.isnan(gm) else float("nan"),
            "kept_epochs_mean": kept,
            "kept_speedup_vs_baseline": base_kept / kept if kept and not math.isnan(kept) else float("nan"),
            "objective_at_stop": stop, "objective_final": obj, "objective_diff_vs_baseline": obj - base_obj,
            "tau": tau[0], "tau_n": tau[1], "tau_over": tau[2],
        })
    return rows


def _choice_lines(choice: dict) -> list[str]:
    """How the top-K was chosen: verification, flagged inherited-only candidates, diversity."""
    if not choice or "verified" not in choice:
        return ["Chosen by search score only (selected before wtnas verified top-K)."]
    lines = []
    if choice["verified"]:
        lines.append(f"Verified: every model's from-scratch check (the search's seed) exceeded the run's "
                     f"threshold {threshold_words(choice)}.")
    elif choice.get("verify") == "known":
        lines.append(f"Checked where the run already had a from-scratch score (controls, candidates that inherited "
                     f"nothing): {choice['checked']} of the models, against the threshold {threshold_words(choice)}. "
                     f"`wtnas topk --verify all` "
                     f"checks every model.")
    else:
        lines.append("Not verified (`--no-verify`, or too few from-scratch scores in the run for a threshold).")
    for f in choice["flagged"]:
        lines.append(f"- candidate {f['id']} flagged *inherited-only* and replaced: search score {f['score']:.4f}, "
                     f"{flag_reason(f, choice)}")
    lines.append(f"Diversity: no two models closer than {choice['min_distance']} changed nodes; "
                 f"{len(choice['similar'])} near-copies skipped; {choice['distinct_architectures']} distinct "
                 f"architectures in {choice['families']} families (chains of distance ≤ 1).")
    if "lineages" in choice:
        lines.append(f"Lineages (models whose inherited weights go back to one random initialization): "
                     f"{choice['lineages']}; {lineage_rule_words(choice)}.")
    if choice.get("rank") == "check":
        lines.append("Ranked by from-scratch check (`--rank check`): the best checks among twice K candidates that "
                     "passed the rules above.")
    return lines


def params_stats(rows: list[dict]) -> dict[str, float]:
    p = [r["num_params"] for r in rows if r["num_params"]]
    if not p:
        return {}
    return {"mean": statistics.mean(p), "std": statistics.stdev(p) if len(p) > 1 else 0.0, "max": max(p), "min": min(p)}


def _f(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _pct(share: float) -> str:
    return "-" if share is None or math.isnan(share) else f"{share:.0%}"


def _x(ratio: float) -> str:
    return "-" if ratio is None or math.isnan(ratio) else f"{ratio:.2f}x"


def _tau(row: dict) -> str:
    return "-" if not row["tau_n"] else f"{_f(row['tau'], 3)} (n={row['tau_n']}, {row['tau_over']})"


def render_markdown(reports: list[RunReport], plots: list[Path], plot_note: str = "") -> str:
    lines = [f"# wtnas report: {', '.join(r.name for r in reports)}", ""]
    problem = reports[0].config.get("problem", "?")
    lines += [f"Problem `{problem}`; objective of candidates = score after "
              f"{reports[0].config.get('epochs', 1)} epoch(s). Generated by `wtnas report`.", ""]
    lines += ["## Runs", "", "Tensors and parameters transferred: mean share of a receiver's, over candidates "
              "with a provider. Partial copies: tensors of which only the overlapping block came from the "
              "provider (`lcs-slice`). Role crossings: tensors seeded from a tensor of another role (only "
              "the shape-only matchers make them).", "",
              "| run | scheme | strategy | candidates | failed | with transfer | tensors transferred "
              "| parameters transferred | partial copies | role crossings | mean score, 2nd half | provider fallbacks |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        lines.append(f"| {r.name} | {r.scheme} | {r.config.get('strategy')} | {len(r.ok)} | {r.failed} | "
                     f"{r.transfer_share:.0%} | {r.tensors_transferred_share:.0%} | {_pct(r.params_transferred_share)} | "
                     f"{r.total('n_partial')} | {r.total('n_role_crossed')} | {_f(r.mean_score_second_half)} "
                     f"| {r.fallbacks} |")
    lines.append("")
    lines += [f"- {r.name}: matcher {r.matching}" for r in reports]
    for r in reports:
        d = r.disk()
        if d["written"]:
            lines.append(f"- {r.name}: checkpoints kept {d['kept']} of {d['written']} ({d['kept_mb']:.1f} of "
                         f"{d['written_mb']:.1f} MB written)" + ("; the others were deleted once nothing could need "
                                                               "them (`--keep needed`)" if d["kept"] < d["written"] else ""))
        for seg in r.segments:   # a forced change mid-run: the run is two searches, say where
            lines.append(f"- {r.name}: **from candidate {seg['from_id']} on, resumed with changed settings** "
                         f"(`--force-change`): " + ", ".join(f"{k} {old} → {new}"
                                                               for k, (old, new) in seg["changes"].items()))
    with_controls = [r for r in reports if r.search_controls]
    if with_controls:
        lines += ["", "## Inheritance controls", "", "A share of the candidates that received weights was also trained "
                  "from scratch with the same seed and budget (`--controls`). Lift = warm − scratch score (mean, 95% "
                  "CI); tau = Kendall tau between warm and scratch scores (1: inheritance keeps the ranking); cost = "
                  "the controls' share of the search's worker time.", "",
                  "| run | controls | inheritance lift | 95% CI | Kendall tau warm vs scratch | cost |", "|---|---|---|---|---|---|"]
        for r in with_controls:
            st = r.control_stats
            lines.append(f"| {r.name} | {st.n} | {_f(st.lift)} | ± {_f(st.lift_ci)} | {_f(st.tau, 3)} | "
                         f"{_pct(r.control_cost)} |")
    for r in reports:
        best = max(r.ok, key=lambda c: c["score"], default=None)
        if best and best.get("metrics"):
            extra = ", ".join(f"{k} {v:.4f}" for k, v in json.loads(best["metrics"]).items())
            lines.append(f"\n{r.name}: best candidate {best['id']} scores {_f(best['score'])} ({extra}).")
    for mode in ("warm", "scratch"):
        cmp_rows = comparison(reports, mode)
        if not any(row["topk_n"] for row in cmp_rows):
            continue
        title = "warm-started from their checkpoints" if mode == "warm" else "retrained from scratch"
        settings = next(r.trained[mode].settings for r in reports if mode in r.trained)
        lines += ["", f"## Top-K, {title}", "", f"Training settings: `{settings}`. Epochs to converge follow "
                  "Keras' EarlyStopping (patience, min_delta; with `reference=start` an epoch must beat "
                  "the model's score before top-K training, otherwise the first epoch sets the reference "
                  "and the floor is patience + 1); speed-up = geometric mean of the baseline's epochs / "
                  "this run's. The kept epoch is the one whose objective early stopping keeps (stop epoch − "
                  "patience; 0 = the model kept its starting weights), averaged: its speed-up has no "
                  "floor, so it shows savings on models that converge within a few epochs.", "",
                  "| run | scheme | K | epochs (geo. mean) | speed-up vs baseline | kept epoch (mean) | "
                  "speed-up to the kept epoch | objective at early stop | "
                  "objective, final | diff vs baseline | Kendall tau (n, over) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in cmp_rows:
            lines.append(f"| {row['run']} | {row['scheme']} | {row['topk_n']} | {_f(row['epochs_gmean'], 2)} | "
                         f"{_x(row['speedup_vs_baseline'])} | {_f(row['kept_epochs_mean'], 2)} | "
                         f"{_x(row['kept_speedup_vs_baseline'])} | {_f(row['objective_at_stop'])} | "
                         f"{_f(row['objective_final'])} | {_f(row['objective_diff_vs_baseline'])} | "
                         f"{_tau(row)} |")
        lines += ["", "Parameter counts of the top-K (Table IV):", "", "| run | mean | std | max | min |",
                  "|---|---|---|---|---|"]
        for r in reports:
            if mode in r.trained:
                p = params_stats(r.trained[mode].topk)
                if p:
                    lines.append(f"| {r.name} | {p['mean']:,.0f} | {p['std']:,.0f} | {p['max']:,} | {p['min']:,} |")
        for r in reports:
            if mode in r.trained:
                lines += ["", f"### {r.name}: top-K models ({mode})", ""] + _choice_lines(r.trained[mode].choice)
                lines += ["", "| id | estimated score | from-scratch check | epochs | converged | objective at stop | "
                          "objective final | params | start | note |", "|---|---|---|---|---|---|---|---|---|---|"]
                checks = known_checks(r.candidates, r.controls)
                checks.update(choice_checks(r.trained[mode].choice))
                for t in r.trained[mode].topk:
                    start = "warm" if t["warm_started"] else "scratch"
                    lines.append(f"| {t['candidate_id']} | {_f(t['estimated_score'])} | "
                                 f"{_f(checks.get(t['candidate_id']))} | {t['epochs_to_converge']} | "
                                 f"{_converged(t)} | {_f(t['objective_at_stop'])} | "
                                 f"{_f(t['objective_final'])} | {t['num_params']:,} | {start} | {t['note'] or ''} |")
    lines += ["", "## Per-candidate overhead (medians, ms)", "",
              "| run | " + " | ".join(k[:-2] for k in TIMING_KEYS) + " | checkpoint MB |",
              "|---|" + "---|" * (len(TIMING_KEYS) + 1)]
    for r in reports:
        o = r.overhead_ms()
        lines.append(f"| {r.name} | " + " | ".join(_f(o[k], 2) for k in TIMING_KEYS) + f" | {_f(r.checkpoint_mb(), 3)} |")
    lines += ["", "## Plots", ""]
    lines += [f"![{p.stem}]({p.name})" for p in plots] or [plot_note]
    return "\n".join(lines) + "\n"


def make_plots(reports: list[RunReport], out_dir: Path) -> tuple[list[Path], str]:
    """PNG plots; returns ([], reason) when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "Plots need matplotlib: `pip install 'wtnas[report]'`, then run `wtnas report` again."
    objective = "score"
    out: list[Path] = []

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for r in reports:
        pts = r.curve
        if not pts:
            continue
        t = [p[0] for p in pts]
        m = [p[1] for p in pts]
        ci = [p[2] for p in pts]
        ax.plot(t, m, marker="o", ms=3, label=f"{r.scheme} ({r.name})")
        ax.fill_between(t, [a - b for a, b in zip(m, ci)], [a + b for a, b in zip(m, ci)], alpha=0.2)
    ax.set_title(f"Estimated {objective} of candidates over time ({reports[0].slot_s:g} s slots, mean ± 95% CI)")
    ax.set_xlabel("time since search start (s)")
    ax.set_ylabel(f"candidate {objective} after {reports[0].config.get('epochs', 1)} epoch(s)")
    ax.grid(alpha=0.3)
    ax.legend()
    out.append(_save(fig, out_dir / "score_over_time.png"))

    with_topk = [r for r in reports if "warm" in r.trained and r.trained["warm"].topk]
    if with_topk:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4))
        names = [r.scheme for r in with_topk]
        ep = [r.trained["warm"].epochs for r in with_topk]
        gmean = [geometric_mean(e) for e in ep]      # as the tables: ratios of epochs
        spread = [_geometric_std(e) for e in ep]
        ax1.bar(names, gmean, capsize=4, color="tab:blue",
                yerr=[[g - g / f for g, f in zip(gmean, spread)], [g * f - g for g, f in zip(gmean, spread)]])
        ax1.set_title("Top-K epochs to converge")
        ax1.set_ylabel("epochs (geometric mean ×/÷ geometric std)")
        ax1.set_xlabel("scheme")
        x = range(len(with_topk))
        for offset, key, label, fmt in ((-0.1, "objective_at_stop", "at early stop", "o"),
                                        (0.1, "objective_final", "final", "s")):
            values = [r.trained["warm"].objective(key) for r in with_topk]
            ax2.errorbar([i + offset for i in x], [statistics.mean(v) for v in values],
                         yerr=[statistics.stdev(v) if len(v) > 1 else 0 for v in values], fmt=fmt, capsize=4,
                         label=label)
        ax2.set_xticks(list(x), names)
        ax2.set_title("Top-K objective")
        ax2.set_ylabel("objective (mean ± std)")
        ax2.set_xlabel("scheme")
        ax2.legend()
        for a in (ax1, ax2):
            a.grid(alpha=0.3, axis="y")
        out.append(_save(fig, out_dir / "topk.png"))

    lineage = [r for r in reports if any(t.topk for t in r.trained.values())]
    if lineage:
        out.append(_lineage_plot(lineage, out_dir / "lineage.png"))

    sets = [(r, r.trained[mode], mode) for r in reports for mode in ("warm", "scratch") if mode in r.trained]
    if sets:
        fig, ax = plt.subplots(figsize=(6, 5))
        points = [((x["estimated_score"], x["objective_final"]), r, t, mode)
                  for r, t, mode in sets for x in (t.tau_rows if len(t.tau_rows) >= 2 else t.topk)]
        (x_lo, x_hi), (y_lo, y_hi) = (_robust_limits([p[0][i] for p in points]) for i in (0, 1))
        outside = 0
        for k, (r, trained, mode) in enumerate(sets):
            xy = [p[0] for p in points if p[2] is trained]
            tau, n, label = trained.tau
            outside += sum(not (x_lo <= x <= x_hi and y_lo <= y <= y_hi) for x, y in xy)
            ax.scatter([min(max(x, x_lo), x_hi) for x, _ in xy], [min(max(y, y_lo), y_hi) for _, y in xy], s=18,
                       marker="os^Dv<>p"[k % 8], alpha=0.7, clip_on=False,
                       label=f"{r.scheme}, {mode}: tau {_f(tau, 2)} (n={n}, {label})")
        ax.set_xlim(x_lo, x_hi)
        ax.set_ylim(y_lo, y_hi)
        if outside:   # far-off models (e.g. at chance) would squeeze the rest into a corner
            ax.text(0.01, 0.01, f"{outside} point(s) outside drawn at the edge", transform=ax.transAxes, fontsize=7)
        ax.set_title("Estimated score vs trained objective")
        ax.set_xlabel(f"estimated {objective} (search)")
        ax.set_ylabel("objective after top-K training")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        out.append(_save(fig, out_dir / "tau.png"))
    return out, ""


def _converged(trained: dict) -> str:
    """'yes' / 'no (cap)', and 'flat' for a model trained from random weights whose objective
    never rose after its first epoch: early stopping ends it quickly, but that is not a model that
    learned (e.g. one at chance). A warm start may rightly begin at its best."""
    curve = trained.get("curve") or []
    curve = json.loads(curve) if isinstance(curve, str) else curve
    if not trained.get("warm_started") and len(curve) >= 2 and max(curve[1:]) <= curve[0]:
        return "flat (never beat its first epoch)"
    return "yes" if trained["converged"] else "no (cap)"


def _lineage_plot(reports: list[RunReport], path: Path) -> Path:
    """Per run, one row per top-K model: its weight lineage (lineage.py) as dots at the ancestors'
    ids, founder (open circle) to model (star). Rows that meet share ancestors; one colour per
    founder shows how many lineages the top-K comes from."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(reports), 1, figsize=(8, 1.2 + 0.45 * sum(
        len(_topk_ids(r)) for r in reports)), squeeze=False)
    for ax, r in zip(axes[:, 0], reports):
        ids = _topk_ids(r)
        colours: dict[int, str] = {}
        for row, cid in enumerate(ids):
            chain = [c["id"] for c in ancestry(r.candidates, cid)]
            colour = colours.setdefault(chain[0], f"C{len(colours) % 10}")
            ax.plot(chain, [row] * len(chain), "-o", ms=3, color=colour, lw=1)
            ax.plot([chain[0]], [row], "o", ms=7, mfc="white", color=colour)
            ax.plot([chain[-1]], [row], "*", ms=11, color=colour)
        ax.set_yticks(range(len(ids)), [f"#{cid}" for cid in ids])
        ax.invert_yaxis()
        ax.set_title(f"{r.name} ({r.scheme}): top-{len(ids)} from {len(colours)} lineage(s)", fontsize=9)
        ax.set_xlabel("candidate id (search order): founder ○ → providers → model ★")
        ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)


def _topk_ids(report: RunReport) -> list[int]:
    """The top-K of the run's latest `wtnas topk` (warm-started if there is one), best first."""
    trained = report.trained.get("warm") or report.trained.get("scratch")
    assert trained is not None   # callers pass runs with a trained top-K (_lineage_plot's filter)
    return [t["candidate_id"] for t in trained.topk]


def _geometric_std(values: Sequence[float]) -> float:
    if len(values) < 2 or min(values) <= 0:
        return 1.0
    logs = [math.log(v) for v in values]
    return math.exp(statistics.stdev(logs))


def _robust_limits(values: list[float]) -> tuple[float, float]:
    """Axis limits around the bulk of the points: quartiles widened by 1.5 IQR (Tukey's fences),
    never beyond the data, with a margin."""
    qs = statistics.quantiles(values, n=4) if len(values) >= 4 else [min(values), 0.0, max(values)]
    iqr = qs[2] - qs[0]
    lo, hi = max(min(values), qs[0] - 1.5 * iqr), min(max(values), qs[2] + 1.5 * iqr)
    pad = (hi - lo) * 0.05 or 0.01
    return lo - pad, hi + pad


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(run_dirs: Sequence[str | Path], out_dir: str | Path | None = None,
                 slot_s: float | None = None) -> tuple[Path, list[Path], list[RunReport], str]:
    reports = load_runs(run_dirs, slot_s)
    out = Path(out_dir) if out_dir else reports[0].run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    plots, note = make_plots(reports, out)
    md = out / "report.md"
    tmp = md.with_name(".report.md.tmp")
    tmp.write_text(render_markdown(reports, plots, note))
    tmp.replace(md)
    return md, plots, reports, note
