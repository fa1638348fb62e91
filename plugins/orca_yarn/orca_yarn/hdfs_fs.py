"""hdfs:// and webhdfs:// files for the "pandas" read backend, listed and read through WebHDFS.

The NameNode's web address is `ORCA_WEBHDFS_URL` when set (';'-separated for HA), else the URL's
authority mapped through the Hadoop conf dir (`HADOOP_CONF_DIR`): fs.defaultFS, the HA nameservices
and dfs.namenode.http-address. A webhdfs:// URL names the web address itself.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import shutil
import tempfile
from typing import BinaryIO
from urllib.parse import urlsplit

from orca_core.data.filesystems import hidden
from orca_core.errors import ConfigError
from orca_yarn.hadoop import HadoopConf, _http, user_name

ENV_URL = "ORCA_WEBHDFS_URL"
SPOOL_BYTES = 64 << 20


def for_hdfs(url: str) -> WebHdfsFileSystem:
    """The file system of an hdfs:// URL, its NameNode found from ORCA_WEBHDFS_URL or HADOOP_CONF_DIR."""
    return WebHdfsFileSystem(namenode_urls(urlsplit(url).netloc), user_name(None))


def for_webhdfs(url: str) -> WebHdfsFileSystem:
    """The file system of a webhdfs://host:port URL: the NameNode's web address is in it."""
    authority = urlsplit(url).netloc
    if not authority:
        raise ConfigError(f"{url!r} names no NameNode: write webhdfs://namenode:9870/path")
    return WebHdfsFileSystem([f"http://{authority}"], user_name(None))


def namenode_urls(authority: str) -> list[str]:
    """WebHDFS addresses for the NameNode an hdfs:// authority names ("" means fs.defaultFS)."""
    if os.environ.get(ENV_URL):
        return [u.strip().rstrip("/") for u in os.environ[ENV_URL].split(";") if u.strip()]
    folder = os.environ.get("HADOOP_CONF_DIR")
    if not folder or not os.path.isdir(folder):
        where = f"HADOOP_CONF_DIR={folder!r} is not a directory" if folder else "HADOOP_CONF_DIR is not set"
        raise ConfigError(
            f"cannot find the NameNode of hdfs://{authority}: {where}. Export HADOOP_CONF_DIR=/etc/hadoop/conf "
            f"(the folder with core-site.xml and hdfs-site.xml), or {ENV_URL}=http://namenode:9870"
        )
    conf = HadoopConf.load(folder)
    default = urlsplit(conf.get("fs.defaultFS") or "").netloc
    authority = authority or default
    if not authority:
        raise ConfigError(
            f"hdfs:/// paths need fs.defaultFS, which core-site.xml in {folder} does not set: "
            "write hdfs://namenode:8020/path"
        )
    host = authority.split(":")[0]
    nameservices = [n.strip() for n in (conf.get("dfs.nameservices") or "").split(",") if n.strip()]
    if host in nameservices:
        addresses = [
            conf.get(f"dfs.namenode.http-address.{host}.{nn.strip()}")
            for nn in (conf.get(f"dfs.ha.namenodes.{host}") or "").split(",") if nn.strip()
        ]
        if not any(addresses):
            raise ConfigError(
                f"hdfs-site.xml in {folder} names nameservice {host!r} but no dfs.namenode.http-address.{host}.<nn> "
                f"for its dfs.ha.namenodes.{host}; add them, or set {ENV_URL}"
            )
        return [_http(a, host) for a in addresses if a]
    if authority == default:
        return conf.namenode_urls()
    port = urlsplit("http://" + (conf.get("dfs.namenode.http-address") or "")).port or 9870
    return [f"http://{host}:{port}"]


class WebHdfsFileSystem:
    """Files of one HDFS cluster through WebHDFS. Holds addresses only: the client is made on first use."""

    def __init__(self, urls: list[str], user: str, timeout: float = 30.0):
        self.url = ";".join(urls)
        self.user = user
        self.timeout = timeout
        self._client = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_client": None}

    @property
    def client(self):
        if self._client is None:
            from hdfs import InsecureClient

            self._client = InsecureClient(self.url, user=self.user, timeout=(self.timeout, self.timeout))
        return self._client

    def expand(self, url: str) -> list[str]:
        """The visible files `url` names (a file, a folder's files, or a glob), sorted, as full URLs."""
        parts = urlsplit(url)
        prefix = f"{parts.scheme}://{parts.netloc}"
        path = posixpath.normpath("/" + parts.path.lstrip("/"))
        matches = self._glob(path) if _magic(path) else [path]
        files = []
        for match in matches:
            status = self._call(f"read the status of {match}", self.client.status, match, strict=False)
            if status is None:
                continue
            if status["type"] == "DIRECTORY":
                listing = self._call(f"list {match}", self.client.list, match, status=True)
                files += [posixpath.join(match, n) for n, s in listing if s["type"] == "FILE" and not hidden(n)]
            elif not hidden(posixpath.basename(match)):
                files.append(match)
        return [prefix + f for f in sorted(files)]

    def open(self, path: str) -> BinaryIO:
        """The file's bytes in a seekable file (spooled to disk past 64 MB): one WebHDFS read."""
        path = urlsplit(path).path or "/"
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (returned to the caller)

        def copy():
            with self.client.read(path) as reader:
                shutil.copyfileobj(reader, spool, 1 << 20)

        try:
            self._call(f"read {path}", copy)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool

    def _glob(self, pattern: str) -> list[str]:
        """Paths matching `pattern`, one path component at a time; hidden names match only a hidden pattern."""
        found = ["/"]
        for part in pattern.strip("/").split("/"):
            if not _magic(part):
                found = [posixpath.join(f, part) for f in found]
                continue
            matched = []
            for folder in found:
                status = self._call(f"read the status of {folder}", self.client.status, folder, strict=False)
                if status is None or status["type"] != "DIRECTORY":
                    continue
                for name in self._call(f"list {folder}", self.client.list, folder):
                    if fnmatch.fnmatchcase(name, part) and (not hidden(name) or hidden(part)):
                        matched.append(posixpath.join(folder, name))
            found = matched
        return sorted(found)

    def _call(self, what: str, call, *args, **kwargs):
        import requests
        from hdfs.util import HdfsError

        try:
            return call(*args, **kwargs)
        except HdfsError as error:
            kind = f" ({error.exception})" if getattr(error, "exception", None) else ""
            raise ConfigError(f"HDFS refused to {what}{kind} as user {self.user!r}: {error}") from error
        except requests.RequestException as error:
            raise ConfigError(
                f"cannot reach WebHDFS at {self.url} to {what}: {error.__class__.__name__}: {error}. Check "
                f"dfs.namenode.http-address in $HADOOP_CONF_DIR/hdfs-site.xml, or set {ENV_URL}"
            ) from error


def _magic(path: str) -> bool:
    return any(c in path for c in "*?[")
