"""`wtnas report`: tables in the terminal, report.md and PNG plots in the run's report/ folder."""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from .common import console


def _cell(value, digits: int = 4, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}{suffix}" if isinstance(value, float) else f"{value}{suffix}"


def _tau_cell(row: dict) -> str:
    if not row["tau_n"]:
        return "-"
    over = "" if row["tau_over"] == "random sample" else ", top-K only"
    return f"{_cell(row['tau'], 3)} (n={row['tau_n']}{over})"


class RunLabels:
    """Short labels for runs (A, B, C...; 1, 2, 3... past 26) used when a table is too wide for the
    terminal; the legend that maps them to run directories and schemes is printed before the first
    table that uses them."""

    def __init__(self, reports) -> None:
        many = len(reports) > 26
        self.label = {r.name: str(i + 1) if many else chr(ord("A") + i) for i, r in enumerate(reports)}
        self.lines = [f"{self.label[r.name]} = {r.run_dir} ({r.scheme})" for r in reports]
        self.shown = False

    def show_legend(self) -> None:
        if not self.shown:
            for line in self.lines:
                console.print(escape(line), soft_wrap=True)
            self.shown = True


def _print_table(title: str, rows: list, run_scheme, groups: list[list[tuple]], labels: RunLabels) -> None:
    """One table of `rows` led by run and scheme when it fits the terminal; otherwise one table per
    group of columns, led by the run's short label (a legend names run and scheme), so that no
    number is cut and no run name wraps (report.md has everything)."""
    columns = [column for group in groups for column in group]
    whole = Table(title=title)
    whole.add_column("run", no_wrap=True)
    whole.add_column("scheme", no_wrap=True)
    for name, _ in columns:
        whole.add_column(name, no_wrap=True)
    for row in rows:
        whole.add_row(*run_scheme(row), *(cell(row) for _, cell in columns))
    natural = console.measure(whole, options=console.options.update(width=100_000)).maximum   # unsqueezed
    if natural <= console.width:
        console.print(whole)
        return
    labels.show_legend()
    for i, group in enumerate(groups):
        t = Table(title=title if i == 0 else None)
        t.add_column("run", no_wrap=True)
        for name, _ in group:
            t.add_column(name, no_wrap=True)
        for row in rows:
            t.add_row(labels.label[run_scheme(row)[0]], *(cell(row) for _, cell in group))
        console.print(t)


def _print_topk(rows: list[dict], title: str, labels: RunLabels) -> None:
    """The top-K comparison; one objective column when early stopping kept the final weights
    (then at-stop and final are the same number); no ratio columns without a baseline run."""
    same = all(r["objective_at_stop"] == r["objective_final"] for r in rows)
    objective = [("objective", lambda r: _cell(r["objective_final"]))] if same else [
        ("obj. at stop", lambda r: _cell(r["objective_at_stop"])), ("obj. final", lambda r: _cell(r["objective_final"]))]
    has_base = any(r["baseline"] for r in rows)
    epochs = [("K", lambda r: str(r["topk_n"])), ("epochs (geo. mean)", lambda r: _cell(r["epochs_gmean"], 2)),
              *([("speed-up", lambda r: _cell(r["speedup_vs_baseline"], 2, "x")),
                 ("speed-up (kept)", lambda r: _cell(r["kept_speedup_vs_baseline"], 2, "x"))] if has_base else [])]
    tested = [("test", lambda r: _cell(r["objective_test"])),
              ("recommended: val / test", lambda r: f"{_cell(r['recommended_val'])} / {_cell(r['recommended_test'])}")]
    has_test = any(not math.isnan(r["objective_test"]) for r in rows)
    timed = [("time to model", lambda r: _cell(r["time_to_model_s"], 0, " s"))]
    has_time = any(not math.isnan(r["time_to_model_s"]) for r in rows)
    quality = [*objective, *([("diff vs baseline", lambda r: _cell(r["objective_diff_vs_baseline"]))] if has_base else []),
               ("Kendall tau", _tau_cell)]
    held_out = [*(tested if has_test else []), *(timed if has_time else [])]
    _print_table(title, rows, lambda r: (r["run"], r["scheme"]), [g for g in (epochs, quality, held_out) if g], labels)
    if not has_base:
        from ..results.comparison import NO_BASELINE

        console.print(f"No speed-ups or differences: {NO_BASELINE}.")


def _lift_cell(report) -> str:
    st = report.control_stats
    return f"{st.lift:+.4f} ± {st.lift_ci:.4f}" if st.n else "-"


def _tau_controls_cell(report) -> str:
    st = report.control_stats
    return f"{_cell(st.tau, 2)} (n={st.n})" if st.n else "-"


def report_command(
    runs: List[Path] = typer.Argument(..., metavar="RUN_DIR", help="One or more run directories of the same problem "
                                                "(e.g. baseline, LP and LCS runs)."),
    slot: Optional[float] = typer.Option(None, "--slot", help="Time-slot width in seconds for the score curve "
                                                              "\\[default: about 20 slots]."),
    out: Optional[Path] = typer.Option(None, "--out", help="Where to write report.md and the plots "
                                                           "\\[default: the first run's report/ folder]."),
) -> None:
    """Summarize runs: candidates over time, top-K epochs and objectives, Kendall tau, transfer and
    overhead statistics; several runs side by side with speed-ups against the baseline."""
    from ..results.comparison import comparison
    from ..results.report import write_report

    md, plots, reports, note = write_report(runs, out, slot)
    counts = [("candidates", lambda r: str(len(r.ok))), ("failed", lambda r: str(r.failed)),
              ("with transfer", lambda r: f"{r.transfer_share:.0%}"), ("fallbacks", lambda r: str(r.fallbacks))]
    scores = [("2nd-half mean score", lambda r: _cell(r.mean_score_second_half)),
              ("inheritance lift (95% CI)", _lift_cell)]
    controls = [("τ warm vs scratch (controls)", _tau_controls_cell)]
    labels = RunLabels(reports)
    _print_table("runs", reports, lambda r: (r.name, r.scheme), [counts, scores, controls], labels)
    for r in reports:
        if r.rung_summary:
            console.print(escape(f"{r.name}: {r.rung_summary}"), soft_wrap=True)
    for mode in ("warm", "scratch"):
        rows = comparison(reports, mode)
        if any(row["topk_n"] for row in rows):
            _print_topk(rows, f"top-K ({'warm-started' if mode == 'warm' else 'from scratch'})", labels)
    if not any(r.trained for r in reports):
        console.print(f"No top-K training yet: run [bold]wtnas topk {reports[0].run_dir}[/] first for epochs "
                      f"to converge and Kendall tau.")
    console.print(f"Report: {md}" + (f" with {len(plots)} plot{'s' if len(plots) != 1 else ''}" if plots else "")
                  + " (every table in full, per-model rows, plots)")
    if note:
        console.print(f"[yellow]{escape(note)}[/]")


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
