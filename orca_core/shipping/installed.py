"""What is installed in an environment: its site-packages, distributions and editable sources.

`fingerprint` identifies the installed content from metadata alone: each distribution's folder
name (name and version) and RECORD (a hash of every file it installed), `.pth` files, the size and
time of loose top-level files, and the bytes of editable sources. It does not read the installed
files themselves, so it takes milliseconds for a large environment.
"""

from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass

from orca_core.errors import ConfigError

SKIP = ("__pycache__",)
_MAP_CALL = re.compile(r"""\.map(?:_module)?\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]""")


@dataclass(frozen=True)
class Editable:
    """An editable install: the modules it maps to source paths, and the hook files that map them."""

    distribution: str
    modules: tuple[tuple[str, str], ...]  # (import name, package folder or .py file)
    hooks: tuple[str, ...]  # site-packages-relative .pth / finder files


def site_packages(prefix: str) -> list[str]:
    """The site-packages folders of an environment, each once (lib64 is often a link to lib)."""
    found, seen = [], set()
    for pattern in ("lib/python*/site-packages", "lib64/python*/site-packages", "Lib/site-packages"):
        for path in sorted(glob.glob(os.path.join(prefix, pattern))):
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                found.append(path)
    return found


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


@dataclass(frozen=True)
class Distribution:
    """An installed distribution, from its RECORD: the prefix-relative paths it installed, the
    names in its site-packages it owns (packages, modules, `.pth` files) and their bytes."""

    name: str  # normalized: lower case, runs of "-_." as "-"
    site: str  # its site-packages, relative to the prefix
    files: frozenset[str]
    tops: frozenset[str]
    bytes: int
    metadata: bytes = b""  # its RECORD and direct_url.json, as read
    editable: Editable | None = None


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distributions(prefix: str) -> dict[str, Distribution]:
    """Every distribution installed in `prefix` (its dist-info folders), by normalized name."""
    found = {}
    for site in site_packages(prefix):
        site_rel = os.path.relpath(site, prefix)
        editable = {normalize(e.distribution): e for e in editables(site)}
        for info in sorted(glob.glob(os.path.join(site, "*.dist-info"))):
            folder = os.path.basename(info)
            name = normalize(folder.split("-")[0])
            files, tops, size = {os.path.join(site_rel, folder)}, {folder}, 0
            record = _read(os.path.join(info, "RECORD"))
            for row in record.decode(errors="replace").splitlines():
                path, _, rest = row.partition(",")
                if not path:
                    continue
                files.add(os.path.normpath(os.path.join(site_rel, path)))
                top = os.path.normpath(path).split(os.sep, 1)[0]
                if top not in ("..", "__pycache__"):
                    tops.add(top)
                length = rest.rpartition(",")[2]
                size += int(length) if length.isdigit() else 0
            found[name] = Distribution(name, site_rel, frozenset(files), frozenset(tops), size,
                                       record + _read(os.path.join(info, "direct_url.json")), editable.get(name))
    return found


def fingerprints(prefix: str, found: dict[str, Distribution] | None = None) -> dict[str, bytes]:
    """A digest of what is installed in `prefix` per owner: each distribution (by normalized name)
    and "" for what no distribution owns. `found` is `distributions(prefix)`, if known."""
    import hashlib

    found = distributions(prefix) if found is None else found
    digests: dict[str, object] = {}

    def feed(owner: str, data: bytes) -> None:
        digests.setdefault(owner, hashlib.sha256()).update(data)

    for site in site_packages(prefix):
        site_rel = os.path.relpath(site, prefix)
        here = [d for d in found.values() if d.site == site_rel]
        owned = {top: d.name for d in here for top in d.tops}
        feed("", site_rel.encode() + b"\0")
        with os.scandir(site) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                name = entry.name
                if name in SKIP or name.endswith(".pyc"):
                    continue
                owner = owned.get(name, "")
                feed(owner, name.encode() + b"\0")
                if name.endswith(".dist-info") and entry.is_dir():
                    dist = found.get(owner)  # None for a second dist-info of one name
                    feed(owner, dist.metadata if dist else _read(os.path.join(entry.path, "RECORD"))
                         + _read(os.path.join(entry.path, "direct_url.json")))
                elif name.endswith(".egg-info") and entry.is_dir():
                    for part in ("PKG-INFO", "installed-files.txt", "SOURCES.txt"):
                        feed(owner, _read(os.path.join(entry.path, part)))
                elif name.endswith((".pth", ".egg-info")) and entry.is_file():
                    feed(owner, _read(entry.path))
                elif entry.is_file(follow_symlinks=False) and not owner:
                    st = entry.stat(follow_symlinks=False)
                    feed(owner, f"{st.st_size}:{st.st_mtime_ns}".encode())
        for dist in here:
            for name, path in dist.editable.modules if dist.editable else ():
                for rel, source in source_files(name, path):
                    feed(dist.name, rel.encode() + b"\0" + _read(source))
    return {owner: digest.digest() for owner, digest in digests.items()}


def fingerprint(prefix: str, digest) -> None:
    """Feed what is installed in `prefix` into `digest` (a hashlib object)."""
    for owner, value in sorted(fingerprints(prefix).items()):
        digest.update(owner.encode() + b"\0" + value)


def editables(site: str) -> list[Editable]:
    """Every editable distribution in a site-packages folder (PEP 610 `direct_url.json`)."""
    found = []
    for info in sorted(glob.glob(os.path.join(site, "*.dist-info"))):
        try:
            direct = json.loads(_read(os.path.join(info, "direct_url.json")) or b"{}")
        except ValueError:
            continue
        if not (direct.get("dir_info") or {}).get("editable"):
            continue
        dist = os.path.basename(info).split("-")[0]
        modules: dict[str, str] = {}
        hooks = []
        for line in _read(os.path.join(info, "RECORD")).decode().splitlines():
            rel = line.split(",")[0]
            path = os.path.normpath(os.path.join(site, rel))
            if not rel or os.path.dirname(path) != os.path.normpath(site):
                continue
            if rel.endswith(".pth"):
                hooks.append(rel)
                modules.update(_pth_modules(path, site))
            elif rel.endswith(".py"):
                mapped = _finder_modules(path)
                if mapped:
                    hooks.append(rel)
                    modules.update(mapped)
        if not modules:
            raise ConfigError(
                f"cannot tell where the sources of the editable install {dist} ({info}) are, so they cannot be "
                f"shipped; reinstall it without -e, or in path mode: "
                f"pip install -e <project> --config-settings editable_mode=compat"
            )
        found.append(Editable(dist, tuple(sorted(modules.items())), tuple(hooks)))
    return found


def _pth_modules(pth: str, site: str) -> dict[str, str]:
    """Top-level packages and modules of the folders a path-mode `.pth` file adds."""
    modules = {}
    for line in _read(pth).decode().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "import ", "import\t")):
            continue
        root = os.path.join(site, line)
        if not os.path.isdir(root):
            continue
        for child in sorted(os.listdir(root)):
            path = os.path.join(root, child)
            if child.startswith(".") or child in SKIP:
                continue
            if os.path.isfile(os.path.join(path, "__init__.py")):
                modules[child] = path
            elif child.endswith(".py") and os.path.isfile(path) and child[:-3].isidentifier():
                modules[child[:-3]] = path
    return modules


def _finder_modules(path: str) -> dict[str, str]:
    """Modules mapped by an import-hook module (setuptools' MAPPING, the editables redirector)."""
    text = _read(path).decode(errors="replace")
    modules = {}
    if "MAPPING" in text:
        import ast

        try:
            tree = ast.parse(text)
        except SyntaxError:
            tree = None
        for node in ast.walk(tree) if tree else ():
            target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and getattr(target, "id", None) == "MAPPING":
                try:
                    modules.update({str(k): str(v) for k, v in ast.literal_eval(node.value).items()})
                except ValueError:
                    pass
    for name, source in _MAP_CALL.findall(text):
        modules[name] = os.path.dirname(source) if os.path.basename(source) == "__init__.py" else source
    return {name: source for name, source in modules.items() if os.path.exists(source)}


def source_files(name: str, path: str) -> list[tuple[str, str]]:
    """(archive name under site-packages, source file) of an editable module, sorted."""
    if os.path.isfile(path):
        return [(name + os.path.splitext(path)[1], path)]
    files = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in SKIP and not d.startswith("."))
        rel_root = os.path.relpath(root, path)
        for file in sorted(names):
            if file.endswith(".pyc"):
                continue
            rel = os.path.normpath(os.path.join(name, rel_root, file))
            files.append((rel, os.path.join(root, file)))
    return files
