"""Packing the Python environment: Orca's pack (cold and cached) versus plain venv-pack of the same env.

Packs the running environment as one archive and in layers (as standalone ships it) (default: this interpreter's venv, e.g. /work/venv with pyspark and
ray) in fresh interpreters, alternating, with ORCA_CACHE_DIR in a temporary folder. Prints medians
and ratios: cold pack time (goal <= 0.30), cache-hit time (goal <= 1 s), archive bytes shipped.

venv-pack refuses environments with editable installs; the baseline turns that check off (and
only that) so that it packs the same files.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from _common import median, report, run_json

ORCA = """
import json, sys, time
t0 = time.perf_counter()
from orca_core.shipping import pack_environment
packed = pack_environment(prefix={prefix!r}, compress={compress}, progress=False, layered={layered})
print(json.dumps({{"seconds": time.perf_counter() - t0, "size": packed.size, "cached": packed.cached}}))
"""

KEY = """
import json, time
t0 = time.perf_counter()
from orca_core.shipping import environment_key
environment_key(prefix={prefix!r})
print(json.dumps({{"seconds": time.perf_counter() - t0}}))
"""

VENV_PACK = """
import json, os, time
t0 = time.perf_counter()
import venv_pack.core
venv_pack.core.check_no_editable_packages = lambda context: None
venv_pack.pack(prefix={prefix!r}, output={output!r})
print(json.dumps({{"seconds": time.perf_counter() - t0, "size": os.path.getsize({output!r})}}))
os.unlink({output!r})
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prefix", default=sys.prefix, help="the environment to pack (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=1, help="cold packs of each kind (each packs the whole env)")
    parser.add_argument("--warm-runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="orca-pack-bench-") as tmp:
        cold, layered, stored, plain, warm, keys = [], [], [], [], [], []
        for i in range(args.runs):
            for compress, layers, results in ((True, False, cold), (True, True, layered), (False, False, stored)):
                env = {**os.environ, "ORCA_CACHE_DIR": os.path.join(tmp, f"cache-{i}-{compress}-{layers}")}
                code = ORCA.format(prefix=args.prefix, compress=compress, layered=layers)
                results.append(run_json(code, env=env, timeout=3600))
                if compress and not layers and i == 0:
                    for _ in range(args.warm_runs):
                        warm.append(run_json(code, env=env))
                        if not warm[-1]["cached"]:
                            sys.exit("the environment changed during the benchmark (an install, or an edit of an "
                                     "editable source): the cache-hit runs packed again; run it again")
                        keys.append(run_json(KEY.format(prefix=args.prefix), env=env))
            output = os.path.join(tmp, "venv-pack.tar.gz")
            plain.append(run_json(VENV_PACK.format(prefix=args.prefix, output=output), timeout=3600))
            print(f"run {i + 1}: orca {cold[-1]['seconds']:.1f}s ({cold[-1]['size'] / 1e6:,.0f} MB), "
                  f"orca layered {layered[-1]['seconds']:.1f}s ({layered[-1]['size'] / 1e6:,.0f} MB), "
                  f"orca uncompressed {stored[-1]['seconds']:.1f}s ({stored[-1]['size'] / 1e6:,.0f} MB), "
                  f"venv-pack {plain[-1]['seconds']:.1f}s ({plain[-1]['size'] / 1e6:,.0f} MB)", flush=True)
    print(f"environment {args.prefix}")
    report("cold pack (compressed)", [r["seconds"] for r in cold], [r["seconds"] for r in plain], "<= 0.30")
    report("cold pack (compressed, layered)", [r["seconds"] for r in layered], [r["seconds"] for r in plain],
           "<= 0.30")
    report("cold pack (uncompressed, local transport)", [r["seconds"] for r in stored],
           [r["seconds"] for r in plain])
    print(f"cache hit: median {median([r['seconds'] for r in warm]):.3f}s (goal <= 1 s); "
          f"environment_key alone: median {median([r['seconds'] for r in keys]):.3f}s")
    ratio = median([r["size"] for r in cold]) / median([r["size"] for r in plain])
    print(f"archive bytes: orca {median([r['size'] for r in cold]) / 1e6:,.0f} MB, venv-pack "
          f"{median([r['size'] for r in plain]) / 1e6:,.0f} MB, ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
