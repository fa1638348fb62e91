"""`import orca_core` in a fresh interpreter, median of 15 runs, against the 150 ms budget and
against `import pluggy` (its one import-time dependency)."""

from __future__ import annotations

from _common import median, run_json

CODE = """
import time, json
t = time.perf_counter()
import {module}
print(json.dumps({{"s": time.perf_counter() - t}}))
"""


def main() -> None:
    ours = [run_json(CODE.format(module="orca_core"))["s"] for _ in range(15)]
    pluggy = [run_json(CODE.format(module="pluggy"))["s"] for _ in range(15)]
    print(f"import orca_core: median {median(ours) * 1000:.1f} ms (budget 150 ms, ratio {median(ours) / 0.150:.2f}); "
          f"import pluggy: {median(pluggy) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
