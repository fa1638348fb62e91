"""File systems of the pandas read backend come from the `orca_filesystems` hook, selected by URL scheme."""

import pytest

from orca_core.context import registry, reload_plugins
from orca_core.data.filesystems import LocalFileSystem, filesystem, scheme
from orca_core.errors import ConfigError, OrcaError, PluginConflict
from orca_core.plugins import get_plugin_manager

SECOND_FILE = """
from orca_core import hookimpl
from orca_core.records import FileSystemProvider


@hookimpl
def orca_filesystems():
    yield FileSystemProvider("FILE", lambda url: None, "another local file system")
"""


@pytest.fixture
def only_plugins(monkeypatch):
    """Load only the named entry points (and orca-core's built-ins)."""

    def select(names: str):
        monkeypatch.setenv("ORCA_PLUGINS", names)
        reload_plugins()

    yield select
    monkeypatch.delenv("ORCA_PLUGINS", raising=False)
    reload_plugins()


def test_plain_paths_and_file_urls_are_the_builtin_local_file_system(only_plugins, tmp_path):
    only_plugins("local")
    record, provider = registry().filesystems["file"]
    assert provider.distribution == "orca-core" and record.summary
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "_SUCCESS").write_text("")
    for url in (str(tmp_path), f"file://{tmp_path}", str(tmp_path / "*")):
        fs = filesystem(url)
        assert isinstance(fs, LocalFileSystem)
        assert fs.expand(url) == [str(tmp_path / "a.csv")]
    assert scheme("C:\\data\\a.csv") == "file" and scheme("HDFS://nn/x") == "hdfs"


def test_hdfs_without_a_provider_says_what_to_install(only_plugins):
    only_plugins("local")
    assert "hdfs" not in registry().filesystems
    with pytest.raises(ConfigError, match=r'"hdfs://" paths .*installed: "file://".*pip install orca-yarn'):
        filesystem("hdfs://namenode:8020/data/*.csv")


def test_unknown_scheme_lists_the_installed_ones(only_plugins):
    only_plugins("local")
    with pytest.raises(OrcaError, match=r'"s3://" paths .*installed: "file://".*"spark" read backend') as info:
        filesystem("s3://bucket/key.csv")
    assert "pip install" not in str(info.value)


def test_a_second_provider_of_a_scheme_names_both(fake_distribution):
    fake_distribution("orca-otherfile", {"otherfile": "orca_otherfile"}, {"orca_otherfile.py": SECOND_FILE})
    with pytest.raises(PluginConflict, match=r'"file://" is provided twice: by orca-core .* and by orca-otherfile'):
        get_plugin_manager()


def test_a_plugin_yielding_a_wrong_record_is_named(fake_distribution):
    source = "from orca_core import hookimpl\n@hookimpl\ndef orca_filesystems():\n    yield 'hdfs'\n"
    fake_distribution("orca-wrongfs", {"wrongfs": "orca_wrongfs"}, {"orca_wrongfs.py": source})
    with pytest.raises(OrcaError, match="orca-wrongfs.*not a FileSystemProvider"):
        get_plugin_manager()
