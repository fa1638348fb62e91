"""Shipping the Python environment to a 2-worker standalone cluster: init to first result with
`ship_python_env=True` (cold and warm node cache) against the same init without shipping.

The benchmark starts a master and two workers (1 core, 1 GiB each) on this machine and gives
Orca their `spark://` URL, so the launcher and the archive travel as `spark.files`, as they do to
a cluster elsewhere. Each measurement is a fresh interpreter, timed from its first line to the
first result: a Spark job with one task per executor and, with --ray, a Ray task on Ray on Spark.
The archive is packed once before timing (docs/shipping.md has the pack's own benchmark,
benchmarks/pack_env.py), and a cold run also reports its time with that pack included.

With --orca-cluster, each init starts its own master and workers instead (no `master`), whose
launcher runs with this Python and decompresses with ISA-L when orca-core[pack] is installed.

The programs run in a throwaway venv with pyspark, ray[default], pandas, pyarrow and Orca (installed by
uv from this checkout): a data scientist's environment of about 265 MiB packed. With --this-env they run
in this environment instead (the test suite's, with torch: about 620 MiB packed, 2 GB unpacked).

Then, in such a venv, it packs the environment in layers as standalone ships it, installs one small
package, packs again, and reports the bytes packed and shipped the second time (the layers that
changed) against the whole.

Goals: warm <= 1.15x the init without shipping; cold <= 2x; re-shipped bytes <= 5%.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from _common import median, report, run_json

PROGRAM = """
import time
t0 = time.perf_counter()
import json, sys
from orca_core import init_orca_context, stop_orca_context
kwargs = {kwargs!r}
sc = init_orca_context(cluster_mode="standalone", master={master!r}, cores=1, memory="1g", num_nodes=2,
                       init_ray_on_spark={ray}, **kwargs)
prefixes = sorted(set(sc.parallelize(range(2), 2).map(lambda _: __import__("sys").prefix).collect()))
if {ray}:
    import ray
    assert ray.get(ray.remote(lambda: 1).remote()) == 1
seconds = time.perf_counter() - t0
stop_orca_context()
print(json.dumps({{"seconds": seconds, "prefixes": prefixes}}))
"""

PACK = """
import json, sys, time
t0 = time.perf_counter()
from orca_core.shipping import pack_environment
packed = pack_environment(progress=False, layered=True, prefix=sys.argv[1] if len(sys.argv) > 1 else None)
print(json.dumps({"seconds": time.perf_counter() - t0, "size": packed.size, "path": packed.path,
                  "packed": packed.packed, "layers": len(packed.layers)}))
"""
PACKAGES = ("pyspark", "ray[default]", "pandas", "pyarrow")
SMALL = "termcolor"


def user_venv(tmp: str, *extra: str) -> str:
    """A new venv with PACKAGES (and `extra` requirements) installed by uv; its folder."""
    import subprocess

    venv = os.path.join(tmp, "user-venv")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", venv], check=True)
    python = os.path.join(venv, "bin", "python")
    subprocess.run([uv(), "pip", "install", "-q", "--compile-bytecode", "--python", python, *PACKAGES, *extra],
                   check=True)
    return venv


def uv() -> str:
    import shutil

    return shutil.which("uv") or os.path.join(sys.prefix, "bin", "uv")


def reshipped(tmp: str, env: dict) -> None:
    """Bytes packed again after `pip install` of one small package, in a venv like a user's."""
    import subprocess

    venv = user_venv(tmp)
    python = os.path.join(venv, "bin", "python")
    first = run_json(PACK, env=env, timeout=3600, args=[venv])
    subprocess.run([uv(), "pip", "install", "-q", "--python", python, SMALL], check=True)
    second = run_json(PACK, env=env, timeout=3600, args=[venv])
    print(f"layered pack of a venv with {', '.join(PACKAGES)}: {first['size'] / 2**20:.0f} MiB in {first['layers']} "
          f"layers, {first['seconds']:.1f}s; after `pip install {SMALL}`: {second['packed'] / 2**20:.2f} MiB packed "
          f"and shipped in {second['seconds']:.1f}s, ratio {second['packed'] / second['size']:.4f} (goal <= 0.05)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="rounds of (no shipping, cold, warm)")
    parser.add_argument("--ray", action="store_true", help="also start Ray on Spark and run a Ray task")
    parser.add_argument("--orca-cluster", action="store_true", help="let each init start its own cluster here "
                        "(no master): the workers read the archive where it lies and unpack it with this Python")
    parser.add_argument("--this-env", action="store_true", help="run the programs in this environment instead of "
                        "a new venv with pyspark, ray, pandas, pyarrow and Orca")
    parser.add_argument("--skip-reship", action="store_true", help="leave out the re-shipped bytes measurement")
    args = parser.parse_args()
    from orca_standalone.daemons import LocalStandaloneCluster

    with tempfile.TemporaryDirectory(prefix="orca-ship-bench-") as tmp:
        env = {**os.environ, "ORCA_CACHE_DIR": os.path.join(tmp, "cache")}
        venv, python = sys.prefix, sys.executable
        if not args.this_env:  # Orca from this checkout, and the pyspark of the cluster the benchmark starts
            import pyspark

            root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            venv = user_venv(tmp, f"pyspark=={pyspark.__version__}", f"orca-core[pack] @ file://{root}",
                             *(os.path.join(root, "plugins", name) for name in ("orca_local", "orca_standalone")))
            python = os.path.join(venv, "bin", "python")
        pack = run_json(PACK, env=env, timeout=3600, python=python)
        print(f"archive: {pack['size'] / 2**20:.0f} MiB, packed in {pack['seconds']:.1f}s ({pack['path']})")
        cluster = None if args.orca_cluster else LocalStandaloneCluster(os.path.join(tmp, "cluster"), workers=2,
                                                                        cores=1, memory_mb=1024)
        master = cluster.start() if cluster else None
        plain, cold, warm = [], [], []
        try:  # a warm-up, not measured: the page cache, the driver's class-data archive
            run_json(PROGRAM.format(master=master, ray=args.ray, kwargs={}), env=env, python=python)
            for i in range(args.runs):
                nodes = os.path.join(tmp, f"node-envs-{i}")
                shipped = {"ship_python_env": True, "node_env_cache": nodes}
                order = [({}, plain), (shipped, cold), (shipped, warm)]  # cold before warm; plain first or last
                for kwargs, results in order if i % 2 == 0 else order[1:] + order[:1]:
                    code = PROGRAM.format(master=master, ray=args.ray, kwargs=kwargs)
                    result = run_json(code, env=env, python=python)
                    results.append(result["seconds"])
                    if kwargs:  # both executors ran the one environment of the host's cache
                        [prefix] = result["prefixes"]
                        assert os.path.dirname(prefix) == nodes, result
                    else:
                        assert result["prefixes"] == [venv], result
                print(f"round {i + 1}: no shipping {plain[-1]:.1f}s, cold {cold[-1]:.1f}s, warm {warm[-1]:.1f}s",
                      flush=True)
        finally:
            if cluster:
                cluster.stop()
    report("warm node cache vs no shipping", warm, plain, "<= 1.15")
    report("cold node cache vs no shipping", cold, plain, "<= 2")
    with_pack = [c + pack["seconds"] for c in cold]
    print(f"cold node cache with the pack included: median {median(with_pack):.2f}s, "
          f"ratio {median(with_pack) / median(plain):.2f}")
    if not args.skip_reship:
        with tempfile.TemporaryDirectory(prefix="orca-reship-bench-") as tmp:
            reshipped(tmp, {**os.environ, "ORCA_CACHE_DIR": os.path.join(tmp, "cache")})


if __name__ == "__main__":
    main()
