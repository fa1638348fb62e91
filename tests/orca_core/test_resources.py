import os

import pytest

from orca_core.errors import ConfigError, ConfigTypeError, OrcaError
from orca_core.resources import Resources, jvm_size, parse_memory


@pytest.mark.parametrize(
    "text, size",
    [("512m", 512 << 20), ("2g", 2 << 30), ("1.5g", 3 << 29), ("2GiB", 2 << 30), ("2GB", 2 << 30),
     ("1024k", 1 << 20), (" 3G ", 3 << 30), (4096, 4096), ("1t", 1 << 40)],
)
def test_sizes_are_binary(text, size):
    assert parse_memory(text) == size


@pytest.mark.parametrize("bad", ["2 gigs", "-1g", "0", "g", "", "1.2.3g", 0, -5])
def test_bad_sizes(bad):
    with pytest.raises(ConfigError, match="memory"):
        parse_memory(bad)


@pytest.mark.parametrize("bad", [True, 2.5, None, [1]])
def test_bad_size_types(bad):
    with pytest.raises(ConfigTypeError, match="memory"):
        parse_memory(bad)


def test_jvm_size_is_whole_mebibytes():
    assert jvm_size(parse_memory("1.5g")) == "1536m"
    assert jvm_size(100) == "1m"


def test_default_cores_is_every_core():
    assert Resources.parse().cores == os.cpu_count()
    assert Resources.parse(cores=3).cores == 3


@pytest.mark.parametrize("cores", [0, -2, "four", 2.5, True])
def test_bad_cores(cores):
    with pytest.raises(OrcaError, match="cores"):
        Resources.parse(cores=cores)


@pytest.mark.parametrize("num_nodes", [0, -1, 1.0, "2"])
def test_bad_num_nodes(num_nodes):
    with pytest.raises(OrcaError, match="num_nodes"):
        Resources.parse(num_nodes=num_nodes)
