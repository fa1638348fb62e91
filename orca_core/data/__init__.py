"""Data helpers that honour the OrcaContext settings.

- `open_training_data(source, store=None)`: training data in the store `OrcaContext.train_data_store` names.
- `run_data_creator(creator, config, batch_size)`: under a per-node lock when `serialize_data_creator`.
- `read_csv`, `read_json`, `read_parquet`: sharded pandas data, read as `pandas_read_backend` says.
- `spark_to_ray(df)`, `ray_to_spark(ds)`: Spark DataFrame <-> Ray Dataset in memory, through the Ray nodes.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "open_training_data": "orca_core.data.training",
    "TrainingData": "orca_core.data.training",
    "run_data_creator": "orca_core.data.creators",
    "read_csv": "orca_core.data.readers",
    "read_json": "orca_core.data.readers",
    "read_parquet": "orca_core.data.readers",
    "ShardedPandas": "orca_core.data.readers",
    "spark_to_ray": "orca_core.data.exchange",
    "ray_to_spark": "orca_core.data.exchange",
    "ExchangeError": "orca_core.data.exchange",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'orca_core.data' has no attribute {name!r}")
