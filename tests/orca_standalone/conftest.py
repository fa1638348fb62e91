import sys
import textwrap

import pytest

DRIVER = textwrap.dedent(
    """
    import sys
    from orca_core import OrcaContext, init_orca_context, stop_orca_context

    sc = init_orca_context(cluster_mode="standalone", cores=1, memory="1g", num_nodes=2, init_ray_on_spark=True,
                           include_webui=False)
    assert sc.parallelize(range(10), 2).sum() == 45
    import ray
    assert ray.get(ray.remote(lambda: 1).remote()) == 1
    print("UP", flush=True)
    if sys.argv[1] == "stop":
        stop_orca_context()
        print("STOPPED", flush=True)
    else:
        sys.stdin.read()
    """
)


@pytest.fixture
def driver_script(tmp_path):
    path = tmp_path / "driver.py"
    path.write_text(DRIVER)
    return [sys.executable, str(path)]
