"""Run with only orca-core installed (nox -s core_only)."""

import importlib.util
import subprocess
import sys

import pytest

from orca_core import OrcaError, init_orca_context


def test_no_plugin_is_installed():
    from importlib import metadata

    for dist in ("orca-local", "orca-standalone", "orca-yarn", "orca-k8s", "orca-slurm", "pyspark"):
        with pytest.raises(metadata.PackageNotFoundError):
            metadata.distribution(dist)
    assert importlib.util.find_spec("pyspark") is None


def test_asking_for_local_says_what_to_install():
    with pytest.raises(OrcaError, match="pip install orca-local"):
        init_orca_context(cluster_mode="local")


@pytest.mark.parametrize("mode, dist", [("yarn", "orca-yarn"), ("k8s-cluster", "orca-k8s"),
                                        ("standalone", "orca-standalone"), ("slurm", "orca-slurm")])
def test_first_party_modes_say_their_package(mode, dist):
    with pytest.raises(OrcaError, match=f"pip install {dist}"):
        init_orca_context(cluster_mode=mode)


def test_disk_store_says_its_package():
    from orca_core import OrcaContext

    with pytest.raises(OrcaError, match="pip install orca-storage-disk"):
        OrcaContext.train_data_store = "DISK_2"


def test_cli_lists_the_builtin_store_and_no_mode():
    out = subprocess.run([sys.executable, "-m", "orca_core.cli", "plugins"], capture_output=True, text=True,
                         check=True)
    assert "DRAM" in out.stdout and "cluster mode" not in out.stdout
