from orca_core.testing import ClusterModeConformance


class TestStandaloneWithMaster(ClusterModeConformance):
    cluster_mode = "standalone"
    options = {"master": "spark://10.1.2.3:7077"}


class TestStandaloneStartedByOrca(ClusterModeConformance):
    cluster_mode = "standalone"


class TestRay(ClusterModeConformance):
    cluster_mode = "ray"
    options = {"address": "ray://10.1.2.3:10001"}
    accepts_conf = False
