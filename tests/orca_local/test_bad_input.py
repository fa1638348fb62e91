"""Bad input gives a clear OrcaError before anything starts; a valid call still works after it."""

import psutil
import pytest

from orca_core import OrcaContext, OrcaError, init_orca_context, plan_orca_context, stop_orca_context

BAD_CALLS = [
    ({"cluster_mode": "lokal"}, 'did you mean "local"'),
    ({"cores": 0}, "cores"),
    ({"cores": -2}, "cores"),
    ({"cores": "four"}, "cores"),
    ({"cores": 2.5}, "cores"),
    ({"memory": "2 gigs"}, "memory"),
    ({"memory": "-1g"}, "memory"),
    ({"num_nodes": 0}, "num_nodes"),
    ({"init_ray_on_sprak": True}, 'did you mean "init_ray_on_spark"'),
    ({"init_ray_on_spark": "yes"}, "True or False"),
    ({"extra_python_lib": "/missing/x.py"}, "/missing/x.py"),
    ({"extra_python_lib": 3}, "extra_python_lib"),
    ({"conf": {"spark.executor.memory": [2]}}, r"strings, numbers or bools.*'\[2\]'"),
    ({"conf": "spark.master=local"}, "dict"),
    ({"runtime": "dask"}, "runtime"),
    ({"object_store_memory": "lots"}, "object_store_memory"),
    ({"include_webui": "no"}, "include_webui must be bool"),
    ({"num_nodes": 3}, "num_nodes=3, and local mode runs on this machine alone"),
    ({"num_nodes": 3, "conf": {"spark.master": "local-cluster[2,1,1024]"}},
     r"runs the 2 executor\(s\) of master local-cluster\[2,1,1024\]"),
    ({"runtime": "ray", "memory": "8g"}, "memory sizes Spark's driver, and runtime='ray' starts no Spark"),
]


@pytest.mark.parametrize("kwargs, message", BAD_CALLS, ids=[str(k) for k, _ in BAD_CALLS])
def test_bad_call_is_a_clear_error_before_anything_starts(kwargs, message):
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(OrcaError, match=message):
        init_orca_context(**kwargs)
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before


def test_a_local_cluster_takes_its_executor_count_as_num_nodes():
    plan = plan_orca_context(num_nodes=2, conf={"spark.master": "local-cluster[2,1,1024]"})
    assert plan.master == "local-cluster[2,1,1024]"


def test_a_file_that_is_not_python(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("a,b\n")
    with pytest.raises(OrcaError, match="not a .py, .zip or .egg"):
        plan_orca_context(extra_python_lib=str(data))


def test_ray_on_a_cluster_master_needs_a_cluster_mode():
    with pytest.raises(OrcaError, match="standalone"):
        plan_orca_context(init_ray_on_spark=True, conf={"spark.master": "spark://somewhere:7077"})


def test_spark_submit_mode_outside_spark_submit():
    with pytest.raises(OrcaError, match="spark-submit"):
        init_orca_context(cluster_mode="spark-submit")


def test_valid_call_after_every_bad_one():
    for kwargs, _ in BAD_CALLS:
        with pytest.raises(OrcaError):
            init_orca_context(**kwargs)
    for name, value in [("log_output", "yes"), ("train_data_store", "DISK_x"), ("pandas_read_backend", "polars")]:
        with pytest.raises(OrcaError):
            setattr(OrcaContext, name, value)
    sc = init_orca_context(cluster_mode="local", cores=1, memory="1g")
    try:
        assert sc.parallelize(range(3)).sum() == 3
    finally:
        stop_orca_context()
