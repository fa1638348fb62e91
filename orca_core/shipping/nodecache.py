#!/usr/bin/env python3
"""The environments unpacked on a node, shared by every executor and Ray node of its user.

Spark runs this file as the executors' Python (`spark.pyspark.python`). It finds the shipped
environment unpacked in the node's cache, or unpacks it there once, and `exec`s its interpreter
with the arguments Spark gave:

    <cache>/<key>/            the unpacked environment (what `sys.prefix` becomes)
    <cache>/<key>/.orca-env   written last: the environment is complete (its size, when unpacked)
    <cache>/<key>.lock        held shared by every process that runs the environment
    <cache>/layers/<layer>/   a layer of a layered environment, unpacked (with its own marker and lock)

The first executor of a host unpacks under the exclusive lock into a private temporary folder and
renames it into place, so concurrent executors wait for it and an interrupted or failed unpack
leaves nothing that is used later. The interpreter inherits the shared lock, so an environment in
use is never evicted; beyond the size cap, the least recently used ones that nothing holds go.

A layered environment (ORCA_ENV_ARCHIVE names its manifest, `*.layers`, which lists its layers'
archives beside it) is composed from its layers: each is unpacked once per host (in parallel), and
the environment's folder is made of hard links to their files, so a new environment that shares
most layers with an earlier one costs only its new layers. Layers no environment is made of go
with the eviction. Sizes count each environment as if it shared nothing.

Only the standard library is used: any Python 3 on the node can run it. It is configured by the
environment Spark gives executors (`spark.executorEnv.*`): ORCA_ENV_KEY, ORCA_ENV_ARCHIVE (the
archive's path, read where the node has it: the same host, a shared file system), ORCA_ENV_URL and
ORCA_ENV_TOKEN (where the driver serves it otherwise, see orca_core.shipping.serve),
ORCA_ENV_PYTHON (the interpreter inside the environment), ORCA_NODE_ENVS (the cache folder) and
ORCA_NODE_ENVS_MAX (bytes).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile

MARKER = ".orca-env"
LAYERS = "layers"  # the folder of unpacked layers
MANIFEST = ".layers"  # the suffix of a layered environment's manifest
LOCK_FD = "ORCA_ENV_LOCK_FD"  # the descriptor of the shared lock, in the interpreter's environment
DEFAULT_MAX = 20 << 30
_EXHAUSTED = {errno.ENOSPC: "no space left", errno.EDQUOT: "disk quota exceeded", errno.EFBIG: "file size limit reached"}


class NodeCacheError(Exception):
    """The node cannot provide the environment; the message says why and what to do."""


def default_root() -> str:
    """$ORCA_NODE_ENVS, else `node-envs` in Orca's cache folder ($ORCA_CACHE_DIR, $XDG_CACHE_HOME/orca, ~/.cache/orca)."""
    if os.environ.get("ORCA_NODE_ENVS"):
        return os.environ["ORCA_NODE_ENVS"]
    base = os.environ.get("ORCA_CACHE_DIR")
    if not base:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "orca")
    return os.path.join(base, "node-envs")


def private_root(root: str) -> str:
    """`root`, created 0700 if missing; a NodeCacheError unless it is a writable folder of this user."""
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
        info = os.lstat(root)
        if not os.path.isdir(root) or os.path.islink(root) or info.st_uid != os.getuid():
            raise NodeCacheError(f"the environment cache {root} on {socket.gethostname()} is not a folder of this "
                                 "user: point ORCA_NODE_ENVS (option node_env_cache) at a folder of your own")
        if info.st_mode & 0o077:
            os.chmod(root, 0o700)
        probe = tempfile.TemporaryFile(dir=root)
        probe.close()
    except OSError as e:
        raise NodeCacheError(f"cannot use the environment cache {root} on {socket.gethostname()}: {e.strerror}. "
                             "Point the option node_env_cache at a writable folder of your own") from e
    return root


def _lock(root: str, key: str) -> int:
    return os.open(os.path.join(root, f"{key}.lock"), os.O_RDWR | os.O_CREAT, 0o600)


def _complete(folder: str) -> dict | None:
    try:
        with open(os.path.join(folder, MARKER)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _extract(archive: str, into: str) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            z.extractall(into)
            for info in z.infolist():  # zipfile drops the permission bits
                mode = info.external_attr >> 16
                if mode:
                    os.chmod(os.path.join(into, info.filename), mode & 0o7777)
        return
    with open(archive, "rb") as data:
        _untar(data, into, data.read(2) == b"\x1f\x8b", archive)


def _untar(data, into: str, gz: bool, archive: str | None = None) -> None:
    """Extract the tar stream `data` (gzip-compressed if `gz`) into `into`; `archive` is its file, if it is one."""
    if archive:
        data.seek(0)
    tar = shutil.which("tar")
    if not tar:
        with tarfile.open(fileobj=data, mode="r|gz" if gz else "r|") as t:
            try:
                t.extractall(into, filter="fully_trusted")
            except TypeError:  # a Python without extraction filters
                t.extractall(into)
        return
    gunzip = _gunzip() if gz else None
    piped = gz or archive is None
    argv = [tar, "-xf", "-" if piped else archive, "-C", into]
    with subprocess.Popen(argv, stdin=subprocess.PIPE if piped else subprocess.DEVNULL,
                          stderr=subprocess.PIPE) as tar_proc:
        if piped:
            try:  # inflated here, on this thread: zlib is twice as fast as tar's gzip, ISA-L several times
                source = gunzip.open(data) if gunzip else data
                shutil.copyfileobj(source, tar_proc.stdin, 1 << 20)
            except BrokenPipeError:
                pass  # tar stopped: its status says why
            except EOFError as e:
                tar_proc.kill()
                raise OSError(errno.EIO, f"the archive ends early: {e}") from e
            finally:
                tar_proc.stdin.close()
        errors = tar_proc.stderr.read()
    status = tar_proc.returncode
    if status == -signal.SIGXFSZ:
        raise OSError(errno.EFBIG, "tar was stopped at the file size limit")
    if status != 0:
        message = errors.decode(errors="replace").strip().splitlines()
        raise OSError(_errno(message), " ".join(message[-3:]) or f"tar exited {status}")


def _gunzip():
    """`isal.igzip` when this Python has ISA-L (orca-core[pack]), else `gzip`."""
    try:
        from isal import igzip
    except ImportError:
        import gzip

        return gzip
    return igzip


def _errno(lines: list[str]) -> int:
    text = " ".join(lines).lower()
    for number, words in ((errno.ENOSPC, "no space"), (errno.EDQUOT, "quota"), (errno.EFBIG, "file too large")):
        if words in text:
            return number
    return errno.EIO


def _size(folder: str) -> int:
    total = 0
    for parent, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(parent, name)).st_size
            except OSError:
                pass
    return total


class _Download:
    """The body of `url` from the driver, read as a file; `done()` checks that all of it came."""

    def __init__(self, url: str, token: str):
        from urllib.error import URLError
        from urllib.request import Request, urlopen

        self.url, self.read_bytes = url, 0
        try:
            self.response = urlopen(Request(url, headers={"X-Orca-Token": token}), timeout=60)
        except URLError as e:
            raise NodeCacheError(f"{socket.gethostname()} could not fetch the environment archive from the driver "
                                 f"at {url}: {e.reason}") from e
        self.expected = int(self.response.headers.get("Content-Length", -1))

    def read(self, size: int = -1) -> bytes:
        from http.client import IncompleteRead

        try:
            chunk = self.response.read(size)
        except IncompleteRead as e:
            self.read_bytes += len(e.partial)
            raise self._short() from None
        self.read_bytes += len(chunk)
        return chunk

    def readinto(self, buffer) -> int:
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def readable(self) -> bool:
        return True

    def done(self) -> None:
        """Check that the whole body came (after reading the rest, if any)."""
        self.read()
        self.response.close()
        if self.read_bytes != self.expected:
            raise self._short()

    def cut_off(self) -> NodeCacheError | None:
        """After a failed read of the body: the error to report if the driver stopped sending it."""
        try:
            ended = self.read_bytes < self.expected and not self.read(1)
        except NodeCacheError as e:
            return e
        finally:
            self.response.close()
        return self._short() if ended else None

    def _short(self) -> NodeCacheError:
        return NodeCacheError(f"{socket.gethostname()} fetched {self.read_bytes} of the {self.expected} bytes of "
                              f"{self.url}: the driver stopped serving it")


def _fetch(url: str, token: str, into: str) -> None:
    download = _Download(url, token)
    with open(into, "wb") as out:
        shutil.copyfileobj(download, out, 1 << 20)
    download.done()


def _clean(root: str, key: str) -> None:
    """Remove what an interrupted unpack or composition of `key` left."""
    for name in os.listdir(root):
        if name.startswith(f".{key}.") and name.endswith(".tmp"):
            path = os.path.join(root, name)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)


def _failed(what: str, root: str, e: OSError) -> NodeCacheError:
    reason = _EXHAUSTED.get(e.errno)
    if reason is None:
        return NodeCacheError(f"{what} into {root} on {socket.gethostname()} failed: {e}")
    free = shutil.disk_usage(root).free / 2**20
    return NodeCacheError(f"{what} into {root} on {socket.gethostname()} failed: {reason} ({free:.1f} MiB free); "
                          "nothing was kept. Free space there, or point the option node_env_cache at a larger "
                          "file system")


def _unpack(root: str, key: str, archive: str, python: str | None, url: str | None = None, token: str = "") -> None:
    _clean(root, key)
    if not os.path.isfile(archive) and not url:
        raise NodeCacheError(f"the environment archive {archive} is not on {socket.gethostname()} (working directory "
                             f"{os.getcwd()}): it was not shipped to this node")
    tmp = tempfile.mkdtemp(dir=root, prefix=f".{key}.", suffix=".tmp")
    fetched = None
    started = time.monotonic()
    try:
        if os.path.isfile(archive):
            _extract(archive, tmp)
        elif archive.endswith((".tar.gz", ".tgz", ".tar")):  # unpacked while it arrives
            download = _Download(url + os.path.basename(archive), token)
            try:
                _untar(download, tmp, not archive.endswith(".tar"))
            except Exception as e:
                short = download.cut_off()
                if short is None:
                    raise
                raise short from e
            download.done()
        else:
            fd, fetched = tempfile.mkstemp(dir=root, prefix=f".{key}.", suffix=".fetch.tmp")
            os.close(fd)
            _fetch(url + os.path.basename(archive), token, fetched)
            _extract(fetched, tmp)
        if python and not os.path.exists(os.path.join(tmp, python)):
            raise NodeCacheError(f"the environment archive {archive} has no {python} at its root")
        _seal(tmp, os.path.join(root, key), {"key": key, "seconds": round(time.monotonic() - started, 3)})
    except OSError as e:
        raise _failed(f"unpacking {archive}", root, e) from e
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        if fetched and os.path.exists(fetched):
            os.unlink(fetched)


def _seal(tmp: str, folder: str, record: dict) -> None:
    """Mark `tmp` complete and move it into place as `folder`."""
    record.update(bytes=_size(tmp), unpacked=time.time(), host=socket.gethostname(), pid=os.getpid())
    with open(os.path.join(tmp, MARKER), "w") as f:
        json.dump(record, f)
    os.replace(tmp, folder)


def _hold(root: str, key: str, make) -> tuple[str, int]:
    """(`root`/`key`, a file descriptor holding its shared lock), made by `make()` unless complete."""
    folder = os.path.join(root, key)
    fd = _lock(root, key)
    try:
        while True:
            fcntl.flock(fd, fcntl.LOCK_SH)
            if _complete(folder):
                break
            fcntl.flock(fd, fcntl.LOCK_EX)  # the first of this host makes it; the others wait here
            if not _complete(folder):
                if os.path.isdir(folder):  # no marker: not ours to trust
                    shutil.rmtree(folder)
                make()
        os.utime(os.path.join(folder, MARKER))  # last use, for eviction
    except BaseException:
        os.close(fd)
        raise
    return folder, fd


def _stem(name: str) -> str:
    for suffix in (".tar.gz", ".tgz", ".tar", ".zip"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _manifest(manifest: str, url: str | None, token: str) -> list[str]:
    """The layers' archive names a manifest lists, read where it lies or fetched from the driver."""
    if not os.path.isfile(manifest) and url:
        with tempfile.TemporaryDirectory() as tmp:
            _fetch(url + os.path.basename(manifest), token, os.path.join(tmp, "manifest"))
            return _manifest(os.path.join(tmp, "manifest"), None, token)
    try:
        with open(manifest) as f:
            names = [line.strip() for line in f if line.strip()]
    except OSError as e:
        raise NodeCacheError(f"the environment manifest {manifest} is not on {socket.gethostname()}: {e.strerror}; "
                             "it was not shipped to this node") from e
    if not names or any(os.sep in name or name.startswith(".") for name in names):
        raise NodeCacheError(f"the environment manifest {manifest} does not list layer archives")
    return names


def _link_tree(source: str, into: str) -> None:
    """Make `into` hold the files of `source` (folders created, files hard-linked, links copied)."""
    for parent, dirs, files in os.walk(source):
        rel = os.path.relpath(parent, source)
        target = into if rel == "." else os.path.join(into, rel)
        for name in dirs:
            path = os.path.join(parent, name)
            if os.path.islink(path):
                os.symlink(os.readlink(path), os.path.join(target, name))
            elif not os.path.isdir(os.path.join(target, name)):
                os.mkdir(os.path.join(target, name))
                os.chmod(os.path.join(target, name), stat.S_IMODE(os.lstat(path).st_mode))
        for name in files:
            if rel == "." and name == MARKER:
                continue
            path, link = os.path.join(parent, name), os.path.join(target, name)
            if os.path.islink(path):
                os.symlink(os.readlink(path), link)
            else:
                try:
                    os.link(path, link)
                except OSError as e:
                    if e.errno not in (errno.EMLINK, errno.EXDEV, errno.EPERM):
                        raise
                    shutil.copy2(path, link)


def _compose(root: str, key: str, manifest: str, python: str, url: str | None, token: str) -> None:
    """Unpack the layers a manifest lists that this host lacks, then compose them as `root`/`key`."""
    from concurrent.futures import ThreadPoolExecutor

    names = _manifest(manifest, url, token)
    layers = private_root(os.path.join(root, LAYERS))
    held: list[int] = []

    def layer(name: str) -> str:
        archive = os.path.join(os.path.dirname(manifest), name)
        folder, fd = _hold(layers, _stem(name), lambda: _unpack(layers, _stem(name), archive, None, url, token))
        held.append(fd)
        return folder

    _clean(root, key)
    started = time.monotonic()
    tmp = None
    try:
        with ThreadPoolExecutor(min(len(names), os.cpu_count() or 1)) as pool:
            folders = list(pool.map(layer, names))
        tmp = tempfile.mkdtemp(dir=root, prefix=f".{key}.", suffix=".tmp")
        for folder in folders:
            _link_tree(folder, tmp)
        if not os.path.exists(os.path.join(tmp, python)):
            raise NodeCacheError(f"the layers of {manifest} have no {python} at their root")
        _seal(tmp, os.path.join(root, key), {"key": key, "layers": [_stem(n) for n in names],
                                             "seconds": round(time.monotonic() - started, 3)})
    except OSError as e:
        raise _failed(f"composing the layers of {manifest}", root, e) from e
    finally:
        for fd in held:
            os.close(fd)
        if tmp and os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def acquire(key: str, archive: str, python: str = "bin/python", root: str | None = None, url: str | None = None,
            token: str = "") -> tuple[str, int]:
    """(the environment's folder, a file descriptor holding its shared lock), unpacking it (or
    composing it from its layers, for a manifest) if needed."""
    root = private_root(root or default_root())
    if archive.endswith(MANIFEST):
        return _hold(root, key, lambda: _compose(root, key, archive, python, url, token))
    return _hold(root, key, lambda: _unpack(root, key, archive, python, url, token))


def entries(root: str | None = None) -> list[dict]:
    """The complete environments in the cache, least recently used first, each with `in_use`."""
    root = root or default_root()
    found = []
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else ():
        folder = os.path.join(root, name)
        record = _complete(folder) if not name.startswith(".") else None
        if record is None:
            continue
        record.update(path=folder, used=os.stat(os.path.join(folder, MARKER)).st_mtime, in_use=_held(root, name))
        found.append(record)
    return sorted(found, key=lambda r: r["used"])


def _held(root: str, key: str) -> bool:
    fd = _lock(root, key)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def remove(root: str, key: str) -> bool:
    """Remove one environment unless a process runs it; whether it was removed."""
    fd = _lock(root, key)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        folder = os.path.join(root, key)
        if os.path.isdir(folder):
            doomed = tempfile.mkdtemp(dir=root, prefix=f".{key}.", suffix=".tmp")
            os.replace(folder, os.path.join(doomed, key))  # unused from here on, even if the removal is cut short
            shutil.rmtree(doomed, ignore_errors=True)
        return True
    finally:
        os.close(fd)


def evict(root: str, keep: str, limit: int) -> list[str]:
    """Remove least recently used environments nothing runs until the cache holds at most `limit`
    bytes, then the layers no environment is made of."""
    found = entries(root)
    total = sum(r["bytes"] for r in found)
    removed = []
    for record in found:
        if total <= limit:
            break
        if record["key"] != keep and not record["in_use"] and remove(root, record["key"]):
            total -= record["bytes"]
            removed.append(record["key"])
    prune(root)
    return removed


def prune(root: str) -> list[str]:
    """Remove the unpacked layers that no complete environment is made of and nothing holds."""
    layers = os.path.join(root, LAYERS)
    if not os.path.isdir(layers):
        return []
    used = {layer for record in entries(root) for layer in record.get("layers", ())}
    return [record["key"] for record in entries(layers) if record["key"] not in used and remove(layers, record["key"])]


def main(argv: list[str]) -> int:
    try:
        key, archive = os.environ["ORCA_ENV_KEY"], os.environ["ORCA_ENV_ARCHIVE"]
        python = os.environ.get("ORCA_ENV_PYTHON", "bin/python")
        root = os.environ.get("ORCA_NODE_ENVS") or default_root()
        folder, fd = acquire(key, os.path.abspath(archive), python, root, os.environ.get("ORCA_ENV_URL"),
                             os.environ.get("ORCA_ENV_TOKEN", ""))
        evict(root, key, int(os.environ.get("ORCA_NODE_ENVS_MAX", DEFAULT_MAX)))
    except KeyError as e:
        print(f"orca: {argv[0]} runs shipped environments; {e.args[0]} is not set", file=sys.stderr)
        return 2
    except NodeCacheError as e:
        print(f"orca: {e}", file=sys.stderr)
        return 1
    os.set_inheritable(fd, True)  # the interpreter and its children hold the environment in use
    os.environ[LOCK_FD] = str(fd)  # for children that close inherited descriptors (a Ray node's supervisor)
    exe = os.path.join(folder, python)
    os.execv(exe, [exe, *argv[1:]])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
