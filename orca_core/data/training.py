"""`open_training_data`: training data held in the store `OrcaContext.train_data_store` names.

    from orca_core.data import open_training_data

    with open_training_data(source) as td:          # a Table, a DataFrame, or mapInArrow's iterator
        for epoch in range(10):
            for batch in td.epoch(batch_size=1024, shuffle=True, seed=epoch):   # pyarrow.RecordBatch
                ...

The same call works on the driver, inside Spark tasks and in Ray tasks and actors; there
`store=None` means the driver's setting, which reaches workers through ORCA_SETTINGS.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from orca_core.data.stores import DataStoreError, TrainingStore
from orca_core.errors import ConfigError, ConfigTypeError, OrcaError, closest

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from orca_core.records import DataStore

__all__ = ["TrainingData", "open_training_data"]


def open_training_data(source: Any, store: str | None = None, **options: Any) -> TrainingData:
    """Put `source` into a training data store and return it as `TrainingData`.

    `store` is a setting such as "DRAM" or "DISK_4" (None: `OrcaContext.train_data_store`);
    `options` are the keywords that store accepts, e.g. `local_dir` for DISK_n. Close the result
    (or use it as a context manager) to free its memory and files.
    """
    setting, record, match = _resolve(store)
    values = _options(record, setting, options)
    opened = record.open(source, match, **values)
    if not isinstance(opened, TrainingStore):
        raise OrcaError(
            f'data store "{record.name}" returned {type(opened).__name__} from open(), not a '
            "orca_core.data.stores.TrainingStore; fix the plugin that provides it"
        )
    return TrainingData(opened, setting)


def _resolve(store: str | None) -> tuple[str, DataStore, re.Match]:
    from orca_core.plugins import registry
    from orca_core.settings import OrcaContext

    if store is None:
        setting = OrcaContext.train_data_store
    elif isinstance(store, str):
        setting = store.strip().upper()
        if re.fullmatch(r"DISK_\w*", setting) and not re.fullmatch(r"DISK_\d+", setting):
            raise ConfigError(f"store={store!r}: write DISK_n with a whole number n >= 2, such as \"DISK_2\"")
    else:
        raise ConfigTypeError(f"store must be a string such as \"DRAM\" or \"DISK_2\", or None, got {store!r}")
    record, match = registry().data_store(setting)
    return setting, record, match


def _options(record: DataStore, setting: str, options: dict[str, Any]) -> dict[str, Any]:
    known = {o.name: o for o in record.options}
    values = {name: option.default for name, option in known.items()}
    for name, value in options.items():
        option = known.get(name)
        if option is None:
            valid = ", ".join(sorted(known)) or "none"
            raise ConfigError(
                f'open_training_data got an unknown option "{name}"{closest(name, known)} for store '
                f"{setting}; its options: {valid}"
            )
        if value is not None and not isinstance(value, option.type):
            raise ConfigTypeError(f"option {name} of store {setting} must be {option.help or option.type}, got {value!r}")
        values[name] = value
    return values


class TrainingData:
    """Rows in a training data store: `num_rows`, `schema`, and epochs of record batches.

    Adapters: `numpy_batches` (dicts of numpy arrays) and `torch_dataset` (a PyTorch
    `IterableDataset`). `close()` frees the store's memory and files; so does leaving a `with`.
    """

    def __init__(self, store: TrainingStore, setting: str):
        self._store: TrainingStore | None = store
        self.setting = setting
        self.num_rows: int = store.num_rows
        self.schema: pa.Schema = store.schema

    def epoch(self, batch_size: int = 1024, shuffle: bool = True, seed: int | None = None) -> Iterator[pa.RecordBatch]:
        """Every row exactly once, as `pyarrow.RecordBatch`es of `batch_size` rows (the last may be
        shorter); with `shuffle`, in an order that `seed` makes reproducible (None: fresh each time)."""
        _check(batch_size, shuffle, seed)
        return self._open().epoch(batch_size, shuffle, seed)

    def numpy_batches(
        self, batch_size: int = 1024, shuffle: bool = True, seed: int | None = None
    ) -> Iterator[dict[str, np.ndarray]]:
        """One epoch as dicts of column name to numpy array."""
        batches = self.epoch(batch_size, shuffle, seed)
        return ({n: c.to_numpy(zero_copy_only=False) for n, c in zip(b.schema.names, b.columns, strict=True)} for b in batches)

    def torch_dataset(self, batch_size: int = 1024, shuffle: bool = True, seed: int | None = None):
        """A `torch.utils.data.IterableDataset`: each iteration is one epoch of dicts of tensors
        (a column torch cannot hold, such as strings, stays a numpy array); iteration k shuffles
        with `seed + k`. Batches come assembled: use `DataLoader(dataset, batch_size=None)`."""
        _check(batch_size, shuffle, seed)
        return _torch_dataset(self, batch_size, shuffle, seed)

    def close(self) -> None:
        """Free the store's memory and remove its files; later calls do nothing."""
        store, self._store = self._store, None
        if store is not None:
            store.close()

    def _open(self) -> TrainingStore:
        if self._store is None:
            raise DataStoreError(f"this {self.setting} training data is closed: open_training_data() again to read it")
        return self._store

    def __enter__(self) -> TrainingData:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._store is None else f"{self.num_rows} rows"
        return f"<TrainingData {self.setting} {state} pid={os.getpid()}>"


def _check(batch_size: Any, shuffle: Any, seed: Any) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    if not isinstance(shuffle, bool):
        raise ConfigTypeError(f"shuffle must be True or False, got {shuffle!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise ConfigError(f"seed must be None or a whole number >= 0 (e.g. the epoch number), got {seed!r}")


def _torch_dataset(data: TrainingData, batch_size: int, shuffle: bool, seed: int | None):
    import torch
    from torch.utils.data import IterableDataset, get_worker_info

    def tensor(column):
        array = column.to_numpy(zero_copy_only=False, writable=True)
        try:
            return torch.from_numpy(array)
        except TypeError:  # strings, lists, ...: not a tensor
            return array

    class EpochDataset(IterableDataset):
        """Each iteration is one epoch of `data`; iteration k shuffles with seed + k."""

        def __init__(self):
            self.epochs = 0

        def __len__(self) -> int:
            return -(-data.num_rows // batch_size)

        def __iter__(self):
            if get_worker_info() is not None:
                raise ConfigError(
                    "the training data dataset yields assembled batches from this process's store: "
                    "use DataLoader(dataset, batch_size=None) with num_workers=0"
                )
            epoch_seed = None if seed is None else seed + self.epochs
            self.epochs += 1
            for batch in data.epoch(batch_size, shuffle, epoch_seed):
                yield {name: tensor(column) for name, column in zip(batch.schema.names, batch.columns, strict=True)}

    return EpochDataset()
