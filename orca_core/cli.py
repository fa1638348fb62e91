"""The `orca` command: `orca plugins`, `orca plan`, `orca pack`, `orca envs`, `orca doctor`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from importlib import metadata

from orca_core.errors import ConfigError, OrcaError


def _plugins(args) -> int:
    from orca_core.plugins import get_plugin_manager

    registry = get_plugin_manager()
    rows = []
    for name, (mode, provider) in sorted(registry.modes.items()):
        if name == mode.name:
            rows.append({"kind": "cluster mode", "name": name, "aliases": list(mode.aliases),
                         "distribution": provider.distribution, "version": provider.version,
                         "summary": mode.summary,
                         "options": [{"name": o.name, "default": o.default, "help": o.help} for o in mode.options]})
    for store, provider in registry.stores:
        rows.append({"kind": "data store", "name": store.name, "pattern": store.pattern,
                     "distribution": provider.distribution, "version": provider.version, "summary": store.summary})
    for packer, provider in registry.packers:
        rows.append({"kind": "env packer", "name": packer.name, "distribution": provider.distribution,
                     "version": provider.version, "summary": packer.summary})
    failed = [{"plugin": p.plugin, "distribution": p.distribution, "error": repr(e)}
              for p, e in registry.failed.values()]
    if args.json:
        print(json.dumps({"plugins": rows, "failed": failed}, indent=2))
        return 0
    for row in rows:
        aliases = f" (aliases: {', '.join(row['aliases'])})" if row.get("aliases") else ""
        print(f"{row['kind']:<13} {row['name']:<14} {row['distribution']} {row['version']}{aliases}: {row['summary']}")
        if row.get("options"):
            print(f"{'':<28} options: {', '.join(o['name'] for o in row['options'])}")
    for row in failed:
        print(f"failed        {row['plugin']:<14} {row['distribution']}: {row['error']}")
    return 0


def _value(text: str):
    """An --option value: JSON when it parses (numbers, true/false, lists), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _plan(args) -> int:
    from orca_core.context import plan_orca_context

    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            raise OrcaError(f"--option {item!r} must be KEY=VALUE")
        options[key] = _value(value)
    conf = {}
    for item in args.conf:
        key, sep, value = item.partition("=")
        if not sep:
            raise OrcaError(f"--conf {item!r} must be KEY=VALUE")
        conf[key] = value
    plan = plan_orca_context(
        cluster_mode=args.cluster_mode, cores=args.cores, memory=args.memory, num_nodes=args.num_nodes,
        init_ray_on_spark=args.init_ray_on_spark, extra_python_lib=args.extra_python_lib,
        conf=conf or None, runtime=args.runtime, **options,
    )
    print(plan.to_json())
    return 0


def _pack(args) -> int:
    from orca_core.shipping import pack_environment

    packed = pack_environment(
        penv_archive=args.penv_archive, conda_name=args.conda_name, keep_spark_jars=args.keep_spark_jars,
        compress=not args.no_compress, prefix=args.prefix, progress=False if args.quiet else None,
    )
    if args.json:
        print(json.dumps(dataclasses.asdict(packed), indent=2))
    else:
        print(f"{packed.path}\nkey {packed.key} ({packed.packer}, {packed.size / 1e6:,.1f} MB"
              f"{', cached' if packed.cached else ''})")
    return 0


def _doctor(args) -> int:
    problems = 0
    from orca_core import java

    try:
        found = java.find()
        print(f"java      {found.version} ({found.home}), from {found.source}: {found.reason}")
    except java.JavaError as error:
        problems += 1
        print(f"java      missing: {error}")
    for dist, hint in (("pyspark", "pip install pyspark"), ("ray", "pip install 'ray[default]'"),
                       ("orca-core", "pip install orca-core")):
        try:
            print(f"{dist:<9} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            problems += 1
            print(f"{dist:<9} missing: {hint}")
    print(f"python    {sys.version.split()[0]} ({sys.executable})")
    slow = uncompiled(["pyspark", "ray"])
    if slow:
        print(f"bytecode  {', '.join(slow)} not compiled: each Spark and Ray Python process compiles them at start "
              f"(about twice the CPU); run: {sys.executable} -m compileall -q -j0 " + " ".join(_folders(slow)))
    try:
        from orca_core.plugins import get_plugin_manager

        modes = sorted(get_plugin_manager().modes)
        print(f"modes     {', '.join(modes) or 'none: pip install orca-local'}")
        problems += 0 if modes else 1
    except OrcaError as error:
        problems += 1
        print(f"plugins   {error}")
    return 1 if problems else 0


def uncompiled(packages: list[str]) -> list[str]:
    """The installed packages among `packages` with no bytecode cache (uv installs none by default)."""
    import importlib.util

    found = []
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec and spec.origin and spec.origin.endswith(".py"):
            if not os.path.exists(importlib.util.cache_from_source(spec.origin)):
                found.append(name)
    return found


def _folders(packages: list[str]) -> list[str]:
    import importlib.util

    return [os.path.dirname(importlib.util.find_spec(name).origin) for name in packages]


def _plugin_commands(sub) -> None:
    """Subcommands of installed plugins; a broken plugin set must not break `orca doctor`."""
    from orca_core.plugins import get_plugin_manager

    try:
        registry = get_plugin_manager()
    except OrcaError:
        return
    registry.pm.hook.orca_cli_commands(subparsers=sub)


def _envs(args) -> int:
    from orca_core.shipping import nodecache

    root = args.cache or nodecache.default_root()
    found = nodecache.entries(root)
    if args.action == "list":
        if args.json:
            print(json.dumps({"cache": root, "environments": found}, indent=2))
        else:
            print(f"{root}: {len(found)} environments, {sum(r['bytes'] for r in found) / 2**20:.0f} MiB")
            for r in found:
                print(f"{r['key']}  {r['bytes'] / 2**20:8.0f} MiB  {'in use' if r['in_use'] else 'idle  '}  {r['path']}")
        return 0
    known = {r["key"] for r in found}
    unknown = sorted(set(args.keys) - known)
    if unknown:
        raise ConfigError(f"no environment {', '.join(unknown)} in {root}: `orca envs list` shows what is there")
    failed = 0
    for key in args.keys or sorted(known):
        if nodecache.remove(root, key):
            print(f"removed {key}")
        else:
            failed += bool(args.keys)
            print(f"kept {key}: a running process uses it", file=sys.stderr)
    layers = nodecache.prune(root)  # the unpacked layers the removed environments were made of
    if layers:
        print(f"removed {len(layers)} layers no environment is made of")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orca", description="Run Python programs on Spark and Ray clusters.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plugins", help="list installed cluster modes, data stores and env packers")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_plugins)
    p = sub.add_parser("plan", help="print the launch plan of a context as JSON, starting nothing")
    p.add_argument("--cluster-mode", default="local")
    p.add_argument("--cores", type=int)
    p.add_argument("--memory", default="2g")
    p.add_argument("--num-nodes", type=int, default=1)
    p.add_argument("--init-ray-on-spark", action="store_true")
    p.add_argument("--runtime", default="spark")
    p.add_argument("--extra-python-lib")
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark property")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a cluster-mode option")
    p.set_defaults(func=_plan)
    p = sub.add_parser("pack", help="pack the Python environment (or find it in the cache); print its path and key")
    p.add_argument("--penv-archive", help="an environment packed beforehand, shipped as is")
    p.add_argument("--conda-name", help="the conda environment to pack (default: the running environment)")
    p.add_argument("--prefix", help="the environment to pack (default: the running one)")
    p.add_argument("--keep-spark-jars", action="store_true", help="keep pyspark/jars (left out by default)")
    p.add_argument("--no-compress", action="store_true", help="store the tar uncompressed (local transport)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_pack)
    p = sub.add_parser("envs", help="list or clear the environments unpacked on this host for executors and Ray nodes")
    p.add_argument("action", choices=("list", "clear"), nargs="?", default="list")
    p.add_argument("keys", nargs="*", help="with clear: the environments to remove (default: every one not in use)")
    p.add_argument("--cache", help="the folder (default: $ORCA_NODE_ENVS, else node-envs in the Orca cache)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_envs)
    p = sub.add_parser("doctor", help="check Java, pyspark, ray and the installed plugins")
    p.set_defaults(func=_doctor)
    _plugin_commands(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except OrcaError as error:
        print(f"orca: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `orca plugins | head`
        sys.stdout = None
        return 0


if __name__ == "__main__":
    sys.exit(main())
