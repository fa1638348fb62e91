import zipfile

import pytest

from orca_core.testing import write_driver


@pytest.fixture(scope="session")
def libs(tmp_path_factory):
    """extra_python_lib entries of every kind: a .py, a .zip, a package directory, a plain directory."""
    root = tmp_path_factory.mktemp("libs")
    (root / "helpers.py").write_text("def f(x):\n    return x * 2\n")
    with zipfile.ZipFile(root / "lib3.zip", "w") as zf:
        zf.writestr("lib3.py", "def g(x):\n    return x + 3\n")
    pkg = root / "pkgdir" / "mypkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("VALUE = 'from a package directory'\n")
    plain = root / "plain"
    plain.mkdir()
    (plain / "plainmod.py").write_text("VALUE = 'from a plain directory'\n")
    return {"py": str(root / "helpers.py"), "zip": str(root / "lib3.zip"), "pkg": str(pkg), "plain": str(plain)}


DRIVER = """
    import json, os, sys, threading
    from orca_core import init_orca_context, stop_orca_context

    mode = sys.argv[1]
    if mode == "cycles":
        import psutil
        me = psutil.Process()
        seen = []
        with_ray = sys.argv[3] == "ray"
        for i in range(int(sys.argv[2])):
            ray_options = {"init_ray_on_spark": True, "include_webui": False} if with_ray else {}
            sc = init_orca_context(cluster_mode="local", cores=1, memory="1g", **ray_options)
            assert sc.parallelize(range(4)).count() == 4
            if with_ray:
                import ray
                assert ray.get(ray.remote(lambda: 1).remote()) == 1
            stop_orca_context()
            seen.append({"threads": threading.active_count(), "fds": me.num_fds(),
                         "children": len(me.children(recursive=True))})
        print(json.dumps(seen))
        sys.exit(0)
    sc = init_orca_context(cluster_mode="local", cores=2, memory="1g", init_ray_on_spark=True)
    assert sc.parallelize(range(10), 2).sum() == 45
    import ray
    assert ray.get(ray.remote(lambda: 1).remote()) == 1
"""


@pytest.fixture
def driver_script(tmp_path):
    return write_driver(tmp_path, DRIVER)
