"""Layered environments: packed per group of distributions, re-packed only where they changed, and
composed on a node from layers unpacked once per host."""

import json
import os
import subprocess
import tarfile

import pytest
from venvs import install

from orca_core.cli import main as orca
from orca_core.shipping import layers, nodecache, pack_environment, plan_environment
from orca_core.spark_cluster import write_launcher

CHECK = "import sys, termcolor; print(sys.prefix); print(termcolor.__file__)"


@pytest.fixture
def launcher(cache):
    return str(write_launcher(shared=True))


def names(path: str) -> list[str]:
    with tarfile.open(path) as tar:
        return [member.name for member in tar]


def launch(launcher, packed, node_envs, code=CHECK, **env):
    return subprocess.run(
        [launcher, "-c", code], capture_output=True, text=True, timeout=120,
        env={**os.environ, "ORCA_ENV_KEY": packed.key, "ORCA_ENV_ARCHIVE": packed.path, "ORCA_ENV_PYTHON": "bin/python",
             "ORCA_NODE_ENVS": str(node_envs), **env})


def leftovers(root) -> list[str]:
    return sorted(str(p) for p in root.rglob("*.tmp"))


def test_layers_hold_exactly_the_single_archive_and_a_small_install_repacks_one(venv, cache):
    single = pack_environment(prefix=venv, progress=False)
    layered = pack_environment(prefix=venv, progress=False, layered=True)
    planned = plan_environment(prefix=venv, layered=True)
    assert (planned.path, planned.key, planned.layers) == (layered.path, layered.key, layered.layers)
    assert layered.key != single.key and not layered.cached and layered.packed == layered.size
    members = [name for layer in layered.layers for name in names(layer)]
    assert sorted(members) == sorted(names(single.path)) and len(set(members)) == len(members)
    layer_names = {os.path.basename(p).split("-")[1] for p in layered.layers}
    assert "base" in layer_names and any(n == "group" for n in layer_names)
    listed = open(layered.path).read().split()  # the manifest: largest first, for the nodes to start on
    assert sorted(listed) == sorted(os.path.basename(p) for p in layered.layers)
    sizes = [os.path.getsize(os.path.join(os.path.dirname(layered.path), name)) for name in listed]
    assert sizes == sorted(sizes, reverse=True)
    assert {os.stat(p).st_mode & 0o777 for p in (layered.path, *layered.layers)} == {0o600}

    again = pack_environment(prefix=venv, progress=False, layered=True)
    assert again.cached and again.packed == 0 and again.layers == layered.layers

    install(venv, "six")
    after = pack_environment(prefix=venv, progress=False, layered=True)
    new = set(after.layers) - set(layered.layers)
    assert after.key != layered.key and len(new) == 1 and "-group-" in new.pop()
    assert after.packed == os.path.getsize(next(iter(set(after.layers) - set(layered.layers))))
    assert len(set(after.layers) & set(layered.layers)) == len(after.layers) - 1


def test_a_large_distribution_ships_in_parts_a_node_unpacks_side_by_side(venv, cache, launcher, tmp_path, monkeypatch):
    monkeypatch.setattr(layers, "LARGE", 1)  # termcolor's few KiB play a large distribution's part
    monkeypatch.setattr(layers, "PART", 4 << 10)
    single = pack_environment(prefix=venv, progress=False)
    packed = pack_environment(prefix=venv, progress=False, layered=True)
    parts = sorted(p for p in packed.layers if os.path.basename(p).startswith("venv-termcolor."))
    assert len(parts) > 1
    members = [name for layer in packed.layers for name in names(layer)]
    assert sorted(members) == sorted(names(single.path)) and len(set(members)) == len(members)
    with tarfile.open(single.path) as tar:
        sizes = {m.name: m.size for m in tar}
    loads = [sum(sizes[name] for name in names(part)) for part in parts]
    largest = max(sizes[name] for part in parts for name in names(part))
    assert max(loads) <= largest + sum(loads) / len(parts)  # about equal, a large file alone in its part

    node = tmp_path / "node-envs"
    done = launch(launcher, packed, node)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == str(node / packed.key) and leftovers(node) == []

    install(venv, "six")
    after = pack_environment(prefix=venv, progress=False, layered=True)
    assert set(parts) <= set(after.layers)  # termcolor's parts are kept as they were


def test_a_node_composes_the_layers_and_later_environments_reuse_them(venv, cache, launcher, tmp_path):
    node = tmp_path / "node-envs"
    first = pack_environment(prefix=venv, progress=False, layered=True)
    done = launch(launcher, first, node)
    assert done.returncode == 0, done.stderr
    prefix, module = done.stdout.split()
    assert prefix == str(node / first.key) and module.startswith(prefix + os.sep)
    record = json.loads((node / first.key / nodecache.MARKER).read_text())
    unpacked = {os.path.basename(p)[: -len(".tar.gz")] for p in first.layers}
    assert set(record["layers"]) == unpacked == set(os.listdir(node / nodecache.LAYERS)) - {
        n for n in os.listdir(node / nodecache.LAYERS) if n.endswith(".lock")}
    termcolor = next((node / first.key).rglob("termcolor/__init__.py"))
    in_layer = next((node / nodecache.LAYERS).rglob("termcolor/__init__.py"))
    assert os.stat(termcolor).st_ino == os.stat(in_layer).st_ino  # linked, not copied
    unpacked_at = {p.parent.name: (p.parent.stat().st_ino, json.loads(p.read_text())["unpacked"])
                   for p in (node / nodecache.LAYERS).glob(f"*/{nodecache.MARKER}")}

    install(venv, "six")
    second = pack_environment(prefix=venv, progress=False, layered=True)
    done = launch(launcher, second, node, code="import six, termcolor, sys; print(sys.prefix)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(node / second.key)
    new = json.loads((node / second.key / nodecache.MARKER).read_text())["layers"]
    assert len(set(new) - set(record["layers"])) == 1
    for layer in set(new) & set(record["layers"]):  # reused as they were, not unpacked again
        folder = node / nodecache.LAYERS / layer
        assert (folder.stat().st_ino, json.loads((folder / nodecache.MARKER).read_text())["unpacked"]) == unpacked_at[layer]
    assert leftovers(node) == []

    nodecache.remove(str(node), first.key)
    pruned = nodecache.prune(str(node))
    assert pruned == sorted(set(record["layers"]) - set(new))
    assert {n for n in os.listdir(node / nodecache.LAYERS) if not n.endswith(".lock")} == set(new)

    assert orca(["envs", "clear", "--cache", str(node)]) == 0  # the layers go with the environments
    assert nodecache.entries(str(node)) == [] and nodecache.entries(str(node / nodecache.LAYERS)) == []


def test_a_layer_missing_on_the_node_is_named_and_nothing_is_kept(venv, cache, launcher, tmp_path):
    packed = pack_environment(prefix=venv, progress=False, layered=True)
    missing = packed.layers[-1]
    os.unlink(missing)
    node = tmp_path / "node-envs"
    done = launch(launcher, packed, node)
    assert done.returncode == 1
    assert f"the environment archive {missing} is not on" in done.stderr
    assert not (node / packed.key).exists() and leftovers(node) == []
    complete = [e["key"] for e in nodecache.entries(str(node / nodecache.LAYERS))]
    assert os.path.basename(missing)[: -len(".tar.gz")] not in complete


def test_a_node_elsewhere_fetches_the_manifest_and_layers_from_the_driver(venv, cache, launcher, tmp_path):
    from orca_core.shipping.serve import ArchiveServer

    packed = pack_environment(prefix=venv, progress=False, layered=True)
    served = {os.path.basename(p): p for p in (packed.path, *packed.layers)}
    server = ArchiveServer("127.0.0.1", served)
    elsewhere = tmp_path / "driver" / os.path.basename(packed.path)  # not on this "node"
    node = tmp_path / "node-envs"
    try:
        done = subprocess.run(
            [launcher, "-c", CHECK], capture_output=True, text=True, timeout=120,
            env={**os.environ, "ORCA_ENV_KEY": packed.key, "ORCA_ENV_ARCHIVE": str(elsewhere),
                 "ORCA_NODE_ENVS": str(node), "ORCA_ENV_URL": server.url, "ORCA_ENV_TOKEN": server.token})
    finally:
        server.close()
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == str(node / packed.key) and leftovers(node) == []


def test_a_layer_cut_off_in_transfer_is_named_and_nothing_is_kept(venv, cache, launcher, tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    packed = pack_environment(prefix=venv, progress=False, layered=True)
    files = {os.path.basename(p): p for p in (packed.path, *packed.layers)}
    cut = os.path.basename(max(packed.layers, key=os.path.getsize))

    class CutsOneLayer(BaseHTTPRequestHandler):
        def do_GET(self):
            body = open(files[self.path.rsplit("/", 1)[-1]], "rb").read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if self.path.endswith(cut) else body)
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), CutsOneLayer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    node = tmp_path / "node-envs"
    try:
        done = launch(launcher, packed, node, ORCA_ENV_ARCHIVE=str(tmp_path / "driver" / os.path.basename(packed.path)),
                      ORCA_ENV_URL=f"http://127.0.0.1:{server.server_address[1]}/", ORCA_ENV_TOKEN="t")
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 1, done.stderr
    assert f"of the {os.path.getsize(files[cut])} bytes of http://127.0.0.1:" in done.stderr
    assert "the driver stopped serving it" in done.stderr
    assert not (node / packed.key).exists() and leftovers(node) == []
    complete = [e["key"] for e in nodecache.entries(str(node / nodecache.LAYERS))]
    assert cut[: -len(".tar.gz")] not in complete
