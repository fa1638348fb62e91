"""Starting steps an interrupt cannot tear, and an unwind a second Ctrl-C cannot cut short.

Python raises KeyboardInterrupt (or a signal handler's exception) in the main thread only, between
any two bytecodes. `init_orca_context` runs the steps that start processes (the backend's start,
the Spark driver JVM) with `Steps.run` in a worker thread: a step either completes and its result
is owned (stopped at unwind unless `disown`ed by what takes it over) or fails. Interrupted while
it waits, the main thread lets the step under way finish, and `shielded` then stops everything.

Test hook: with `ORCA_PAUSE_AT=<step>` init prints `orca: paused at <step>` on stderr and waits
there until interrupted (tests/faults sends SIGINT then). Steps: `pylib`, `backend`,
`backend-started` (what the backend starts is up, e.g. a standalone cluster's daemons), `spark`
(the JVM is up, the SparkContext not yet made), `ray` (Ray is starting), `connect` (before
connecting to Ray), `started` (all is up and is the running context).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable

PAUSE_AT = "ORCA_PAUSE_AT"


class Steps:
    """The steps of one init: what they started and not yet handed over, and a pause point per step."""

    def __init__(self):
        self._owned: list[tuple[object, Callable]] = []
        self._interrupted = threading.Event()

    def checkpoint(self, step: str) -> None:
        """Where a test pauses init (`ORCA_PAUSE_AT`); waits until init is interrupted."""
        if os.environ.get(PAUSE_AT) == step:
            print(f"orca: paused at {step}", file=sys.stderr, flush=True)
            self._interrupted.wait()

    def run(self, step: Callable, *args, stop: Callable | None = None):
        """`step(*args)` in a worker thread; its result is owned (`stop(result)` at unwind) when `stop` is given."""
        box: dict = {}

        def work():
            try:
                box["result"] = step(*args)
                if stop is not None and box["result"] is not None:
                    self._owned.append((box["result"], stop))
            except BaseException as error:
                box["error"] = error

        thread = threading.Thread(target=work, name="orca-start", daemon=True)
        thread.start()
        try:
            thread.join()
        except BaseException:
            self._interrupted.set()
            join(thread)
            raise
        if "error" in box:
            raise box["error"]
        return box["result"]

    def disown(self, thing) -> None:
        """`thing` is now stopped by whoever took it over."""
        self._owned = [(t, stop) for t, stop in self._owned if t is not thing]

    def interrupted(self) -> None:
        """Release a paused step: init is being interrupted."""
        self._interrupted.set()

    def unwind(self) -> None:
        """Stop what the steps started and nobody took over, newest first."""
        owned, self._owned = self._owned, []
        for thing, stop in reversed(owned):
            stop(thing)


def uninterrupted(wait: Callable[[], object]) -> None:
    """Call `wait` until it returns, through any further Ctrl-C."""
    while True:
        try:
            wait()
            return
        except KeyboardInterrupt:
            print("orca: still stopping what init started", file=sys.stderr, flush=True)


def join(thread: threading.Thread) -> None:
    uninterrupted(thread.join)


def shielded(work: Callable[[], None]) -> None:
    """Run `work` to its end even if Ctrl-C is pressed again meanwhile; its error is raised."""
    box: dict = {}

    def run():
        try:
            work()
        except BaseException as error:
            box["error"] = error

    thread = threading.Thread(target=run, name="orca-unwind", daemon=True)
    thread.start()
    join(thread)
    if "error" in box:
        raise box["error"]
