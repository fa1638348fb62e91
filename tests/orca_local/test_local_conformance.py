from orca_core.testing import ClusterModeConformance


class TestLocal(ClusterModeConformance):
    cluster_mode = "local"


class TestSparkSubmit(ClusterModeConformance):
    cluster_mode = "spark-submit"
    accepts_conf = False
