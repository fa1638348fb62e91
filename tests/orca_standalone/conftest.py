import pytest

from orca_core.testing import write_driver

DRIVER = """
    import sys
    from orca_core import OrcaContext, init_orca_context, stop_orca_context

    sc = init_orca_context(cluster_mode="standalone", cores=1, memory="1g", num_nodes=2, init_ray_on_spark=True,
                           include_webui=False)
    assert sc.parallelize(range(10), 2).sum() == 45
    import ray
    assert ray.get(ray.remote(lambda: 1).remote()) == 1
"""


@pytest.fixture
def driver_script(tmp_path):
    return write_driver(tmp_path, DRIVER)
