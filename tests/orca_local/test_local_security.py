"""The driver of a `local[...]` context listens on a loopback port any local user can open: it authenticates
with a secret Spark makes inside the JVM, and refuses a client without it, unless the user's conf says otherwise."""

import pytest

from orca_core import init_orca_context, stop_orca_context
from orca_core.testing import driver_admits


@pytest.mark.parametrize(("options", "admitted"), [
    ({}, False),
    ({"spark_encryption": True}, False),
    ({"conf": {"spark.authenticate": "false"}}, True),  # the user's conf wins; and the client can get in
])
def test_the_driver_admits_only_who_holds_its_secret(options, admitted):
    sc = init_orca_context(cluster_mode="local", cores=1, memory="1g", **options)
    try:
        conf = sc.getConf()
        assert conf.get("spark.authenticate") == ("false" if admitted else "true")
        assert conf.get("spark.network.crypto.enabled", "false") == str(bool(options.get("spark_encryption"))).lower()
        assert driver_admits(f"127.0.0.1:{conf.get('spark.driver.port')}") is admitted
        assert sc.parallelize(range(10), 2).sum() == 45
    finally:
        stop_orca_context()
