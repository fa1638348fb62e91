"""Run against wheels installed from ORCA_DIST_DIR (nox -s wheels): discovery from real metadata."""

import json
import os
import subprocess
import sys
from importlib import metadata

import orca_core

EXPECTED = {
    "local": "orca-local", "spark-submit": "orca-local", "standalone": "orca-standalone", "ray": "orca-standalone",
    "yarn-client": "orca-yarn", "yarn-cluster": "orca-yarn", "k8s-client": "orca-k8s", "k8s-cluster": "orca-k8s",
    "slurm": "orca-slurm",
}


def test_packages_come_from_installed_wheels_not_the_checkout():
    source = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "orca_core")
    assert os.sep + "site-packages" + os.sep in orca_core.__file__, orca_core.__file__
    assert not orca_core.__file__.startswith(source + os.sep), orca_core.__file__
    for dist in set(EXPECTED.values()):
        assert not metadata.distribution(dist).read_text("direct_url.json") or "editable" not in (
            metadata.distribution(dist).read_text("direct_url.json") or ""), dist
    for dist in set(EXPECTED.values()) | {"orca-core", "orca-storage-disk"}:
        assert metadata.version(dist) == "0.1.0"
        assert metadata.distribution(dist).read_text("WHEEL"), dist


def test_orca_plugins_discovers_every_first_party_entry_point():
    out = subprocess.run(["orca", "plugins", "--json"], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    modes = {row["name"]: row["distribution"] for row in data["plugins"] if row["kind"] == "cluster mode"}
    assert modes == EXPECTED
    stores = {row["name"]: row["distribution"] for row in data["plugins"] if row["kind"] == "data store"}
    assert stores == {"DRAM": "orca-core", "DISK": "orca-storage-disk"}
    assert data["failed"] == []


def test_pytest_plugin_is_registered():
    eps = metadata.entry_points(group="pytest11")
    assert any(ep.name == "orca" and ep.value == "orca_core.testing" for ep in eps)
    assert sys.executable
