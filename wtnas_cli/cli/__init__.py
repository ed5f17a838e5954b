"""The `wtnas` command line: a thin Typer layer over library functions.

Commands live one group per module; plugins add their own through `wtnas_add_commands(app)`.
Every WtnasError becomes one line on stderr and exit code 1 (traceback with WTNAS_DEBUG=1).
"""

from __future__ import annotations

import os
import sys

import typer

from ..errors import WtnasError
from . import checkpoints, evaluate, export, info, report, run, show, topk

def _flags_show_no_type() -> None:
    """typer (0.29) labels every flag `<bool>` in --help, `--help` itself included; a flag takes no
    value, so it gets no type column."""
    from typer.core import TyperOption

    typed = TyperOption.display_type_rich
    if getattr(typed, "wtnas_flags", False):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag else typed(self, ctx)

    display_type_rich.wtnas_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


def _required_arguments_plain() -> None:
    """typer (0.29) writes required arguments as `{RUN_DIR}` in usage lines; the POSIX usage
    convention, which --help's argument list and our docs follow, is `RUN_DIR` (optional ones stay
    `[NAME]`). A typer without that method is left as it is."""
    from typer.core import TyperArgument

    braced = getattr(TyperArgument, "_usage_display_name", None)
    if braced is None or getattr(braced, "wtnas_plain", False):
        return

    def usage_name(self) -> str:
        name = braced(self)
        return name[1:].replace("}", "", 1) if name.startswith("{") else name

    usage_name.wtnas_plain = True  # type: ignore[attr-defined]
    TyperArgument._usage_display_name = usage_name  # type: ignore[method-assign]


_flags_show_no_type()
_required_arguments_plain()
app = typer.Typer(
    name="wtnas", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Neural architecture search with selective weight transfer (LP / LCS).\n\n"
         "Start with `wtnas run` (a real search on the embedded digits problem).",
)
run.register(app)
topk.register(app)
report.register(app)
info.register(app)
checkpoints.register(app)
export.register(app)
evaluate.register(app)
show.register(app)


def _add_plugin_commands() -> None:
    from ..plugins.manager import command_plugins

    try:
        command_plugins().hook.wtnas_add_commands(app=app)
    except WtnasError as exc:
        _fail(str(exc))


def _fail(message: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False).print(f"[bold red]Error:[/] {escape(message)}", soft_wrap=True)
    raise SystemExit(1)


def _one_sentence_summaries() -> None:
    """`wtnas --help` lists each command by the first sentence of its docstring on one line, not
    the docstring's first paragraph with its source line breaks (plugin commands included)."""
    for command in app.registered_commands:
        doc = (command.callback.__doc__ or "") if command.callback else ""
        if command.short_help is None and doc:
            paragraph = " ".join(doc.split("\n\n")[0].split())
            command.short_help = paragraph.split(". ")[0].rstrip(".") + "."


def main(argv: list[str] | None = None) -> None:
    try:
        _add_plugin_commands()
        _one_sentence_summaries()
        app(args=argv, prog_name="wtnas")
    except WtnasError as exc:
        if os.environ.get("WTNAS_DEBUG"):
            raise
        _fail(str(exc))
    except OSError as exc:
        from ..search.evaluator import is_disk_full

        if not is_disk_full(exc) or os.environ.get("WTNAS_DEBUG"):
            raise
        _fail(f"disk full: {exc}; free space and run the command again (a run continues with --resume)")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
