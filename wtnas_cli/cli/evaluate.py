"""`wtnas evaluate`: a model's objective on held-out data (the run's test split, or data you give)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from .common import console


def evaluate_command(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A run directory written by `wtnas run`."),
    candidate_id: Optional[int] = typer.Option(None, "--id", help="Evaluate this candidate \\[default: the model "
                                               "`wtnas export` picks: topk's best, else the search's]."),
    source: Optional[str] = typer.Option(None, "--from", help="search or topk: whose weights (as `wtnas export`)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Labelled data in the form the run's problem reads: "
                                        "a --data-dir-style directory for a built-in problem (its test files), a "
                                        "data file like the space file's for a --space run \\[default: the run's "
                                        "test split]."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (for scripts)."),
) -> None:
    """Score one model on data nobody selected with: the run's held-out test split, or yours. The
    run's stored normalization is applied as in training."""
    from ..results.evaluation import evaluate

    result = evaluate(run_dir, candidate_id, source=source, data=data)
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    chosen = "-" if result.validation is None else f"{result.validation:.4f}"
    metrics = "".join(f", {k} {v:.4f}" for k, v in sorted(result.metrics.items()))
    console.print(f"candidate {result.candidate_id} ({result.source} weights; validation {chosen}) on "
                  f"{escape(result.data)} ({result.samples:,} samples): {result.objective} "
                  f"[bold]{result.value:.4f}[/]{metrics}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)
