"""Console helpers shared by the commands."""

from __future__ import annotations

from rich.console import Console

# soft_wrap: sentences are never hard-wrapped at the console width (a run path in "Next: wtnas
# topk RUN" stays on one line in a log or pipe, where rich assumes 80 columns); tables still fit it
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fmt_score(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def fmt_int(value) -> str:
    return "-" if value is None else f"{value:,}"


def fmt_size(n: int) -> str:
    return f"{n:,}" if n < 1_000_000 else f"{n:.3g}"
