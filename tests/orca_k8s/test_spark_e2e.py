"""Spark's own Kubernetes scheduler backend end to end: the driver here, executors as pods that a
local kubelet runs as JVMs on this machine; the pods go with stop_orca_context()."""

import os
import sys

from k8s_apiserver import LocalKubelet
from orca_k8s import owner

from orca_core import init_orca_context, stop_orca_context
from orca_core.ports import wait_for


def test_spark_runs_tasks_in_executor_pods(cluster):
    import pyspark

    kubelet = LocalKubelet(cluster, os.path.dirname(pyspark.__file__)).start()
    try:
        sc = init_orca_context(
            cluster_mode="k8s-client", container_image="repo/spark-py:4", cores=1, memory="1g", num_nodes=1,
            conf={"spark.pyspark.python": sys.executable, "spark.ui.enabled": "false"},
        )
        assert sc.master == f"k8s://{cluster.url}"
        (pod,) = cluster.live("pods").values()
        app = pod["metadata"]["labels"][owner.APP]
        assert pod["metadata"]["ownerReferences"][0]["uid"] == cluster.live("configmaps")[app]["metadata"]["uid"]
        total = sc.parallelize(range(100), 2).map(lambda x: x * x).sum()
        assert total == sum(x * x for x in range(100))
        executors = sc._jsc.sc().getExecutorIds()
        assert executors.size() == 1 and executors.apply(0) == "1"
        stop_orca_context()
        wait_for(lambda: not cluster.live("pods") and not kubelet.running(), 30, "the executor pods to be removed")
        assert app not in cluster.live("configmaps")
    finally:
        stop_orca_context()
        kubelet.stop()
