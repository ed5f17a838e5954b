"""Console helpers shared by the commands."""

from __future__ import annotations

from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def fmt_score(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def fmt_int(value) -> str:
    return "-" if value is None else f"{value:,}"


def fmt_size(n: int) -> str:
    return f"{n:,}" if n < 1_000_000 else f"{n:.3g}"
