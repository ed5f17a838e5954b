"""The report's PNG plots (matplotlib, imported only here); without matplotlib the report says so."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Sequence

from ..util.install import install_hint
from ..util.stats import geometric_mean
from .formatting import number
from .lineage import ancestry
from .runs import RunReport
from .timeline import QualityPoint, quality_timeline


REPORT_EXTRA = "pip install 'wtnas[report]'"


def make_plots(reports: list[RunReport], out_dir: Path) -> tuple[list[Path], str]:
    """PNG plots; returns ([], reason) when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], f"Plots need matplotlib: `{install_hint(REPORT_EXTRA)}`, then run `wtnas report` again."
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

    timelines = [(r, quality_timeline(r)) for r in reports]
    if any(any(p.phase == "topk" for p in points) for _, points in timelines):
        out.append(_quality_plot(timelines, out_dir / "quality_over_time.png"))

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
                       label=f"{r.scheme}, {mode}: tau {number(tau, 2)} (n={n}, {label})")
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


def _quality_plot(timelines: list[tuple[RunReport, list[QualityPoint]]], path: Path) -> Path:
    """Best model quality against wall time since `wtnas run` started, one line per run: the
    search's best candidate (validation, dashed), then the recommended top-K model as the top-K
    finish (test objective where the run has a test split, solid), ending at its time to model."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for k, (r, points) in enumerate(timelines):
        colour = f"C{k % 10}"
        search = [p for p in points if p.phase == "search"]
        topk = [p for p in points if p.phase == "topk"]
        if search:
            ax.step([p.t_s for p in search] + [r.search_wall_s], [p.value for p in search] + [search[-1].value],
                    where="post", ls="--", color=colour, alpha=0.7)
        if topk:
            split = "test" if all(p.split == "test" for p in topk) else "validation"
            ax.step([r.search_wall_s] + [p.t_s for p in topk], [topk[0].value] + [p.value for p in topk],
                    where="post", color=colour, marker="o", ms=3,
                    label=f"{r.scheme} ({r.name}): {number(topk[-1].value, 4)} {split} at {topk[-1].t_s:.0f} s")
        else:
            ax.plot([], [], color=colour, label=f"{r.scheme} ({r.name}): no top-K yet")
    late = [p.value for r, points in timelines for p in points if p.phase == "topk" or p.t_s >= r.search_wall_s / 2]
    if late:   # the search's first, random candidates would squeeze the part that matters into a line
        lo, hi = min(late), max(late)
        ax.set_ylim(lo - (hi - lo) * 0.1 - 1e-3, hi + (hi - lo) * 0.1 + 1e-3)
    ax.set_title("Best model over wall time: search (validation, dashed), then top-K (held out, solid)", fontsize=9)
    ax.set_xlabel("wall time since `wtnas run` started (s): search, then `wtnas topk`")
    ax.set_ylabel("objective of the best model so far")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


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
