"""What the exchange does without Ray, and with Datasets of a stopped context."""

import time

import pytest

from orca_core import init_orca_context, stop_orca_context
from orca_core.data import ExchangeError, ray_to_spark, spark_to_ray
from orca_core.errors import NotRunning


def test_no_context():
    with pytest.raises(NotRunning, match="init_ray_on_spark=True"):
        spark_to_ray(None)


def test_context_without_ray():
    sc = init_orca_context(cluster_mode="local", cores=1, memory="1g")
    try:
        from orca_core import OrcaContext

        with pytest.raises(NotRunning, match="runs no Ray: pass init_ray_on_spark=True"):
            spark_to_ray(OrcaContext.get_spark_session().range(3))
    finally:
        stop_orca_context()
    assert sc._jsc is None


def test_dataset_after_stop_raises_without_hanging():
    from orca_core import OrcaContext

    init_orca_context(cluster_mode="local", cores=2, memory="1g", init_ray_on_spark=True, include_webui=False)
    try:
        ds = spark_to_ray(OrcaContext.get_spark_session().range(0, 100, 1, 2))
        derived = ds.map(lambda r: {"id": r["id"] + 1})
        assert sorted(r["id"] for r in derived.take_all()) == list(range(1, 101))
    finally:
        stop_orca_context()
    import ray

    for use in (lambda: ds.take_all(), lambda: derived.take(1), lambda: list(ds.iter_batches()),
                lambda: ray_to_spark(ds)):
        started = time.monotonic()
        with pytest.raises(ExchangeError, match="Orca context that has stopped"):
            use()
        assert time.monotonic() - started < 5
    assert not ray.is_initialized()  # Ray did not start a cluster of its own
