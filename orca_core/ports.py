"""Free loopback ports, this host's addresses, and waiting on conditions with a deadline."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports that were free on `host` a moment ago."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((host, 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05):
    """Poll `condition` until it returns a true value; TimeoutError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def is_loopback(host: str) -> bool:
    """True if `host` (a name or an address) is this machine's loopback, which no other host reaches."""
    import ipaddress

    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return any(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def outward_address(towards: str | None = None) -> str:
    """This host's address on its route to `towards`, else on its default route (no packet is sent);
    127.0.0.1 when it has no other."""
    for target in (towards, "8.8.8.8"):
        if not target:
            continue
        try:
            family, _, _, _, address = socket.getaddrinfo(target, 9, proto=socket.IPPROTO_UDP)[0]
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect(address)
                ip = probe.getsockname()[0]
        except OSError:
            continue
        if not is_loopback(ip):
            return ip
    return "127.0.0.1"
