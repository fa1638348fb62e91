"""Orca's quickstart: Spark and Ray on this machine, a helper module shipped to both, then stop."""

import os
import tempfile

from orca_core import OrcaContext, init_orca_context, stop_orca_context

with tempfile.TemporaryDirectory() as tmp:
    helpers = os.path.join(tmp, "helpers.py")
    with open(helpers, "w") as f:
        f.write("def f(x):\n    return x * x\n")

    sc = init_orca_context(cluster_mode="local", cores=2, memory="2g", init_ray_on_spark=True,
                           extra_python_lib=helpers)
    try:
        squares = sc.parallelize(range(10), 2).map(lambda x: __import__("helpers").f(x)).collect()
        print("Spark squares:", squares)

        spark = OrcaContext.get_spark_session()
        print("Spark SQL count:", spark.range(1000).filter("id % 7 = 0").count())

        import ray

        @ray.remote
        def cube(x):
            import helpers

            return helpers.f(x) * x

        print("Ray cubes:", ray.get([cube.remote(i) for i in range(5)]))
        ray_ctx = OrcaContext.get_ray_context()
        print(f"Ray at {ray_ctx.address}, dashboard {ray_ctx.dashboard_url}, Spark UI {sc.uiWebUrl}")
    finally:
        stop_orca_context()
print("stopped: nothing left running")
