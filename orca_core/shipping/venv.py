"""The `venv` packer: a virtualenv or venv, packed with venv-pack's relocation rules.

venv-pack rewrites the shebangs of `bin/` scripts and adds its activate scripts; its archives do
not contain the interpreter: `bin/python` is a link to the base interpreter, which must exist at
the same path on every node (see `orca_core.shipping.interpreter`). Editable installs, which
venv-pack refuses, are shipped as copies of their sources in site-packages.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os

from orca_core.errors import ConfigError
from orca_core.shipping import installed
from orca_core.shipping.packer import Packer, PackRequest, file_size

# venv-pack adds its own activate scripts and pyvenv.cfg / orig-prefix.txt
DROPPED = ("bin/activate", "bin/activate.csh", "bin/activate.fish", "pyvenv.cfg", "lib/python*/orig-prefix.txt")


def is_venv(prefix: str) -> bool:
    """A venv (`pyvenv.cfg`) or an old-style virtualenv (`orig-prefix.txt`)."""
    return os.path.isfile(os.path.join(prefix, "pyvenv.cfg")) or bool(
        [p for p in installed.site_packages(prefix) if os.path.isfile(os.path.join(p, "..", "orig-prefix.txt"))]
    )


def pyvenv_cfg(prefix: str) -> dict[str, str]:
    values = {}
    try:
        with open(os.path.join(prefix, "pyvenv.cfg")) as f:
            for line in f:
                key, sep, value = line.partition("=")
                if sep:
                    values[key.strip().lower()] = value.strip()
    except OSError:
        pass
    return values


class VenvPacker(Packer):
    """Packs a virtualenv/venv with venv-pack's packer, in parallel, without the cluster's Spark jars."""

    def __init__(self, request: PackRequest):
        super().__init__(request)
        self._planned = None

    @classmethod
    def detect(cls, request: PackRequest) -> bool:
        if request.penv_archive or request.conda_name or not is_venv(request.prefix):
            return False
        if importlib.util.find_spec("venv_pack") is None:
            raise ConfigError(
                f"{request.prefix} is a virtual environment, and packing it needs venv-pack: "
                "pip install 'orca-core[pack]' (or pass penv_archive= an archive packed beforehand)"
            )
        return True

    def fingerprint(self, digest) -> None:
        super().fingerprint(digest)
        for line in sorted(f"{k}={v}" for k, v in pyvenv_cfg(self.prefix).items()):
            digest.update(line.encode() + b"\n")
        installed.fingerprint(self.prefix, digest)

    def describe(self) -> dict:
        cfg = pyvenv_cfg(self.prefix)
        python = os.path.join(self.prefix, "bin", "python")
        base = os.path.realpath(python) if os.path.islink(python) else None
        return {
            "base_interpreter": base,
            "python_version": cfg.get("version") or cfg.get("version_info", ""),
        }

    def _plan(self):
        """(source, archive name) of the environment's files, and of the editable sources to add."""
        if self._planned is None:
            from venv_pack.core import File

            prefix, patterns = self.prefix, (*DROPPED, *self.excluded())
            sites = [(site, installed.editables(site)) for site in installed.site_packages(prefix)]
            for site, editables in sites:
                site_rel = os.path.relpath(site, prefix)
                patterns += tuple(os.path.join(site_rel, hook) for e in editables for hook in e.hooks)
            chosen = [File(os.path.join(prefix, rel), rel) for rel in _walk(prefix, patterns)]
            extra = [
                File(source, os.path.join(os.path.relpath(site, prefix), rel))
                for site, editables in sites for e in editables for module, path in e.modules
                for rel, source in installed.source_files(module, path)
            ]
            self._planned = chosen, extra
        return self._planned

    def total_bytes(self) -> int:
        chosen, extra = self._plan()
        return sum(file_size(f.source) for f in (*chosen, *extra))

    def add_files(self, tar) -> None:
        from venv_pack.core import Packer as VenvPackPacker
        from venv_pack.core import check_prefix

        context = check_prefix(self.prefix)
        packer = VenvPackPacker(context, tar, None)
        chosen, extra = self._plan()
        for file in chosen:
            packer.add(file)
        for file in extra:
            tar.add(file.source, file.target)
        packer.finish()


def _excluded(rel: str, patterns: tuple[str, ...]) -> bool:
    return rel.endswith("~") or any(fnmatch.fnmatch(rel, p) for p in patterns)


def _walk(prefix: str, patterns: tuple[str, ...]) -> list[str]:
    """Prefix-relative names of the files, links and empty folders to pack, as venv-pack lists them."""
    found = []
    for name in sorted(os.listdir(prefix)):
        full = os.path.join(prefix, name)
        if os.path.islink(full) or not os.path.isdir(full):
            found.append(name)
            continue
        for root, dirs, names in os.walk(full):
            rel_root = os.path.relpath(root, prefix)
            dirs[:] = [d for d in dirs if not _excluded(os.path.join(rel_root, d), patterns)]
            if not dirs and not names:
                found.append(rel_root)
            found.extend(os.path.join(rel_root, n) for n in names)
            found.extend(os.path.join(rel_root, d) for d in dirs if os.path.islink(os.path.join(root, d)))
    return [rel for rel in found if not _excluded(rel, patterns)]
