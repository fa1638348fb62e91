"""Shared helpers of the benchmarks: run a snippet in a fresh interpreter, summarize."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys


def run_json(code: str, env: dict | None = None, timeout: float = 600, args=(), python: str | None = None) -> dict:
    """Run `code` (with `args` as sys.argv[1:]) in a fresh Python (this one, or `python`); it prints one JSON
    object as its last stdout line."""
    out = subprocess.run(
        [python or sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout, env=env,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({out.returncode}):\n{out.stderr[-3000:]}")
    for line in reversed(out.stdout.splitlines()):  # engines may print after the result
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise RuntimeError(f"benchmark child printed no JSON result:\n{out.stdout[-3000:]}")


def median(values) -> float:
    return statistics.median(values)


def report(name: str, ours: list[float], theirs: list[float], goal: str = "") -> float:
    ratio = median(ours) / median(theirs)
    print(
        f"{name}: orca median {median(ours):.2f}s, baseline median {median(theirs):.2f}s, "
        f"ratio {ratio:.2f}{'  (goal ' + goal + ')' if goal else ''}"
    )
    return ratio
