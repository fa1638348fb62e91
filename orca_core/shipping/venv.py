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
        self._found = None
        self._by_layer = None

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

    def layers(self, salt: bytes) -> list:
        import hashlib

        from orca_core.shipping import layers

        digest = hashlib.sha256(salt)
        super().fingerprint(digest)
        for line in sorted(f"{k}={v}" for k, v in pyvenv_cfg(self.prefix).items()):
            digest.update(line.encode() + b"\n")
        return layers.plan(self._distributions(), installed.fingerprints(self.prefix, self._distributions()),
                           digest.digest())

    def describe(self) -> dict:
        cfg = pyvenv_cfg(self.prefix)
        python = os.path.join(self.prefix, "bin", "python")
        base = os.path.realpath(python) if os.path.islink(python) else None
        return {
            "base_interpreter": base,
            "python_version": cfg.get("version") or cfg.get("version_info", ""),
        }

    def _distributions(self) -> dict:
        if self._found is None:
            self._found = installed.distributions(self.prefix)
        return self._found

    def _plan(self):
        """The environment's files (venv-pack `File`s, source and archive name), and the editable
        sources to add as (File, distribution)."""
        if self._planned is None:
            from venv_pack.core import File

            prefix, patterns = self.prefix, (*DROPPED, *self.excluded())
            sites = [(site, installed.editables(site)) for site in installed.site_packages(prefix)]
            for site, editables in sites:
                site_rel = os.path.relpath(site, prefix)
                patterns += tuple(os.path.join(site_rel, hook) for e in editables for hook in e.hooks)
            chosen = [File(os.path.join(prefix, rel), rel) for rel in _walk(prefix, patterns)]
            extra = [
                (File(source, os.path.join(os.path.relpath(site, prefix), rel)), installed.normalize(e.distribution))
                for site, editables in sites for e in editables for module, path in e.modules
                for rel, source in installed.source_files(module, path)
            ]
            self._planned = chosen, extra
        return self._planned

    def _layered(self) -> dict[str, list]:
        """(File, whether it is an editable source) by layer name, in archive order."""
        if self._by_layer is None:
            from orca_core.shipping import layers

            found = self._distributions()
            assign = layers.Assigner(found)
            chosen, extra = self._plan()
            self._by_layer = {}
            for file in chosen:
                self._by_layer.setdefault(assign.layer(file.target), []).append((file, False))
            for file, dist in extra:
                self._by_layer.setdefault(layers.layer_of(found.get(dist)), []).append((file, True))
            for name, dist in found.items():
                count = layers.parts(dist)
                if count > 1 and name in self._by_layer:
                    files = self._by_layer.pop(name)
                    for part, members in enumerate(layers.split(files, lambda f: file_size(f[0].source), count), 1):
                        self._by_layer[layers.part_name(name, part)] = members
        return self._by_layer

    def total_bytes(self) -> int:
        chosen, extra = self._plan()
        return sum(file_size(f.source) for f in (*chosen, *(f for f, _ in extra)))

    def layer_bytes(self, names) -> int:
        by_layer = self._layered()
        return sum(file_size(f.source) for name in names for f, _ in by_layer.get(name, ()))

    def _venv_pack(self, tar):
        from venv_pack.core import Packer as VenvPackPacker
        from venv_pack.core import check_prefix

        return VenvPackPacker(check_prefix(self.prefix), tar, None)

    def add_files(self, tar) -> None:
        packer = self._venv_pack(tar)
        chosen, extra = self._plan()
        for file in chosen:
            packer.add(file)
        for file, _ in extra:
            tar.add(file.source, file.target)
        packer.finish()

    def add_layer(self, name: str, tar) -> None:
        from orca_core.shipping.layers import BASE

        packer = self._venv_pack(tar)
        for file, editable in self._layered().get(name, ()):
            if editable:
                tar.add(file.source, file.target)
            else:
                packer.add(file)
        if name == BASE:
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
