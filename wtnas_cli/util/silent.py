"""The observer of a caller that wants no progress reports (the Python API, tests)."""

from __future__ import annotations

from typing import Any, Callable


def _ignore(*args: Any, **kwargs: Any) -> None:
    return None


class Silent:
    """Takes every observer event (any method name, any arguments) and does nothing with it."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("__"):   # copy, pickle and friends look for protocols it does not have
            raise AttributeError(name)
        return _ignore
