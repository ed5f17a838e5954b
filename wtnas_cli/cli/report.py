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


def report_command(
    runs: List[Path] = typer.Argument(..., help="One or more run directories of the same problem "
                                                "(e.g. baseline, LP and LCS runs)."),
    slot: Optional[float] = typer.Option(None, "--slot", help="Time-slot width in seconds for the score curve "
                                                              "\\[default: about 20 slots]."),
    out: Optional[Path] = typer.Option(None, "--out", help="Where to write report.md and the plots "
                                                           "\\[default: the first run's report/ folder]."),
) -> None:
    """Summarize runs: candidates over time, top-K epochs and objectives, Kendall tau, transfer and
    overhead statistics; several runs side by side with speed-ups against the baseline."""
    from ..report import comparison, write_report

    md, plots, reports, note = write_report(runs, out, slot)
    table = Table(title="runs")
    for col in ("run", "scheme", "candidates", "failed", "with transfer", "mean score 2nd half", "fallbacks",
                "inheritance lift (controls)"):
        table.add_column(col)
    for r in reports:
        st = r.control_stats
        lift = f"{st.lift:+.4f} ± {st.lift_ci:.4f}, τ {_cell(st.tau, 2)} (n={st.n})" if st.n else "-"
        table.add_row(r.name, r.scheme, str(len(r.ok)), str(r.failed), f"{r.transfer_share:.0%}",
                      _cell(r.mean_score_second_half), str(r.fallbacks), lift)
    console.print(table)
    for mode in ("warm", "scratch"):
        rows = comparison(reports, mode)
        if not any(row["topk_n"] for row in rows):
            continue
        t = Table(title=f"top-K ({'warm-started' if mode == 'warm' else 'from scratch'})")
        for col in ("run", "scheme", "K", "epochs (geo. mean)", "speed-up", "speed-up (kept epoch)",
                    "obj. at stop", "obj. final", "diff vs baseline", "Kendall tau"):
            t.add_column(col)
        for row in rows:
            t.add_row(row["run"], row["scheme"], str(row["topk_n"]), _cell(row["epochs_gmean"], 2),
                      _cell(row["speedup_vs_baseline"], 2, "x"), _cell(row["kept_speedup_vs_baseline"], 2, "x"),
                      _cell(row["objective_at_stop"]),
                      _cell(row["objective_final"]), _cell(row["objective_diff_vs_baseline"]),
                      _tau_cell(row))
        console.print(t)
    if not any(r.trained for r in reports):
        console.print(f"No top-K training yet: run [bold]wtnas topk {reports[0].run_dir}[/] first for epochs "
                      f"to converge and Kendall tau.")
    console.print(f"Report: {md}" + (f" with {len(plots)} plots" if plots else ""))
    if note:
        console.print(f"[yellow]{escape(note)}[/]")


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
