"""open_training_data with the built-in DRAM store, its adapters, bad input, and a third-party store."""

import numpy as np
import pyarrow as pa
import pytest
import torch

from orca_core import OrcaContext
from orca_core.data import TrainingData, open_training_data
from orca_core.data.stores import DataStoreError
from orca_core.errors import ConfigError, ConfigTypeError, OrcaError

ROWS = 2500


@pytest.fixture
def table():
    return pa.table({"id": np.arange(ROWS), "x": np.arange(ROWS) * 0.5, "s": [f"r{i}" for i in range(ROWS)]})


def ids(batches):
    return [i for batch in batches for i in batch.column("id").to_pylist()]


@pytest.mark.parametrize("kind", ["table", "chunked", "pandas", "iterator", "list", "record_batch"])
def test_every_source_kind_gives_every_row_once(table, kind):
    source = {
        "table": lambda: table,
        "chunked": lambda: pa.Table.from_batches(table.to_batches(max_chunksize=333)),
        "pandas": lambda: table.to_pandas(),
        "iterator": lambda: iter(table.to_batches(max_chunksize=100)),
        "list": lambda: table.to_batches(max_chunksize=700),
        "record_batch": lambda: table.combine_chunks().to_batches()[0],
    }[kind]()
    with open_training_data(source) as td:
        assert isinstance(td, TrainingData) and td.setting == "DRAM"
        assert td.num_rows == ROWS and td.schema.names == ["id", "x", "s"]
        batches = list(td.epoch(batch_size=256, shuffle=True, seed=3))
        assert sorted(ids(batches)) == list(range(ROWS))
        assert [b.num_rows for b in batches] == [256] * (ROWS // 256) + [ROWS % 256]
        row = {k: v[0] for k, v in batches[0].slice(0, 1).to_pydict().items()}
        assert row == {"id": row["id"], "x": row["id"] * 0.5, "s": f"r{row['id']}"}


def test_shuffle_follows_the_seed_and_no_shuffle_keeps_the_order(table):
    with open_training_data(table, store="DRAM") as td:
        first = ids(td.epoch(100, shuffle=True, seed=1))
        assert first == ids(td.epoch(100, shuffle=True, seed=1))
        assert first != ids(td.epoch(100, shuffle=True, seed=2))
        assert first != list(range(ROWS))
        assert ids(td.epoch(100, shuffle=False)) == list(range(ROWS))


def test_store_none_follows_the_setting(table):
    OrcaContext.train_data_store = "dram"
    with open_training_data(table) as td:
        assert td.setting == "DRAM"


def test_empty_iterator_gives_an_empty_epoch():
    with open_training_data(iter([])) as td:
        assert td.num_rows == 0
        assert list(td.epoch()) == []


def test_numpy_batches(table):
    with open_training_data(table) as td:
        batches = list(td.numpy_batches(batch_size=1000, shuffle=False))
    assert [len(b["id"]) for b in batches] == [1000, 1000, 500]
    assert isinstance(batches[0]["x"], np.ndarray) and batches[0]["x"][3] == 1.5
    assert batches[2]["s"][-1] == f"r{ROWS - 1}"


def test_torch_dataset_trains_and_reshuffles_every_epoch(table):
    with open_training_data(table) as td:
        dataset = td.torch_dataset(batch_size=500, shuffle=True, seed=7)
        assert len(dataset) == 5
        loader = torch.utils.data.DataLoader(dataset, batch_size=None)
        epochs = [[batch for batch in loader] for _ in range(2)]
    for batches in epochs:
        assert isinstance(batches[0]["x"], torch.Tensor) and batches[0]["x"].dtype == torch.float64
        assert isinstance(batches[0]["s"], np.ndarray)  # strings stay numpy
        assert sorted(torch.cat([b["id"] for b in batches]).tolist()) == list(range(ROWS))
    assert not torch.equal(epochs[0][0]["id"], epochs[1][0]["id"])

    model = torch.nn.Linear(1, 1, dtype=torch.float64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaled = [(b["id"].double()[:, None] / ROWS, b["x"][:, None] / ROWS) for b in epochs[0]]
    for _ in range(200):
        for features, target in scaled:
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(features), target)
            loss.backward()
            optimizer.step()
    assert model.weight.item() == pytest.approx(0.5, abs=0.05)


def test_torch_dataset_refuses_loader_workers(table):
    with open_training_data(table) as td:
        loader = torch.utils.data.DataLoader(td.torch_dataset(), batch_size=None, num_workers=1)
        with pytest.raises(ConfigError, match="num_workers=0"):
            next(iter(loader))


def test_closed_data_says_so(table):
    td = open_training_data(table)
    td.close()
    td.close()
    with pytest.raises(DataStoreError, match="closed"):
        td.epoch()
    assert "closed" in repr(td)


@pytest.mark.parametrize(
    "source, error, message",
    [
        ([1, 2, 3], ConfigTypeError, "list of int"),
        ("a.csv", ConfigTypeError, "got str"),
        ({"id": [1]}, ConfigTypeError, "got dict"),
        (42, ConfigTypeError, "got int"),
        (np.arange(3), ConfigTypeError, "ndarray"),
    ],
)
def test_unsupported_sources_are_refused(source, error, message):
    with pytest.raises(error, match=message) as raised:
        open_training_data(source)
    assert "pyarrow Table, a pandas DataFrame or an iterator of pyarrow.RecordBatch" in str(raised.value)


def test_a_bad_later_batch_is_refused(table):
    good = table.to_batches(max_chunksize=1000)
    with pytest.raises(ConfigTypeError, match="item 1 .* is a dict"):
        open_training_data(iter([good[0], {"id": 1}]))
    other = pa.record_batch({"id": pa.array([1.0])})
    with pytest.raises(ConfigError, match="record batch 1 .* same schema"):
        open_training_data(iter([good[0], other]))


@pytest.mark.parametrize(
    "store, error, message",
    [
        (3, ConfigTypeError, "must be a string"),
        ("SSD", ConfigError, "matches no installed data store"),
        ("DISK_x", ConfigError, "whole number n >= 2"),
    ],
)
def test_bad_store_settings(table, store, error, message):
    with pytest.raises(error, match=message):
        open_training_data(table, store=store)


def test_unknown_option_names_the_valid_ones(table):
    with pytest.raises(ConfigError, match='unknown option "locl_dir" for store DRAM; its options: none'):
        open_training_data(table, store="DRAM", locl_dir="/tmp")


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "batch_size"), ({"batch_size": True}, "batch_size"), ({"batch_size": 2.5}, "batch_size"),
    ({"shuffle": "yes"}, "shuffle"), ({"seed": -1}, "seed"), ({"seed": "x"}, "seed"),
])
def test_bad_epoch_arguments(table, kwargs, message):
    with open_training_data(table) as td:
        with pytest.raises(OrcaError, match=message):
            td.epoch(**kwargs)
        with pytest.raises(OrcaError, match=message):
            td.torch_dataset(**kwargs)


THIRD_PARTY = """
    from orca_core import hookimpl
    from orca_core.data.stores import DramStore
    from orca_core.records import DataStore, Option

    class ReversedStore(DramStore):
        def __init__(self, source, tag):
            super().__init__(source)
            self.tag = tag

        def epoch(self, batch_size, shuffle, seed):
            return reversed(list(super().epoch(batch_size, False, seed)))

    @hookimpl
    def orca_data_stores():
        yield DataStore("REVERSED", r"REVERSED", open=lambda source, match, tag="": ReversedStore(source, tag),
                        summary="batches last first", options=(Option("tag", str),))
        yield DataStore("BROKEN", r"BROKEN", open=lambda source, match: object(), summary="returns junk")
"""


def test_a_third_party_store_is_selected_by_the_setting(table, fake_distribution):
    fake_distribution("orca-store-reversed", {"reversed": "store_reversed"}, {"store_reversed.py": THIRD_PARTY})
    OrcaContext.train_data_store = "REVERSED"
    with open_training_data(table, tag="mine") as td:
        assert td.setting == "REVERSED"
        assert ids(td.epoch(1000))[:3] == [2000, 2001, 2002]
    with pytest.raises(ConfigTypeError, match="option tag of store REVERSED"):
        open_training_data(table, tag=3)
    with pytest.raises(OrcaError, match='data store "BROKEN" returned object'):
        open_training_data(table, store="BROKEN")
