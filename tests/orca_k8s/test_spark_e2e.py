"""Spark's own Kubernetes scheduler backend end to end: the driver here, executors as pods that a
local kubelet runs as JVMs on this machine; the pods go with stop_orca_context(). Spark authenticates:
its secret reaches the executors in the pod's environment (`_SPARK_AUTH_SECRET`), never on a command line."""

import os
import sys

from k8s_apiserver import LocalKubelet
from orca_k8s import owner

from orca_core import init_orca_context, spark_security, stop_orca_context
from orca_core.ports import wait_for
from orca_core.testing import driver_admits


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
        conf = sc.getConf()
        assert conf.get("spark.authenticate") == "true"
        (container,) = pod["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        secret = env.get(spark_security.DAEMON_ENV)  # where Spark's executors read it
        assert secret and len(secret) >= 32
        assert not [a for a in (*container.get("command", []), *container.get("args", [])) if secret in a]
        (proc,) = kubelet.procs.values()
        with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
            assert secret.encode() not in f.read()
        total = sc.parallelize(range(100), 2).map(lambda x: x * x).sum()
        assert total == sum(x * x for x in range(100))
        executors = sc._jsc.sc().getExecutorIds()
        assert executors.size() == 1 and executors.apply(0) == "1"
        # the executor that ran the tasks held the secret; a client without it is refused
        assert not driver_admits(f"{conf.get('spark.driver.host')}:{conf.get('spark.driver.port')}")
        stop_orca_context()
        wait_for(lambda: not cluster.live("pods") and not kubelet.running(), 30, "the executor pods to be removed")
        assert app not in cluster.live("configmaps")
    finally:
        stop_orca_context()
        kubelet.stop()
