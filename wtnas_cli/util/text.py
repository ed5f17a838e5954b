"""Text helpers for one-line error messages."""

from __future__ import annotations

import difflib


def did_you_mean(word: str, valid) -> str:
    """' (did you mean 'x'?)' for a near miss among `valid`, else ''."""
    close = difflib.get_close_matches(str(word), sorted(valid), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
