import os

import pytest

# Ray must never read or write ~/.ray/auth_token on behalf of the tests.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(autouse=True)
def _reset_settings():
    from orca_core import OrcaContext

    yield
    OrcaContext.reset()


@pytest.fixture(scope="session")
def linked_env_archive(tmp_path_factory):
    """A packed venv of a few KiB whose Python imports this environment's packages (a `.pth` adds
    its site-packages): for the tests of how an archive travels, not of what it holds."""
    import subprocess
    import sys
    import sysconfig

    from orca_core.shipping import pack_environment

    root = tmp_path_factory.mktemp("linked-env")
    venv = root / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)],
                   check=True)
    [site] = venv.glob("lib/python*/site-packages")
    (site / "orca_test_host.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORCA_CACHE_DIR", str(root / "cache"))
        return pack_environment(prefix=venv, progress=False).path
