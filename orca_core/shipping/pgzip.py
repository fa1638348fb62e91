"""A gzip writer that deflates blocks on a thread pool, like pigz.

The output is one gzip member (blocks joined by sync flushes), readable by gzip, tar, Python and
Hadoop alike. Level 0 stores the data (checksummed, not compressed). ISA-L's deflate (the `isal`
package, in the `pack` extra) is used when installed: several times faster than zlib at level 1.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor

BLOCK = 4 << 20
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"  # deflate, no name, mtime 0, unix


def deflate_module(level: int):
    """`isal.isal_zlib` for levels 1-3 when installed, else `zlib`."""
    if 1 <= level <= 3:
        try:
            from isal import isal_zlib

            return isal_zlib
        except ImportError:
            pass
    return zlib


class ParallelGzipWriter:
    """A write-only binary file object: what is written to it reaches `fileobj` gzip-compressed."""

    def __init__(self, fileobj, level: int = 1, threads: int | None = None, block: int = BLOCK):
        self._raw = fileobj
        self._level = level
        self._z = deflate_module(level)
        self._threads = threads or min(4, os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="orca-gzip")
        self._pending: deque = deque()
        self._block = block
        self._buf = bytearray()
        self._crc = 0
        self._size = 0
        self._closed = False
        self._raw.write(HEADER)

    def write(self, data) -> int:
        self._buf += data
        if len(self._buf) >= self._block:
            self._submit()
        return len(data)

    def tell(self) -> int:
        return self._size + len(self._buf)

    def flush(self) -> None:
        pass

    def _submit(self) -> None:
        chunk = bytes(self._buf)
        self._buf.clear()
        self._crc = zlib.crc32(chunk, self._crc)
        self._size += len(chunk)
        self._pending.append(self._pool.submit(self._deflate, chunk))
        while len(self._pending) > 2 * self._threads:
            self._raw.write(self._pending.popleft().result())

    def _deflate(self, chunk: bytes) -> bytes:
        compressor = self._z.compressobj(self._level, self._z.DEFLATED, -15)
        return compressor.compress(chunk) + compressor.flush(self._z.Z_SYNC_FLUSH)

    def close(self) -> None:
        """Write what is left, the final block and the trailer; `fileobj` stays open."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._buf:
                self._submit()
            while self._pending:
                self._raw.write(self._pending.popleft().result())
            self._raw.write(zlib.compressobj(self._level, zlib.DEFLATED, -15).flush())
            self._raw.write(struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF))
        finally:
            self._pool.shutdown(cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._closed = True
            self._pool.shutdown(cancel_futures=True)
