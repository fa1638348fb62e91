"""The gate of a barrier stage's Ray-node tasks on the driver's control server (real sockets on loopback)."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from orca_core.engines.control import ControlServer, agree
from orca_core.ports import wait_for


@pytest.fixture
def server():
    control = ControlServer("127.0.0.1")
    yield control
    control.close(timeout=5)


def _waiting(server, key, count):
    """Until `count` tasks wait at gate `key`."""
    wait_for(lambda: key in server._gates and len(server._gates[key].waiting) == count, 10, f"{count} at gate {key}")


def _say(server, key, n, said, secret=None, timeout=10.0):
    return agree(server.address, secret or server.secret, key, n, said, timeout)


def test_every_task_hears_ok_once_all_said_ok(server):
    with ThreadPoolExecutor(3) as pool:
        first = [pool.submit(_say, server, "7", 3, "ok") for _ in range(2)]
        _waiting(server, "7", 2)  # they wait for the third
        assert not any(f.done() for f in first)
        last = pool.submit(_say, server, "7", 3, "ok")
        assert [f.result(timeout=5) for f in [*first, last]] == ["ok"] * 3


def test_a_failure_reaches_every_task_at_once_and_every_later_one(server):
    with ThreadPoolExecutor(3) as pool:
        waiting = pool.submit(_say, server, "8", 3, "ok")
        _waiting(server, "8", 1)
        assert _say(server, "8", 3, "Ray node 1 failed to start:\nport taken") == "Ray node 1 failed to start:\nport taken"
        assert waiting.result(timeout=5) == "Ray node 1 failed to start:\nport taken"  # the third never came
        assert _say(server, "8", 3, "ok") == "Ray node 1 failed to start:\nport taken"


def test_gates_of_different_stages_are_separate(server):
    with ThreadPoolExecutor(2) as pool:
        other = pool.submit(_say, server, "9", 2, "ok")
        _waiting(server, "9", 1)
        assert _say(server, "10", 1, "ok") == "ok"
        assert not other.done()
        assert _say(server, "9", 2, "ok") == "ok"
        assert other.result(timeout=5) == "ok"


def test_a_wrong_secret_is_refused(server):
    with pytest.raises(RuntimeError, match="closed the gate"):
        _say(server, "11", 1, "ok", secret="0" * 32)


def test_closing_the_server_ends_every_wait(server):
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(_say, server, "12", 2, "ok", timeout=60)
        _waiting(server, "12", 1)
        server.close(timeout=5)
        with pytest.raises(RuntimeError, match="closed the gate"):
            waiting.result(timeout=5)


def test_a_long_failure_arrives_cut_to_its_first_characters(server):
    said = "\U0001f525" * 20000  # 240 kB of JSON escapes
    assert _say(server, "13", 1, said) == said[:4096]
