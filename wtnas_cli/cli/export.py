"""`wtnas export`: a candidate of a run as a standalone Keras, PyTorch or ONNX model file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ..errors import ConfigError
from .common import console


def export_command(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A run directory written by `wtnas run`."),
    output: Path = typer.Option(..., "--output", "-o", help="The model file to write (.keras, .pt2, .onnx); "
                                "written whole or not at all."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="keras, torch or onnx (`wtnas plugins` lists "
                                      "the installed formats) \\[default: from the -o file's ending]."),
    candidate_id: Optional[int] = typer.Option(None, "--id", help="Export this candidate."),
    best: bool = typer.Option(False, "--best", help="Export the best model that exists (the default): the best "
                              "`wtnas topk` trained if it ran, else the search's best."),
    source: Optional[str] = typer.Option(None, "--from", help="search: the weights the search left; topk: the "
                                         "fully trained weights of `wtnas topk` \\[default: topk's if it trained the "
                                         "candidate, else search]."),
) -> None:
    """Write one candidate as a model file that loads without wtnas, checked to predict what wtnas
    predicts on the validation data."""
    from ..plugins.manager import default_plugins
    from ..results.exporting import export_model, format_for

    if best and candidate_id is not None:
        raise ConfigError("--best and --id contradict each other; give one")
    plugins = default_plugins()
    fmt = fmt or format_for(output, plugins)
    result = export_model(run_dir, fmt, output, candidate_id=candidate_id, source=source, plugins=plugins)
    console.print(f"Exported {escape(result.choice.describe())} as {result.format} → [bold]{escape(str(result.path))}[/]",
                  soft_wrap=True)
    console.print(f"inputs: {escape(result.inputs)}; {escape(result.layout)}", soft_wrap=True)
    if result.class_names:
        console.print(f"outputs: class probabilities in the order {escape(', '.join(result.class_names))} (the "
                      f"data's class names)", soft_wrap=True)
    if result.normalization:
        console.print(f"normalization: the file applies the run's {result.normalization} normalization "
                      f"(normalization.json) itself: feed it raw inputs, as in your data file", soft_wrap=True)
    console.print(f"checked: loaded back, it predicts what wtnas predicts on {escape(result.verified_on)}"
                  f"{' (raw)' if result.normalization else ''} "
                  f"(max abs difference {result.max_abs_diff:.2g})", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)
