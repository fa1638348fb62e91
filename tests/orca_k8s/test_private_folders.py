"""Pod templates live in a folder of the user's alone: a predictable path that another user made first,
or a link planted there, is refused rather than followed."""

import os
import tempfile

import pytest

from orca_core.errors import ConfigError


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """The temp dir Orca sees (its /tmp), shared with the other local users in these tests."""
    shared = tmp_path / "tmp"
    shared.mkdir(mode=0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    return shared


def _predictable(temp_dir):
    return temp_dir / f"orca-k8s-{os.getuid()}"


def test_templates_are_private_and_removed_at_stop(cluster, make_backend, temp_dir):
    backend, plan = make_backend()
    backend.start(plan)
    template = plan.spark_conf["spark.kubernetes.executor.podTemplateFile"]
    folder = os.path.dirname(template)
    assert os.path.dirname(folder) == str(_predictable(temp_dir))
    assert [os.stat(p).st_mode & 0o777 for p in (os.path.dirname(folder), folder, template)] == [0o700, 0o700, 0o600]
    backend.stop()
    assert not os.path.exists(folder)


def test_a_planted_link_is_not_followed(cluster, make_backend, temp_dir, tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    theirs.chmod(0o777)
    _predictable(temp_dir).symlink_to(theirs, target_is_directory=True)
    backend, plan = make_backend()
    with pytest.raises(ConfigError, match="not a folder"):
        backend.start(plan)
    assert list(theirs.iterdir()) == []
    backend.stop()
    assert _predictable(temp_dir).is_symlink() and theirs.is_dir()


@pytest.mark.skipif(os.getuid() != 0, reason="giving a folder to another user needs root")
def test_a_folder_of_another_user_is_refused(cluster, make_backend, temp_dir):
    folder = _predictable(temp_dir)
    folder.mkdir()
    folder.chmod(0o777)
    os.chown(folder, 65534, 65534)  # nobody
    backend, plan = make_backend()
    with pytest.raises(ConfigError, match="belongs to uid 65534"):
        backend.start(plan)
    assert list(folder.iterdir()) == []
    assert (folder.stat().st_uid, folder.stat().st_mode & 0o777) == (65534, 0o777)
