import warnings

import pytest

from orca_core.errors import PluginConflict, UnknownClusterMode
from orca_core.plugins import PluginWarning, get_plugin_manager

MODE_PLUGIN = """
from orca_core import hookimpl
from orca_core.backend import ClusterBackend
from orca_core.plan import LaunchPlan
from orca_core.records import ClusterMode, Option


class Backend(ClusterBackend):
    def plan(self):
        return LaunchPlan(cluster_mode="{name}", master="fake://" + self.options["where"])


@hookimpl
def orca_cluster_modes():
    yield ClusterMode("{name}", Backend, "a fake mode", aliases=("{alias}",),
                      options=(Option("where", str, "here"),))
"""


def mode_source(name, alias):
    return MODE_PLUGIN.replace("{name}", name).replace("{alias}", alias)


def test_entry_point_plugin_is_discovered_and_planned(fake_distribution):
    fake_distribution("orca-fake", {"fake": "fake_mode"}, {"fake_mode.py": mode_source("fake", "fk")})
    from orca_core import plan_orca_context

    registry = get_plugin_manager()
    assert registry.modes["fake"][1].distribution == "orca-fake"
    assert registry.cluster_mode("fk") is registry.cluster_mode("fake")
    assert plan_orca_context(cluster_mode="fk", where="there").master == "fake://there"


def test_unknown_option_lists_the_valid_ones(fake_distribution):
    fake_distribution("orca-fake", {"fake": "fake_mode"}, {"fake_mode.py": mode_source("fake", "fk")})
    from orca_core import OrcaError, plan_orca_context

    with pytest.raises(OrcaError, match=r'did you mean "where"\?.*valid options: .*where'):
        plan_orca_context(cluster_mode="fake", wher="x")
    with pytest.raises(OrcaError, match="where must be str"):
        plan_orca_context(cluster_mode="fake", where=3)


def test_two_providers_of_one_name_are_both_named(fake_distribution):
    fake_distribution("orca-one", {"one": "one_mode"}, {"one_mode.py": mode_source("twice", "t1")})
    fake_distribution("orca-two", {"two": "two_mode"}, {"two_mode.py": mode_source("twice", "t2")})
    with pytest.raises(PluginConflict) as info:
        get_plugin_manager()
    assert "orca-one" in str(info.value) and "orca-two" in str(info.value)


def test_alias_clash_with_first_party_mode(fake_distribution):
    fake_distribution("orca-clash", {"clash": "clash_mode"}, {"clash_mode.py": mode_source("mine", "local")})
    with pytest.raises(PluginConflict, match="orca-local.*orca-clash|orca-clash.*orca-local"):
        get_plugin_manager()


def test_broken_plugin_warns_unless_its_mode_is_asked_for(fake_distribution):
    fake_distribution("orca-broken", {"broken": "broken_mode"}, {"broken_mode.py": "raise ImportError('no lib')"})
    with pytest.warns(PluginWarning, match="orca-broken"):
        registry = get_plugin_manager()
    assert "local" in registry.modes  # the other modes still work
    with pytest.raises(UnknownClusterMode, match="failed to load: no lib") as info:
        registry.cluster_mode("broken")
    assert isinstance(info.value.__cause__, ImportError)


def test_unknown_mode_suggests_and_lists_installed(orca_registry):
    with pytest.raises(UnknownClusterMode, match=r'"lokal" \(did you mean "local"\?\); installed modes: .*"local"'):
        orca_registry.cluster_mode("lokal")


def test_missing_first_party_mode_says_what_to_install(monkeypatch):
    monkeypatch.setenv("ORCA_PLUGINS", "local")
    registry = get_plugin_manager()
    with pytest.raises(UnknownClusterMode, match="pip install orca-yarn"):
        registry.cluster_mode("yarn-client")
    with pytest.raises(UnknownClusterMode, match="pip install orca-k8s"):
        registry.cluster_mode("k8s")


def test_autoload_can_be_disabled(monkeypatch):
    monkeypatch.setenv("ORCA_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = get_plugin_manager()
    assert registry.modes == {}
    assert [s.name for s, _ in registry.stores] == ["DRAM"]  # built in
    with pytest.raises(UnknownClusterMode, match="pip install orca-local"):
        registry.cluster_mode("local")


def test_orca_plugins_selects_entry_points(monkeypatch, fake_distribution):
    fake_distribution("orca-fake", {"fake": "fake_mode"}, {"fake_mode.py": mode_source("fake", "fk")})
    monkeypatch.setenv("ORCA_PLUGINS", "fake")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        registry = get_plugin_manager()
    assert set(registry.modes) == {"fake", "fk"}


def test_plugin_yielding_a_wrong_record_is_named(fake_distribution):
    from orca_core import OrcaError

    source = "from orca_core import hookimpl\n@hookimpl\ndef orca_cluster_modes():\n    yield 'local2'\n"
    fake_distribution("orca-wrong", {"wrong": "wrong_mode"}, {"wrong_mode.py": source})
    with pytest.raises(OrcaError, match="orca-wrong.*not a ClusterMode"):
        get_plugin_manager()


def test_unknown_hook_in_a_plugin_is_an_error(fake_distribution):
    from pluggy import PluginValidationError

    source = "from orca_core import hookimpl\n@hookimpl\ndef orca_no_such_hook():\n    pass\n"
    fake_distribution("orca-typo", {"typo": "typo_mode"}, {"typo_mode.py": source})
    with pytest.raises(PluginValidationError, match="orca_no_such_hook"):
        get_plugin_manager()
