"""Resources parsed once into a typed spec: cores, memory in bytes, number of nodes."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from orca_core.errors import ConfigError, ConfigTypeError

_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
    "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
    "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
    "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}
_SIZE = re.compile(r"(?P<num>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>[a-z]*)")


def parse_memory(value: int | str, what: str = "memory") -> int:
    """Bytes from an int or a JVM-style size ("512m", "2g", "1.5g", "2GiB"; units are binary)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigTypeError(
            f"{what} must be a size such as '2g', '512m' or an int of bytes, "
            f"got {type(value).__name__} {value!r}"
        )
    if isinstance(value, int):
        size = value
    else:
        m = _SIZE.fullmatch(value.strip().lower())
        if not m or m["unit"] not in _UNITS:
            raise ConfigError(
                f"{what}={value!r} is not a size: write a number and a binary unit, "
                "such as '512m', '2g', '1.5g' or '2GiB'"
            )
        size = int(float(m["num"]) * _UNITS[m["unit"]])
    if size <= 0:
        raise ConfigError(f"{what}={value!r} must be larger than zero")
    return size


def spark_memory(value: str) -> int:
    """Bytes of a Spark memory setting: a bare number is MiB, as Spark reads it ("2048" is 2g)."""
    text = str(value).strip()
    return int(text) << 20 if text.isdigit() else parse_memory(text)


def jvm_size(nbytes: int) -> str:
    """A size Spark accepts: whole mebibytes ("1536m"), at least 1m."""
    return f"{max(1, nbytes >> 20)}m"


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigTypeError(f"{what} must be a whole number >= 1, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ConfigError(f"{what} must be a whole number >= 1, got {value}")
    return value


@dataclass(frozen=True)
class Resources:
    """What the user asked for: cores and memory per node, and how many nodes."""

    cores: int
    memory: int
    num_nodes: int

    @classmethod
    def parse(cls, cores=None, memory="2g", num_nodes=1) -> Resources:
        """Validate user input; `cores=None` means every core of this machine."""
        return cls(
            cores=(os.cpu_count() or 1) if cores is None else _positive_int(cores, "cores"),
            memory=parse_memory(memory),
            num_nodes=_positive_int(num_nodes, "num_nodes"),
        )

    @property
    def jvm_memory(self) -> str:
        return jvm_size(self.memory)
