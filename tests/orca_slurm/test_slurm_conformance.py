from orca_core.testing import ClusterModeConformance


class TestSlurm(ClusterModeConformance):
    cluster_mode = "slurm"
