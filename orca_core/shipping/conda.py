"""The `conda` packer: a conda environment (one with `conda-meta/`), packed with conda-pack.

The archive carries the environment's own Python. Text files that embed the build prefix are
listed for `bin/conda-unpack`; shebangs are rewritten at pack time, which is what PySpark workers
need. A named environment (`conda_name=`) is found in the usual places without running conda.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import importlib.util
import json
import os

from orca_core.errors import ConfigError
from orca_core.shipping import installed
from orca_core.shipping.packer import Packer, PackRequest, file_size


def is_conda(prefix: str) -> bool:
    return os.path.isdir(os.path.join(prefix, "conda-meta"))


def _roots() -> list[str]:
    """Conda installations this user may have, from the environment and the usual places."""
    roots = []
    for var in ("CONDA_ROOT", "MAMBA_ROOT_PREFIX"):
        if os.environ.get(var):
            roots.append(os.environ[var])
    if os.environ.get("CONDA_EXE"):
        roots.append(os.path.dirname(os.path.dirname(os.environ["CONDA_EXE"])))
    active = os.environ.get("CONDA_PREFIX")
    if active:
        parent = os.path.dirname(active)
        roots.append(os.path.dirname(parent) if os.path.basename(parent) == "envs" else active)
    home = os.path.expanduser("~")
    roots += [os.path.join(home, n) for n in ("miniconda3", "anaconda3", "miniforge3", "mambaforge")]
    roots.append("/opt/conda")
    return list(dict.fromkeys(os.path.abspath(r) for r in roots))


def _env_dirs() -> list[str]:
    dirs = [d for d in os.environ.get("CONDA_ENVS_PATH", "").split(os.pathsep) if d]
    dirs += [os.path.join(root, "envs") for root in _roots()]
    dirs.append(os.path.join(os.path.expanduser("~"), ".conda", "envs"))
    return list(dict.fromkeys(os.path.abspath(d) for d in dirs))


def known_envs() -> dict[str, str]:
    """Name -> prefix of every conda environment found, without running conda."""
    envs = {}
    for root in _roots():
        if is_conda(root):
            envs.setdefault("base", root)
    for folder in _env_dirs():
        for prefix in sorted(glob.glob(os.path.join(folder, "*", "conda-meta"))):
            envs.setdefault(os.path.basename(os.path.dirname(prefix)), os.path.dirname(prefix))
    try:
        with open(os.path.join(os.path.expanduser("~"), ".conda", "environments.txt")) as f:
            for line in f:
                prefix = line.strip()
                if prefix and is_conda(prefix):
                    envs.setdefault(os.path.basename(prefix), prefix)
    except OSError:
        pass
    return envs


def env_prefix(name: str) -> str:
    """The prefix of the conda environment `name`, or a ConfigError naming where it looked."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"conda_name must be the name of a conda environment, got {name!r}")
    envs = known_envs()
    if name in envs:
        return envs[name]
    known = ", ".join(sorted(envs)) or "none"
    raise ConfigError(
        f'conda environment "{name}" does not exist; environments found: {known} (looked in '
        f"{', '.join(_env_dirs())}, CONDA_ENVS_PATH and ~/.conda/environments.txt). Create it with "
        f"`conda create -n {name} python`, or pass the name of an existing one"
    )


class CondaPacker(Packer):
    """Packs a conda environment with conda-pack's packer, in parallel, without the cluster's Spark jars."""

    @classmethod
    def detect(cls, request: PackRequest) -> bool:
        if request.penv_archive or not (request.conda_name or is_conda(request.prefix)):
            return False
        if request.conda_name:
            env_prefix(request.conda_name)
        if importlib.util.find_spec("conda_pack") is None:
            raise ConfigError(
                "packing a conda environment needs conda-pack: pip install 'orca-core[pack]' "
                "(or conda install conda-pack), or pass penv_archive= an archive packed beforehand"
            )
        return True

    def __init__(self, request: PackRequest):
        super().__init__(request)
        self._prefix = env_prefix(request.conda_name) if request.conda_name else request.prefix
        self._files = None

    @property
    def prefix(self) -> str:
        return self._prefix

    def fingerprint(self, digest) -> None:
        super().fingerprint(digest)
        meta = os.path.join(self.prefix, "conda-meta")
        for path in sorted(glob.glob(os.path.join(meta, "*.json"))):
            with open(path, "rb") as f:
                digest.update(os.path.basename(path).encode() + b"\0" + hashlib.sha256(f.read()).digest())
        installed.fingerprint(self.prefix, digest)

    def describe(self) -> dict:
        version = ""
        for path in glob.glob(os.path.join(self.prefix, "conda-meta", "python-*.json")):
            with open(path) as f:
                record = json.load(f)
            if record.get("name") == "python":
                version = record.get("version", "")
        return {"base_interpreter": None, "python_version": version}

    def _plan(self):
        if self._files is None:
            from conda_pack import CondaEnv

            env = CondaEnv.from_prefix(self.prefix, ignore_editable_packages=True)
            patterns = self.excluded()
            hooks = set()
            for site in installed.site_packages(self.prefix):
                site_rel = os.path.relpath(site, self.prefix)
                hooks |= {os.path.join(site_rel, h) for e in installed.editables(site) for h in e.hooks}
            self._files = [
                f for f in env.files
                if f.target not in hooks and not any(fnmatch.fnmatch(f.target, p) for p in patterns)
            ]
            self._extra = [
                (source, os.path.join(os.path.relpath(site, self.prefix), rel))
                for site in installed.site_packages(self.prefix) for e in installed.editables(site)
                for module, path in e.modules for rel, source in installed.source_files(module, path)
            ]
        return self._files, self._extra

    def total_bytes(self) -> int:
        files, extra = self._plan()
        return sum(file_size(f.source) for f in files) + sum(file_size(s) for s, _ in extra)

    def add_files(self, tar) -> None:
        from conda_pack.core import Packer as CondaPackPacker

        packer = CondaPackPacker(self.prefix, tar)
        files, extra = self._plan()
        for file in files:
            packer.add(file)
        for source, target in extra:
            tar.add(source, target)
        packer.finish()
