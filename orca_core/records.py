"""Typed, frozen records that plugins yield from the registration hooks."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Option:
    """One option a cluster mode accepts as a keyword of `init_orca_context`.

    `type` is the accepted type (or tuple of types); `None` is always accepted and means
    "not given". `choices`, when set, lists the accepted values.
    """

    name: str
    type: type | tuple[type, ...] = str
    default: Any = None
    help: str = ""
    choices: tuple = ()


@dataclass(frozen=True)
class ClusterMode:
    """A cluster mode: its name, aliases, the backend class that runs it, and its options.

    `backend` is a `orca_core.backend.ClusterBackend` subclass; it is only instantiated for
    the selected mode, so plugin modules stay cheap to import.
    """

    name: str
    backend: type
    summary: str
    aliases: tuple[str, ...] = ()
    options: tuple[Option, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class DataStore:
    """A training data store selected by `OrcaContext.train_data_store`.

    `pattern` is a regular expression matched against the whole setting ("DRAM",
    r"DISK_(?P<n>\\d+)"). `validate(match)` may reject a setting the pattern admits (e.g. "DISK_1")
    by raising `ConfigError`. `open(source, match, **options)` returns an
    `orca_core.data.stores.TrainingStore` holding the source; `options` are the keywords of
    `open_training_data` the store accepts (e.g. `local_dir`), each validated before `open`.
    """

    name: str
    pattern: str
    open: Callable[..., Any]
    summary: str
    validate: Callable[[re.Match], None] | None = None
    options: tuple[Option, ...] = ()

    def match(self, setting: str) -> re.Match | None:
        return re.fullmatch(self.pattern, setting)


@dataclass(frozen=True)
class EnvPacker:
    """A way of packing a Python environment into an archive that Spark can unpack.

    `packer` is a class implementing `orca_core.shipping` 's packer protocol; `priority`
    orders automatic detection (higher first).
    """

    name: str
    packer: type
    summary: str
    priority: int = 0
    options: tuple[Option, ...] = field(default=())


@dataclass(frozen=True)
class FileSystemProvider:
    """A file system the "pandas" read backend lists and opens files with, for URLs of one scheme.

    `factory(url)` returns an object with `expand(url) -> list[str]` (the files a path, folder or
    glob names, sorted, skipping names that start with "_" or ".") and `open(path) -> binary file`.
    It runs on the driver and its result is pickled into the reading tasks, so it must be picklable.
    """

    scheme: str
    factory: Callable[[str], Any]
    summary: str
