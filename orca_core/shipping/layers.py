"""Layered environments: the files of an environment split into archives by the distributions
that installed them, each archive keyed by its own content.

A distribution of at least `LARGE` bytes, and every editable install, is a layer of its own; the
smaller ones share `GROUPS` layers, chosen by a hash of their name; what no distribution owns
(the interpreter link, activate scripts, `pyvenv.cfg`, loose files) is the `base` layer. A
distribution's own layer of more than `PART` bytes is split into parts of about that size (a
large file alone in its part), so a node unpacks a large distribution on all its cores. After
`pip install` of one small package only the group it falls in, and the layers of what it
upgraded, change. Nodes compose the layers into one folder (orca_core.shipping.nodecache) that
holds exactly the files the single archive holds.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from dataclasses import dataclass

from orca_core.shipping.installed import Distribution

LARGE = 8 << 20
PART = 192 << 20
GROUPS = 16
BASE = "base"


@dataclass(frozen=True)
class Layer:
    """One archive of a layered environment: `name` says what it holds, `key` its content."""

    name: str
    key: str
    owners: tuple[str, ...]  # the distributions in it ("" for what none owns)


def layer_of(dist: Distribution | None) -> str:
    """The layer a distribution's files go in (None: the files no distribution owns)."""
    if dist is None:
        return BASE
    if dist.editable or dist.bytes >= LARGE:
        return dist.name
    return f"group-{zlib.crc32(dist.name.encode()) % GROUPS:02d}"


def parts(dist: Distribution | None) -> int:
    """How many archives the layer of a distribution that has one of its own is split into."""
    if dist is None or dist.editable or dist.bytes < LARGE:
        return 1
    return max(1, min(-(-dist.bytes // PART), len(dist.files)))


def part_name(name: str, part: int) -> str:
    return f"{name}.{part}"  # normalized distribution names hold no "."


def split(items: list, size, count: int) -> list[list]:
    """`items` as `count` parts of about equal total `size(item)`: the largest first, each to the
    lightest part so far; each part keeps the order of `items`."""
    loads, members = [0] * count, [[] for _ in range(count)]
    for index in sorted(range(len(items)), key=lambda i: -size(items[i])):
        lightest = loads.index(min(loads))
        loads[lightest] += size(items[index])
        members[lightest].append(index)
    return [[items[i] for i in sorted(part)] for part in members]


def plan(found: dict[str, Distribution], fingerprints: dict[str, bytes], salt: bytes) -> list[Layer]:
    """The layers of an environment, each keyed by `salt` (what the packer and its options
    add) and the fingerprints of its owners; sorted by name, `base` first."""
    members: dict[str, list[str]] = {BASE: [""]}
    for owner in sorted(set(found) | set(fingerprints) - {""}):
        members.setdefault(layer_of(found.get(owner)), []).append(owner)
    layers = []
    for name, owners in members.items():
        digest = hashlib.sha256(b"orca-layer 1\0" + salt + name.encode() + b"\0")
        for owner in owners:
            digest.update(owner.encode() + b"\0" + fingerprints.get(owner, b""))
        count = parts(found.get(name)) if owners == [name] else 1
        if count == 1:
            layers.append(Layer(name, digest.hexdigest()[:32], tuple(owners)))
            continue
        for part in range(1, count + 1):
            keyed = digest.copy()
            keyed.update(f"part {part} of {count}".encode())
            layers.append(Layer(part_name(name, part), keyed.hexdigest()[:32], tuple(owners)))
    return sorted(layers, key=lambda layer: (layer.name != BASE, layer.name))


def composite_key(layers: list[Layer]) -> str:
    """The key of the environment the layers compose."""
    digest = hashlib.sha256(b"orca-layers 1\0")
    for layer in layers:
        digest.update(f"{layer.name}={layer.key}\0".encode())
    return digest.hexdigest()[:32]


class Assigner:
    """Which layer an archive member (a prefix-relative name) belongs to."""

    def __init__(self, found: dict[str, Distribution]):
        self.files = {path: dist for dist in found.values() for path in dist.files}
        self.tops = {(dist.site, top): dist for dist in found.values() for top in dist.tops}
        self.sites = sorted({dist.site for dist in found.values()}, key=len, reverse=True)

    def owner(self, target: str) -> Distribution | None:
        target = os.path.normpath(target)
        if target in self.files:
            return self.files[target]
        for site in self.sites:
            if target.startswith(site + os.sep):
                parts = target[len(site) + 1:].split(os.sep)
                if parts[0] == "__pycache__" and len(parts) == 2:  # a top-level module's bytecode
                    return self.tops.get((site, parts[1].split(".", 1)[0] + ".py"))
                return self.tops.get((site, parts[0]))
        return None

    def layer(self, target: str) -> str:
        return layer_of(self.owner(target))
