import pytest

from orca_core import OrcaContext, OrcaError
from orca_core.errors import NotRunning


def test_defaults():
    assert OrcaContext.log_output is False
    assert OrcaContext.serialize_data_creator is False
    assert OrcaContext.pandas_read_backend == "spark"
    assert OrcaContext.train_data_store == "DRAM"
    assert OrcaContext.barrier_mode is True


def test_settings_round_trip():
    OrcaContext.log_output = True
    OrcaContext.pandas_read_backend = "Pandas"
    OrcaContext.barrier_mode = False
    assert OrcaContext.log_output is True
    assert OrcaContext.pandas_read_backend == "pandas"
    assert OrcaContext.barrier_mode is False


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("log_output", "yes", "True or False"),
        ("serialize_data_creator", 1, "True or False"),
        ("barrier_mode", None, "True or False"),
        ("pandas_read_backend", "polars", '"spark" or "pandas"'),
        ("train_data_store", "DISK_x", "whole number"),
        ("train_data_store", "DISK_2x", "whole number"),
        ("train_data_store", "SSD", "matches no installed data store"),
        ("train_data_store", 3, "string"),
    ],
)
def test_bad_values_name_what_is_accepted(name, value, message):
    before = getattr(OrcaContext, name)
    with pytest.raises(OrcaError, match=message):
        setattr(OrcaContext, name, value)
    assert getattr(OrcaContext, name) == before


def test_unknown_setting_suggests_the_closest():
    with pytest.raises(OrcaError, match='did you mean "log_output"'):
        OrcaContext.log_ouptut = True


def test_handles_need_a_running_context():
    for getter in (OrcaContext.get_spark_context, OrcaContext.get_spark_session, OrcaContext.get_ray_context):
        with pytest.raises(NotRunning, match="init_orca_context"):
            getter()


def test_worker_env_carries_the_settings(monkeypatch):
    import json
    import subprocess
    import sys

    from orca_core.settings import worker_env

    OrcaContext.serialize_data_creator = True
    OrcaContext.pandas_read_backend = "pandas"
    env = {**__import__("os").environ, **worker_env()}
    out = subprocess.run(
        [sys.executable, "-c", "import json; from orca_core import OrcaContext as O; print(json.dumps(O.settings()))"],
        capture_output=True, text=True, env=env, check=True,
    )
    seen = json.loads(out.stdout)
    assert seen["serialize_data_creator"] is True
    assert seen["pandas_read_backend"] == "pandas"
