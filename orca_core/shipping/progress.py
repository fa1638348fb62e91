"""Progress of long work: a callback `progress(done_bytes, total_bytes)`, or lines on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

ProgressArg = Callable[[int, int], None] | bool | None


class Progress:
    """Reports bytes done out of a total.

    `report` is a callable (called with `(done, total)`), None (print to stderr: a line rewritten in
    place on a terminal, else one line per tenth) or False (silent).
    """

    def __init__(self, report: ProgressArg, label: str):
        self._report = report
        self._label = label
        self._total = 0
        self._done = 0
        self._shown = -1
        self._last = 0.0
        self._tty = report is None and sys.stderr.isatty()

    def start(self, total: int) -> None:
        self._total = total
        self._done = 0
        self._emit(force=True)

    def advance(self, nbytes: int) -> None:
        """Count `nbytes` more; what the total did not foresee (files a packer adds at the end) is capped."""
        if nbytes > 0 and self._done < self._total:
            self._done = min(self._done + nbytes, self._total)
            self._emit()

    def finish(self) -> None:
        self._done = self._total
        self._emit(force=self._shown < 100)
        if self._tty:
            print(file=sys.stderr, flush=True)

    def _emit(self, force: bool = False) -> None:
        if self._report is False:
            return
        if callable(self._report):
            self._report(self._done, self._total)
            return
        percent = 100 * self._done // self._total if self._total else 100
        now = time.monotonic()
        if self._tty:
            if not force and now - self._last < 0.2:
                return
            end = ""
        else:
            if not force and percent // 10 == self._shown // 10:
                return
            end = "\n"
        self._last, self._shown = now, percent
        prefix = "\r" if self._tty else ""
        text = f"{prefix}orca: {self._label}: {self._done / 1e6:,.0f}/{self._total / 1e6:,.0f} MB ({percent}%)"
        print(text, end=end, file=sys.stderr, flush=True)
