"""Ctrl-C semantics shared by long commands (search, top-K training).

First Ctrl-C: stop submitting, let the jobs in flight finish and be stored, then return normally.
Second Ctrl-C, or SIGTERM: KeyboardInterrupt at once; the store is transactional, so whatever
was in flight stays 'pending' and is re-run on resume.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, Callable


class GracefulInterrupt:
    def __init__(self, on_first: Callable[[], None]):
        self.on_first = on_first
        self.count = 0
        self._previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    def _handle(self, signum, frame) -> None:
        self.count += 1
        if signum == signal.SIGINT and self.count == 1:
            self.on_first()
            return
        raise KeyboardInterrupt

    def __enter__(self) -> "GracefulInterrupt":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
