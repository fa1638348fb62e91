"""DISK_n: rows written once to local disk as n Arrow IPC slice files; an epoch loads one slice at a time.

Each row goes to one slice, at random and balanced (slice sizes differ by at most one row), so
every epoch yields every row exactly once: the slices in a shuffled order, each shuffled within.
While one slice is in use the kernel is asked to read the next one ahead; it is not held in memory.
"""

from __future__ import annotations

import mmap
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from orca_core.data.stores import ColumnChunks, DataStoreError, TrainingStore, assemble, one_batch, record_batches
from orca_core.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

PREFIX = "orca-train-"
# Rows are spread over the slices a chunk of about this many bytes at a time.
CHUNK_BYTES = 4 << 20


class DiskStore(TrainingStore):
    """Training data in `slices` files under a private directory, removed on close, garbage
    collection or exit (and, after a crash, by the next DiskStore opened in the same place)."""

    def __init__(self, source: Any, slices: int, local_dir: str | os.PathLike | None = None):
        schema, batches = record_batches(source)
        base = _base_dir(local_dir)
        _check_space(base, source)
        _remove_stale(base)
        self.schema = schema
        self.slices = slices
        self.dir = _private_dir(base)
        self._finalizer = weakref.finalize(self, _remove, self.dir, os.getpid())
        self._counts: np.ndarray | None = None
        try:
            counts = self._write(batches)
        except BaseException:
            self.close()
            raise
        self._counts = counts
        self.num_rows = int(counts.sum())

    def epoch(self, batch_size: int, shuffle: bool, seed: int | None) -> Iterator[pa.RecordBatch]:
        import numpy as np

        self._check_open()
        rng = np.random.default_rng(seed) if shuffle else None
        visit = [int(i) for i in rng.permutation(self.slices)] if rng is not None else list(range(self.slices))
        return assemble(self._parts(visit, rng), batch_size)

    def close(self) -> None:
        self._counts = None
        self._finalizer()

    def __repr__(self) -> str:
        return f"<DiskStore {self.slices} slices in {self.dir}>"

    def _path(self, i: int) -> str:
        return os.path.join(self.dir, f"slice-{i}.arrow")

    def _check_open(self) -> None:
        if self._counts is None:
            raise DataStoreError(f"this DISK_{self.slices} training data is closed: open_training_data() again")

    def _write(self, batches: Iterator[pa.RecordBatch]) -> np.ndarray:
        import numpy as np
        import pyarrow as pa

        pool = pa.default_memory_pool()
        counts = np.zeros(self.slices, dtype=np.int64)
        rng = np.random.default_rng(0)
        sinks, writers = [], []
        try:
            for i in range(self.slices):
                sinks.append(pa.OSFile(self._path(i), "wb"))
                writers.append(pa.ipc.new_file(sinks[-1], self.schema))
            for chunk in _chunks(batches):
                start = int(counts.sum())
                slice_of = np.arange(start, start + chunk.num_rows) % self.slices
                rng.shuffle(slice_of)
                grouped = chunk.take(np.argsort(slice_of, kind="stable"))
                sizes = np.bincount(slice_of, minlength=self.slices)
                offset = 0
                for writer, size in zip(writers, sizes, strict=True):
                    if size:
                        writer.write_batch(grouped.slice(offset, int(size)))
                    offset += int(size)
                counts += sizes
                del chunk, grouped
                pool.release_unused()  # return the chunk's memory now: freed memory is otherwise kept
            for writer, sink in zip(writers, sinks, strict=True):
                writer.close()
                sink.close()
        except OSError as error:
            raise DataStoreError(
                f"writing the training data to {self.dir} failed after {int(counts.sum())} rows: {error}. "
                "Make room there or pass local_dir= a directory on a disk with room for all of the data"
            ) from error
        finally:
            for sink in sinks:
                try:
                    sink.close()
                except OSError:  # already reported by the write that failed
                    pass
        return counts

    def _parts(self, visit: list[int], rng) -> Iterator[tuple[pa.RecordBatch | pa.Table, np.ndarray | None]]:
        for k, i in enumerate(visit):
            if k + 1 < len(visit):
                self._read_ahead(visit[k + 1])
            rows = self._load(i)
            order = rng.permutation(rows.num_rows) if rng is not None else None
            yield rows, order
            del rows, order

    def _read_ahead(self, i: int) -> None:
        """Ask the kernel to read slice i into the page cache; it costs this process no memory."""
        if hasattr(os, "posix_fadvise"):
            try:
                fd = os.open(self._path(i), os.O_RDONLY)
            except OSError:
                return  # _load reports it
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
            finally:
                os.close(fd)

    def _load(self, i: int) -> pa.RecordBatch | pa.Table:
        """Slice i as one contiguous batch, copied column by column from a memory map whose pages
        are dropped after each column: at most the slice plus one column is resident."""
        import pyarrow as pa

        self._check_open()
        path = self._path(i)
        try:
            with open(path, "rb") as file:
                mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
            reader = pa.ipc.open_file(pa.py_buffer(mapped))
            batches = [reader.get_batch(k) for k in range(reader.num_record_batches)]
        except (OSError, ValueError, pa.ArrowInvalid) as error:
            raise DataStoreError(f"slice {i} of the training data in {self.dir} cannot be read: {error}") from error
        rows = sum(batch.num_rows for batch in batches)
        if rows != self._counts[i]:
            raise DataStoreError(
                f"slice {i} of the training data in {path} holds {rows} rows, {int(self._counts[i])} were "
                "written: the file was changed or truncated; open_training_data() again"
            )
        columns = ColumnChunks(self.schema)
        for batch in batches:
            columns.append(batch)
        del batches, reader
        return columns.contiguous(copied=lambda: mapped.madvise(mmap.MADV_DONTNEED))


def _chunks(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The rows of `batches` regrouped into record batches of about CHUNK_BYTES."""
    import pyarrow as pa

    pending, size = [], 0
    for batch in batches:
        if not batch.num_rows:
            continue
        row_bytes = max(batch.nbytes / batch.num_rows, 1)
        step = max(1, int(CHUNK_BYTES / row_bytes))
        for start in range(0, batch.num_rows, step):
            piece = batch.slice(start, step)
            pending.append(piece)
            size += piece.num_rows * row_bytes
            if size >= CHUNK_BYTES:
                yield pending[0] if len(pending) == 1 else one_batch(pa.Table.from_batches(pending))
                pending, size = [], 0
    if pending:
        yield pending[0] if len(pending) == 1 else one_batch(pa.Table.from_batches(pending))


def _base_dir(local_dir: str | os.PathLike | None) -> str:
    """`local_dir`, else the Spark local dir with the most room (set in Spark tasks), else the temp dir."""
    if local_dir is not None:
        path = os.fspath(local_dir)
        if not os.path.isdir(path):
            raise ConfigError(f"local_dir={path!r} is not a directory: create it or pass an existing one")
        return path
    spark_dirs = [d for d in os.environ.get("SPARK_LOCAL_DIRS", "").split(",") if d and os.path.isdir(d)]
    if spark_dirs:
        return max(spark_dirs, key=lambda d: shutil.disk_usage(d).free)
    return tempfile.gettempdir()


def _check_space(base: str, source: Any) -> None:
    """Refuse before writing when a source of known size cannot fit."""
    nbytes = getattr(source, "nbytes", None)
    if isinstance(nbytes, int) and type(source).__module__.startswith("pyarrow"):
        free = shutil.disk_usage(base).free
        if free < nbytes:
            raise DataStoreError(
                f"the training data needs {nbytes} bytes on disk but {base} has {free} free: make room "
                "or pass local_dir= a directory on a larger disk"
            )


def _private_dir(base: str) -> str:
    import psutil

    me = psutil.Process()
    try:
        return tempfile.mkdtemp(prefix=f"{PREFIX}{me.pid}-{int(me.create_time())}-", dir=base)
    except OSError as error:
        raise DataStoreError(
            f"cannot create the training data directory in {base}: {error}. Pass local_dir= a writable "
            "directory with room for the data"
        ) from error


def _remove_stale(base: str) -> None:
    """Remove the directories of this user that processes which no longer run left in `base`."""
    import psutil

    try:
        entries = list(os.scandir(base))
    except OSError:
        return  # _private_dir reports an unusable base
    for entry in entries:
        found = re.fullmatch(rf"{PREFIX}(\d+)-(\d+)-\w+", entry.name)
        if not found or not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != os.getuid():
            continue
        pid, started = int(found[1]), int(found[2])
        try:
            alive = int(psutil.Process(pid).create_time()) == started
        except psutil.NoSuchProcess:
            alive = False
        except psutil.Error:  # cannot tell: keep it
            alive = True
        if not alive:
            shutil.rmtree(entry.path, ignore_errors=True)


def _remove(path: str, owner: int) -> None:
    if os.getpid() == owner:  # a forked child must not remove its parent's files
        shutil.rmtree(path, ignore_errors=True)
