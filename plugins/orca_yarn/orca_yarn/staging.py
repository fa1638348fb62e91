"""Uploading an archive to HDFS once per content hash: a temporary name, then an atomic rename."""

from __future__ import annotations

import logging
import os
import posixpath
import sys
import time
import uuid

from orca_core.errors import LaunchError

log = logging.getLogger("orca")
STALE_TMP_SECONDS = 24 * 3600
PROGRESS_FROM = 16 << 20
FILE_MODE, FOLDER_MODE = "600", "700"  # of what Orca uploads, and of the folders it makes


def visibility(file_mode: str, folder_mode: str) -> str:
    """How YARN localises an archive of `file_mode` in folders of `folder_mode` (Spark's rule): PUBLIC, shared by
    every user of a node, when others may read the file and enter its folders; else PRIVATE, per user."""
    public = int(file_mode, 8) & 0o004 and int(folder_mode, 8) & 0o001
    return "PUBLIC" if public else "PRIVATE"


class _Progress:
    """A file reader that reports upload progress every 10%; sized, so requests sends Content-Length."""

    def __init__(self, path: str, what: str):
        self.file = open(path, "rb")  # noqa: SIM115 (closed by the uploader)
        self.size = os.fstat(self.file.fileno()).st_size
        self.what = what
        self.sent = 0
        self.reported = 0

    def __len__(self) -> int:
        return self.size

    def read(self, n: int = -1) -> bytes:
        chunk = self.file.read(n)
        self.sent += len(chunk)
        tenth = self.sent * 10 // max(self.size, 1)
        if tenth > self.reported and self.size >= PROGRESS_FROM:
            self.reported = tenth
            print(f"orca: uploading {self.what}: {tenth * 10}% of {self.size >> 20} MB", file=sys.stderr, flush=True)
        return chunk

    def close(self) -> None:
        self.file.close()


class HdfsStage:
    """A private Orca folder on HDFS (`root`, 0700, as every folder under it) holding archives named by
    content (0600 each)."""

    def __init__(self, urls: list[str], user: str, root: str | None = None, timeout: float = 10.0,
                 kerberos: bool = False):
        from hdfs import InsecureClient

        url = ";".join(u.rstrip("/") for u in urls)
        if kerberos:
            try:
                from hdfs.ext.kerberos import KerberosClient
            except ImportError as error:
                from orca_core.errors import ConfigError

                raise ConfigError(
                    "principal/keytab need Kerberos for WebHDFS: pip install 'orca-yarn[kerberos]'"
                ) from error
            self.client = KerberosClient(url, timeout=(timeout, 10 * timeout))
        else:
            self.client = InsecureClient(url, user=user, timeout=(timeout, 10 * timeout))
        self.url = url
        self.root = root.rstrip("/") if root else None

    def _do(self, what: str, call, *args, **kwargs):
        import requests
        from hdfs.util import HdfsError

        try:
            return call(*args, **kwargs)
        except HdfsError as error:
            kind = f" ({error.exception})" if getattr(error, "exception", None) else ""
            hint = ""
            if getattr(error, "exception", None) in ("AccessControlException", "SecurityException"):
                hint = ": check that the Hadoop user may write there (hadoop_user_name=..., or Kerberos principal)"
            raise LaunchError(f"HDFS refused to {what}{kind}: {error}{hint}") from error
        except requests.RequestException as error:
            raise LaunchError(
                f"cannot reach WebHDFS at {self.url} to {what}: {error.__class__.__name__}: {error}. Check "
                "dfs.namenode.http-address in hdfs-site.xml, or pass webhdfs_url=\"http://namenode:9870\""
            ) from error

    def status(self, path: str) -> dict | None:
        return self._do(f"read the status of {path}", self.client.status, path, strict=False)

    def ensure_folder(self, folder: str) -> None:
        """Create `folder` (and parents) and make it 0700."""
        self._do(f"create {folder}", self.client.makedirs, folder, permission=FOLDER_MODE)
        self._do(f"set the permission of {folder}", self.client.set_permission, folder, FOLDER_MODE)

    def upload(self, local: str, remote: str, what: str) -> bool:
        """Put `local` at `remote` unless an intact copy is there; True if bytes were sent.

        Concurrent uploads of one name each write a private temporary file, then rename it;
        the first rename wins and the others remove their copy.
        """
        size = os.path.getsize(local)
        existing = self.status(remote)
        if existing is not None and existing.get("length") == size:
            log.info("Orca: %s already on HDFS at %s", what, remote)
            return False
        folder = posixpath.dirname(remote)
        if self.root and folder.startswith(self.root + "/"):
            self.ensure_folder(self.root)
        self.ensure_folder(folder)
        self._remove_stale_tmp(folder)
        if existing is not None:
            self._do(f"remove the incomplete {remote}", self.client.delete, remote)
        tmp = posixpath.join(folder, f".{posixpath.basename(remote)}.{uuid.uuid4().hex}.tmp")
        reader = _Progress(local, what)
        try:
            self._do(f"write {tmp}", self.client.write, tmp, data=reader, permission=FILE_MODE)
        finally:
            reader.close()
        self._do(f"set the permission of {tmp}", self.client.set_permission, tmp, FILE_MODE)
        try:
            self._do(f"rename {tmp} to {remote}", self.client.rename, tmp, remote)
        except LaunchError:
            won = self.status(remote)
            self._do(f"remove {tmp}", self.client.delete, tmp)
            if won is None or won.get("length") != size:
                raise
            return True
        print(f"orca: uploaded {what} to {remote}", file=sys.stderr, flush=True)
        return True

    def _remove_stale_tmp(self, folder: str) -> None:
        """Remove temporary files of uploads that died more than a day ago."""
        now = time.time() * 1000
        entries = self._do(f"list {folder}", self.client.list, folder, status=True)
        for name, status in entries:
            if name.endswith(".tmp") and now - status.get("modificationTime", now) > STALE_TMP_SECONDS * 1000:
                self._do(f"remove {name}", self.client.delete, posixpath.join(folder, name))
