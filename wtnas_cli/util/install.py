"""Install hints that work where wtnas runs.

Plugins write hints for a registry install (`pip install 'wtnas[keras]'`). In a source checkout
that command would fetch PyPI's wtnas over the checkout, so there the hint names the checkout.
"""

from __future__ import annotations

import re
from pathlib import Path

_EXTRA = re.compile(r"'wtnas\[([^\]]+)\]'")


def source_checkout() -> Path | None:
    """The source tree wtnas runs from (editable install or the repository on sys.path), or None."""
    root = Path(__file__).resolve().parents[2]
    project = root / "pyproject.toml"
    if project.is_file() and 'name = "wtnas"' in project.read_text(errors="replace"):
        return root
    return None


def install_hint(hint: str, checkout: Path | None = None) -> str:
    """`hint` with every `'wtnas[EXTRA]'` replaced by `-e 'CHECKOUT[EXTRA]'` when run from a checkout."""
    root = checkout if checkout is not None else source_checkout()
    if root is None:
        return hint
    return _EXTRA.sub(lambda m: f"-e '{root}[{m.group(1)}]'", hint)
