import os
import shutil
import tempfile

import pytest

# Ray must never read or write ~/.ray/auth_token on behalf of the tests.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

# The suite packs environments of gigabytes, and Ray stops spilling objects once the disk is 95% used.
MIN_FREE_BYTES = 10 * 2**30
MIN_FREE_SHARE = 0.10


def pytest_sessionstart(session):
    """End at once, saying why, on a disk too full for the suite: it would fail late and slowly."""
    folder = tempfile.gettempdir()
    disk = shutil.disk_usage(folder)
    if disk.free < max(MIN_FREE_BYTES, MIN_FREE_SHARE * disk.total):
        pytest.exit(f"{disk.free / 2**30:.1f} GiB free of {disk.total / 2**30:.1f} GiB on the disk of {folder}: the "
                    f"suite needs {MIN_FREE_BYTES / 2**30:.0f} GiB and {MIN_FREE_SHARE:.0%} of it free", returncode=4)


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
