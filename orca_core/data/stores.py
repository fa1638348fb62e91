"""Training data stores: what a store implements, the in-memory DRAM store, and the Arrow helpers
every store shares (reading a source, making columns contiguous, assembling batches).

A third-party store subclasses `TrainingStore` and registers a `DataStore` record through the
`orca_data_stores` hook; `open_training_data` selects it by `OrcaContext.train_data_store`.
"""

from __future__ import annotations

import abc
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from orca_core.errors import ConfigError, ConfigTypeError, OrcaError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

# Rows of a pandas DataFrame converted to Arrow at a time.
PANDAS_ROWS = 65536


class DataStoreError(OrcaError, OSError):
    """A store could not write or read its data (disk full, unwritable or removed files)."""


class TrainingStore(abc.ABC):
    """What a data store's `open` returns: rows of one schema, read as epochs of record batches.

    `epoch` must yield every row exactly once, in batches of `batch_size` rows (the last may be
    shorter), shuffled reproducibly by `seed` when `shuffle` is true.
    """

    schema: pa.Schema
    num_rows: int

    @abc.abstractmethod
    def epoch(self, batch_size: int, shuffle: bool, seed: int | None) -> Iterator[pa.RecordBatch]:
        """One pass over every row."""

    @abc.abstractmethod
    def close(self) -> None:
        """Free the store's memory and files; later calls do nothing."""


class DramStore(TrainingStore):
    """Every row in memory as one contiguous Arrow record batch."""

    def __init__(self, source: Any):
        import pyarrow as pa

        if isinstance(source, pa.Table) and all(c.num_chunks == 1 for c in source.columns):
            rows = pa.RecordBatch.from_arrays([c.chunk(0) for c in source.columns], schema=source.schema)
        else:
            schema, batches = record_batches(source)
            columns = ColumnChunks(schema)
            for batch in batches:
                columns.append(batch, copy=not isinstance(source, pa.Table))
            rows = columns.contiguous()
        self.schema = rows.schema
        self.num_rows = rows.num_rows
        self._rows: pa.RecordBatch | pa.Table | None = rows

    def epoch(self, batch_size: int, shuffle: bool, seed: int | None) -> Iterator[pa.RecordBatch]:
        import numpy as np

        rows = self._rows
        if rows is None:
            raise DataStoreError("this DRAM training data is closed: open_training_data() again to read it")
        order = np.random.default_rng(seed).permutation(rows.num_rows) if shuffle else None
        return assemble(iter([(rows, order)]), batch_size)

    def close(self) -> None:
        self._rows = None


def record_batches(source: Any) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The schema and record batches of a pyarrow Table or RecordBatch, a pandas DataFrame, or an
    iterable of pyarrow RecordBatch (as a Spark task gets from `DataFrame.mapInArrow`).

    An unsupported source raises `ConfigTypeError` before anything is read from it but the first
    item of an iterator; a later item of another type or schema raises while iterating.
    """
    import pyarrow as pa

    if isinstance(source, pa.Table):
        return source.schema, iter(source.to_batches())
    if isinstance(source, pa.RecordBatch):
        return source.schema, iter([source])
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(source, pandas.DataFrame):
        return _pandas_batches(source)
    if isinstance(source, (str, bytes, dict)) or not isinstance(source, Iterable):
        raise ConfigTypeError(_unsupported(source))
    items = iter(source)
    first = next(items, None)
    if first is None:
        return pa.schema([]), iter(())
    if not isinstance(first, pa.RecordBatch):
        raise ConfigTypeError(_unsupported(source, first))
    return first.schema, _checked(first, items)


def _unsupported(source: Any, item: Any = None) -> str:
    got = type(source).__name__ + (f" of {type(item).__name__}" if item is not None else "")
    return (
        f"training data source must be a pyarrow Table, a pandas DataFrame or an iterator of "
        f"pyarrow.RecordBatch (as DataFrame.mapInArrow gives), got {got}; convert it first, e.g. "
        "pyarrow.Table.from_pydict(...)"
    )


def _checked(first: pa.RecordBatch, items: Iterator[Any]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    yield first
    for position, batch in enumerate(items, start=1):
        if not isinstance(batch, pa.RecordBatch):
            raise ConfigTypeError(
                f"item {position} of the training data source is a {type(batch).__name__}, "
                "not a pyarrow.RecordBatch like the first; yield only RecordBatch objects"
            )
        if not batch.schema.equals(first.schema):
            raise ConfigError(
                f"record batch {position} of the training data source has columns ({_columns(batch.schema)}), "
                f"the first had ({_columns(first.schema)}); every batch must have the same schema"
            )
        yield batch


def _columns(schema: pa.Schema) -> str:
    return ", ".join(f"{field.name}: {field.type}" for field in schema)


def _pandas_batches(frame: Any) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """A DataFrame as record batches of PANDAS_ROWS rows; the index is dropped (reset_index() keeps it)."""
    import pyarrow as pa

    schema = pa.Schema.from_pandas(frame, preserve_index=False)

    def batches():
        for start in range(0, len(frame), PANDAS_ROWS):
            part = frame.iloc[start : start + PANDAS_ROWS]
            yield pa.RecordBatch.from_pandas(part, schema=schema, preserve_index=False)

    return schema, batches()


class ColumnChunks:
    """Record batches gathered column by column, so that making them contiguous frees each
    column's chunks as soon as that column is copied (peak: the data plus one column)."""

    def __init__(self, schema: pa.Schema):
        self.schema = schema
        self.chunks: list[list[pa.Array]] = [[] for _ in schema]

    def append(self, batch: pa.RecordBatch, copy: bool = False) -> None:
        """Add a batch's columns; `copy` gives each its own buffers, so that a column can be freed
        while the others live (batches read from an Arrow stream share one buffer)."""
        import pyarrow as pa

        for chunks, column in zip(self.chunks, batch.columns, strict=True):
            chunks.append(pa.concat_arrays([column]) if copy else column)

    def contiguous(self, copied: Callable[[], None] | None = None) -> pa.RecordBatch | pa.Table:
        """One record batch; a Table where a column is too large for one Arrow array.

        `copied` is called after each column is copied (e.g. to drop the pages of a memory map)."""
        import pyarrow as pa

        pool = pa.default_memory_pool()
        columns, chunked = [], False
        for i, field in enumerate(self.schema):
            chunks, self.chunks[i] = self.chunks[i], []
            try:
                columns.append(pa.concat_arrays(chunks) if chunks else pa.array([], type=field.type))
            except (pa.ArrowInvalid, pa.ArrowCapacityError):  # offsets overflow: keep it chunked
                columns.append(pa.chunked_array(chunks, type=field.type))
                chunked = True
            del chunks
            pool.release_unused()  # hand the freed chunks back now, not after the next allocations
            if copied is not None:
                copied()
        if chunked:
            return pa.Table.from_arrays(columns, schema=self.schema)
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)


def assemble(
    parts: Iterator[tuple[pa.RecordBatch | pa.Table, np.ndarray | None]], batch_size: int
) -> Iterator[pa.RecordBatch]:
    """Batches of `batch_size` rows from `(rows, order)` parts, in `order` (None: as stored).

    Batches cross part boundaries, so only the last batch of the whole pass is shorter. The rest
    of a part carried into the next is a copy: a part is no longer referenced once the next is
    asked for, which is what lets a store hold one part in memory at a time.
    """
    pending = None
    for rows, order in parts:
        size, position = rows.num_rows, 0
        if pending is not None and size:
            head = _pick(rows, order, 0, min(size, batch_size - pending.num_rows), copy=True)
            position = head.num_rows
            pending = _concat(pending, head)
            if pending.num_rows == batch_size:
                yield pending
                pending = None
        while size - position >= batch_size:
            yield _pick(rows, order, position, position + batch_size, copy=False)
            position += batch_size
        if position < size:
            tail = _pick(rows, order, position, size, copy=True)
            pending = tail if pending is None else _concat(pending, tail)
        del rows, order
    if pending is not None:
        yield pending


def _pick(rows, order, start: int, stop: int, copy: bool) -> pa.RecordBatch:
    import numpy as np
    import pyarrow as pa

    if order is not None:
        picked = rows.take(order[start:stop])
    elif copy:
        picked = rows.take(np.arange(start, stop))
    else:
        picked = rows.slice(start, stop - start)
    return one_batch(picked) if isinstance(picked, pa.Table) else picked


def _concat(first: pa.RecordBatch, second: pa.RecordBatch) -> pa.RecordBatch:
    import pyarrow as pa

    return one_batch(pa.Table.from_batches([first, second]))


def one_batch(table: pa.Table) -> pa.RecordBatch:
    """The rows of `table` as one record batch (a copy unless it has one chunk)."""
    import pyarrow as pa

    batches = table.combine_chunks().to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)
