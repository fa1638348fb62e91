"""The Hadoop configuration directory: where the ResourceManager and the NameNode answer, and as whom."""

from __future__ import annotations

import os
import pwd
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from orca_core.errors import ConfigError

SITE_FILES = ("core-site.xml", "hdfs-site.xml", "yarn-site.xml")
_VAR = re.compile(r"\$\{([^}]+)\}")
_DEFAULTS = {
    "yarn.resourcemanager.hostname": "0.0.0.0",
    "yarn.resourcemanager.webapp.address": "${yarn.resourcemanager.hostname}:8088",
    "dfs.namenode.http-address": "0.0.0.0:9870",
}


def conf_dir(option: str | None) -> str:
    """The Hadoop conf dir from the `hadoop_conf` option or `HADOOP_CONF_DIR`; an error naming both if neither."""
    path = option or os.environ.get("HADOOP_CONF_DIR")
    if not path:
        raise ConfigError(
            "YARN needs the Hadoop configuration directory (the one holding yarn-site.xml): pass "
            "init_orca_context(..., hadoop_conf=\"/etc/hadoop/conf\") or export HADOOP_CONF_DIR=/etc/hadoop/conf"
        )
    path = os.path.abspath(os.path.expanduser(path))
    source = "hadoop_conf" if option else "HADOOP_CONF_DIR"
    if not os.path.isdir(path):
        raise ConfigError(f"{source}={path!r} is not a directory: point it at the folder holding yarn-site.xml")
    if not os.path.isfile(os.path.join(path, "yarn-site.xml")):
        raise ConfigError(
            f"{source}={path!r} has no yarn-site.xml: point it at your cluster's client configuration "
            "(the folder with core-site.xml, hdfs-site.xml and yarn-site.xml)"
        )
    return path


def user_name(option: str | None) -> str:
    """The Hadoop user: the option, else `HADOOP_USER_NAME`, else this process's user from the password database."""
    return option or os.environ.get("HADOOP_USER_NAME") or pwd.getpwuid(os.getuid()).pw_name


def read_site(path: str) -> dict[str, str]:
    """The name/value properties of one Hadoop *-site.xml file."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as error:
        raise ConfigError(f"cannot read Hadoop configuration {path}: {error}") from error
    props = {}
    for prop in root.iter("property"):
        name, value = prop.findtext("name"), prop.findtext("value")
        if name:
            props[name.strip()] = (value or "").strip()
    return props


@dataclass(frozen=True)
class HadoopConf:
    """The merged properties of a Hadoop conf dir, and the addresses Orca needs from them."""

    path: str
    props: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str) -> HadoopConf:
        props: dict[str, str] = {}
        for name in SITE_FILES:
            file = os.path.join(path, name)
            if os.path.isfile(file):
                props.update(read_site(file))
        return cls(path, props)

    def get(self, name: str, default: str | None = None) -> str | None:
        """A property with `${other.property}` references expanded, as Hadoop does."""
        value = self.props.get(name, _DEFAULTS.get(name, default))
        for _ in range(10):
            if value is None or "${" not in value:
                break
            value = _VAR.sub(lambda m: self.props.get(m[1], _DEFAULTS.get(m[1], os.environ.get(m[1], ""))), value)
        return value

    def default_fs(self) -> str:
        """fs.defaultFS, e.g. "hdfs://namenode:8020" (or "hdfs://nameservice1" with HA)."""
        fs = self.get("fs.defaultFS") or self.get("fs.default.name")
        if not fs:
            raise ConfigError(
                f"core-site.xml in {self.path} sets no fs.defaultFS: Orca stages the Python environment on "
                "HDFS and needs the cluster's default file system, e.g. hdfs://namenode:8020"
            )
        return fs.rstrip("/")

    def resourcemanager_urls(self) -> list[str]:
        """Web addresses of the ResourceManager(s), from yarn.resourcemanager.webapp.address (HA aware)."""
        ids = [i.strip() for i in (self.get("yarn.resourcemanager.ha.rm-ids") or "").split(",") if i.strip()]
        if (self.get("yarn.resourcemanager.ha.enabled") or "").lower() == "true" and ids:
            addresses = [
                self.get(f"yarn.resourcemanager.webapp.address.{i}")
                or f"{self.get(f'yarn.resourcemanager.hostname.{i}')}:8088"
                for i in ids
            ]
        else:
            addresses = [self.get("yarn.resourcemanager.webapp.address")]
        return [_http(a, self._fallback_host()) for a in addresses if a]

    def namenode_urls(self) -> list[str]:
        """WebHDFS addresses of the NameNode(s), from dfs.namenode.http-address (HA aware)."""
        fs_host = urlsplit(self.get("fs.defaultFS") or "").hostname or ""
        nameservices = [n.strip() for n in (self.get("dfs.nameservices") or "").split(",") if n.strip()]
        service = fs_host if fs_host in nameservices else (nameservices[0] if nameservices else None)
        addresses = []
        if service:
            for nn in (self.get(f"dfs.ha.namenodes.{service}") or "").split(","):
                address = self.get(f"dfs.namenode.http-address.{service}.{nn.strip()}")
                if nn.strip() and address:
                    addresses.append(address)
        if not addresses:
            addresses = [self.get("dfs.namenode.http-address")]
        return [_http(a, fs_host) for a in addresses if a]

    def _fallback_host(self) -> str:
        return urlsplit(self.get("fs.defaultFS") or "").hostname or "localhost"

    def max_allocation(self) -> tuple[int | None, int | None]:
        """yarn.scheduler.maximum-allocation-mb and -vcores from yarn-site.xml, where set."""
        return _int(self.get("yarn.scheduler.maximum-allocation-mb")), _int(
            self.get("yarn.scheduler.maximum-allocation-vcores")
        )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _http(address: str, fallback_host: str) -> str:
    """"host:port" (or a URL) as an http URL; a wildcard host becomes the fallback host."""
    if "://" not in address:
        address = "http://" + address
    parts = urlsplit(address)
    host = parts.hostname or fallback_host
    if host in ("0.0.0.0", "::", ""):
        host = fallback_host or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"
