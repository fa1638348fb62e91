import os

import pytest

# Ray must never read or write ~/.ray/auth_token on behalf of the tests.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(autouse=True)
def _reset_settings():
    from orca_core import OrcaContext

    yield
    OrcaContext.reset()
