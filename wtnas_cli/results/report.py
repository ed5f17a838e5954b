"""`wtnas report`: what a run (or several runs of one problem) found, in numbers and plots.

Everything is computed from the run store; nothing is retrained. Plots need matplotlib
(`pip install 'wtnas[report]'`); without it the report is written without them and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .markdown import render_markdown
from .plots import make_plots
from .runs import RunReport, load_runs


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
