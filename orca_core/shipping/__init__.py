"""Ship the Python environment: pack it once per content hash into a per-user cache.

    from orca_core.shipping import pack_environment

    env = pack_environment()            # the running venv or conda env
    conf["spark.archives"] = f"{env.path}#python_env"
    conf["spark.pyspark.python"] = f"./python_env/{env.python}"

With `layered=True` a packer that can (the venv packer) packs the environment as several
archives, one per group of distributions (orca_core.shipping.layers); `env.path` is then a
manifest naming them, which the nodes' cache of environments composes.

Packers are plugins (`orca_env_packers` yielding `EnvPacker` records); the built-in ones are
`archive` (`penv_archive=`), `conda` (conda-pack) and `venv` (venv-pack). The first, by descending
priority, whose `detect` accepts the request packs it.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass

from orca_core.errors import ConfigError, ConfigTypeError

KEY_VERSION = "1"  # bump when the archive layout Orca writes changes


@dataclass(frozen=True)
class PackedEnv:
    """A packed environment, ready to ship with `spark.archives=<path>#python_env`."""

    path: str  # local archive path in the cache (0600); a penv_archive as given
    key: str  # content-hash key
    format: str  # "tar.gz" | "tar" | "zip" ...
    packer: str  # "venv" | "conda" | "archive" | third-party name
    python: str  # interpreter path relative to the unpacked root, e.g. "bin/python"
    base_interpreter: str | None = None  # what a venv's bin/python links to; every node needs it
    python_version: str = ""
    size: int = 0  # archive bytes (of every layer)
    cached: bool = False  # found in the cache (or shipped as is) rather than packed by this call
    layers: tuple[str, ...] = ()  # a layered environment's archives, named by its manifest `path`
    packed: int = 0  # bytes this call packed (the layers that were not cached)

    def check_unpacked(self, root: str = "python_env") -> str:
        """On a node: the interpreter of this environment unpacked at `root`, or a clear LaunchError."""
        from orca_core.shipping.interpreter import check_unpacked

        return check_unpacked(root, self.python, self.base_interpreter, self.python_version)


def _request(penv_archive, conda_name, keep_spark_jars, compress, prefix):
    from orca_core.shipping.packer import PackRequest

    for name, value in (("keep_spark_jars", keep_spark_jars), ("compress", compress)):
        if not isinstance(value, bool):
            raise ConfigTypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    if conda_name is not None and not isinstance(conda_name, str):
        raise ConfigTypeError(f"conda_name must be a string, got {type(conda_name).__name__} {conda_name!r}")
    if penv_archive is not None and conda_name is not None:
        raise ConfigError(
            "pass either penv_archive= (an environment packed beforehand) or conda_name= (a conda environment "
            "to pack), not both"
        )
    prefix = os.path.abspath(os.fspath(prefix)) if prefix is not None else sys.prefix
    if not os.path.isdir(prefix):
        raise ConfigError(f"environment prefix {prefix} does not exist")
    return PackRequest(prefix, penv_archive, conda_name, keep_spark_jars, compress)


def select_packer(request):
    """The packer of the first registered `EnvPacker`, by descending priority, that detects `request`."""
    from orca_core.plugins import registry

    packers = registry().packers
    for record, _provider in packers:
        if record.packer.detect(request):
            packer = record.packer(request)
            packer.name = record.name
            return packer
    names = ", ".join(record.name for record, _ in packers) or "none"
    raise ConfigError(
        f"no installed env packer can pack the Python environment at {request.prefix} (installed packers: "
        f"{names}): it is neither a virtualenv/venv nor a conda environment. Run your program from a venv "
        "(python -m venv) or a conda environment, or pass penv_archive= an environment packed beforehand"
    )


def _salt(packer, request) -> bytes:
    return (f"orca-env {KEY_VERSION}\0{packer.name}\0{packer.format}\0"
            f"keep_spark_jars={request.keep_spark_jars}\0compress={request.compress}\0").encode()


def _key(packer, request, layered: bool = False) -> tuple[str, list | None]:
    """The environment's key, and its layers when it ships `layered` and the packer can."""
    layers = packer.layers(_salt(packer, request)) if layered and packer.prepacked() is None else None
    if layers:
        from orca_core.shipping.layers import composite_key

        return composite_key(layers), layers
    digest = hashlib.sha256(_salt(packer, request))
    packer.fingerprint(digest)
    return digest.hexdigest()[:32], None


@dataclass(frozen=True)
class PlannedEnv:
    """Where `pack_environment` with the same arguments will put the archive, known without packing."""

    path: str
    key: str
    format: str
    packer: str
    python: str
    layers: tuple[str, ...] = ()


def plan_environment(*, penv_archive=None, conda_name=None, keep_spark_jars=False, compress=True,
                     prefix=None, layered=False) -> PlannedEnv:
    """The archive `pack_environment(...)` will return: fast, side-effect free (plans use it)."""
    from orca_core.cache import cache_dir
    from orca_core.shipping import store

    request = _request(penv_archive, conda_name, keep_spark_jars, compress, prefix)
    packer = select_packer(request)
    key, layers = _key(packer, request, layered)
    folder = cache_dir("envs")
    if layers:
        return PlannedEnv(str(folder / store.manifest_name(packer.name, key)), key, packer.format, packer.name,
                          packer.python, tuple(str(folder / _layer_name(packer, layer)) for layer in layers))
    path = packer.prepacked() or str(folder / store.archive_name(packer.name, key, packer.format))
    return PlannedEnv(path, key, packer.format, packer.name, packer.python)


def _layer_name(packer, layer) -> str:
    from orca_core.shipping import store

    return store.archive_name(f"{packer.name}-{layer.name}", layer.key, packer.format)


def environment_key(*, penv_archive=None, conda_name=None, keep_spark_jars=False, compress=True,
                    prefix=None) -> tuple[str, str]:
    """(packer name, key) without packing: fast, side-effect free (used by `orca plan`).

    `prefix` is the environment to pack; by default the running one (`sys.prefix`).
    """
    request = _request(penv_archive, conda_name, keep_spark_jars, compress, prefix)
    packer = select_packer(request)
    return packer.name, _key(packer, request)[0]


def pack_environment(*, penv_archive=None, conda_name=None, keep_spark_jars=False, compress=True,
                     progress=None, prefix=None, layered=False) -> PackedEnv:
    """Pack (or reuse from cache) the running environment.

    `keep_spark_jars=False` leaves out `pyspark/jars`, which the cluster's Spark provides.
    `compress=False` stores the tar in a gzip container uncompressed (for a local transport).
    `layered=True` packs it in layers where the packer can (see above).
    `progress` is a callable `(done_bytes, total_bytes)`, None (lines on stderr) or False.
    """
    from orca_core.shipping.progress import Progress

    request = _request(penv_archive, conda_name, keep_spark_jars, compress, prefix)
    packer = select_packer(request)
    key, layers = _key(packer, request, layered)
    info = packer.describe()
    prepacked = packer.prepacked()
    if prepacked is not None:
        return PackedEnv(prepacked, key, packer.format, packer.name, packer.python, size=os.path.getsize(prepacked),
                         cached=True, **info)

    from orca_core.cache import cache_dir
    from orca_core.shipping import store

    folder = cache_dir("envs")
    name = store.archive_name(packer.name, key, packer.format)
    label = f"packing {packer.name} environment {packer.prefix}"
    record = {"key": key, "packer": packer.name, "format": packer.format, "python": packer.python,
              "prefix": packer.prefix, **info}

    def waiting():
        if progress is None:
            print(f"orca: waiting for another process packing {packer.prefix}", file=sys.stderr, flush=True)

    if layers:
        return _pack_layers(packer, key, layers, folder, record, Progress(progress, label), waiting, label)
    record, cached = store.store(folder, name, lambda tmp: packer.pack(tmp, Progress(progress, label)), record,
                                 on_wait=waiting, doing=label)
    return PackedEnv(str(folder / name), key, packer.format, packer.name, packer.python,
                     record.get("base_interpreter"), record.get("python_version", ""), record["size"], cached,
                     packed=0 if cached else record["size"])


def _pack_layers(packer, key, layers, folder, record, progress, waiting, label) -> PackedEnv:
    """Pack the layers not in the cache, then write the manifest that names them all."""
    from orca_core.shipping import store

    names = {layer.name: _layer_name(packer, layer) for layer in layers}
    missing = [layer.name for layer in layers if store.lookup(folder, names[layer.name]) is None]
    if missing:  # listing the environment's files is the one slow part of a cache hit
        progress.start(packer.layer_bytes(missing))
    sizes, packed = {}, 0
    for layer in layers:
        def write(tmp, name=layer.name):
            packer.pack_layer(name, tmp, progress)

        found, cached = store.store(folder, names[layer.name], write, {**record, "layer": layer.name},
                                    on_wait=waiting, doing=label)
        sizes[names[layer.name]] = found["size"]
        packed += 0 if cached else found["size"]
    if missing:
        progress.finish()
    ordered = sorted(sizes, key=lambda name: (-sizes[name], name))  # largest first: nodes start on those first
    manifest = store.manifest_name(packer.name, key)
    store.write_manifest(folder, manifest, ordered)
    return PackedEnv(str(folder / manifest), key, packer.format, packer.name, packer.python,
                     record.get("base_interpreter"), record.get("python_version", ""), sum(sizes.values()),
                     not packed, tuple(str(folder / names[layer.name]) for layer in layers), packed)


__all__ = ["PackedEnv", "PlannedEnv", "environment_key", "pack_environment", "plan_environment"]
