"""Happy Eyeballs v2 (RFC 8305) over loopback: one family hangs, the other answers.

A connect that hangs is made with a listener whose accept backlog is full (see HangingListener):
the kernel drops the SYN, as a black-holed address would.
"""

from __future__ import annotations

import asyncio
import pathlib
import socket
from collections.abc import Iterator

import pytest

import hyperhttp
from hyperhttp import AiodnsResolver, ConnectError, ConnectTimeout
from hyperhttp.net.dns import Address
from tests.servers.faults import HangingListener, syn_sent
from tests.servers.hypercorn_app import HypercornServer, pattern

V4, V6 = socket.AF_INET, socket.AF_INET6


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(V6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback (::1) here")


class StaticResolver:
    """Answers every name with the addresses given, in that order (ports included)."""

    def __init__(self, *addresses: Address) -> None:
        self.addresses = list(addresses)

    async def resolve(self, host: str, port: int) -> list[Address]:
        return self.addresses


@pytest.fixture
def hanging() -> Iterator[list[HangingListener]]:
    listeners: list[HangingListener] = []
    yield listeners
    for listener in listeners:
        listener.close()


async def no_attempt_left(port: int) -> bool:
    """Whether the losing connects to ``port`` are gone (bounded: cancellation runs in a tick)."""
    for _ in range(200):
        if syn_sent(port) == 0:
            return True
        await asyncio.sleep(0)
    return False


async def test_second_family_wins_after_the_delay_when_the_first_hangs(
    hypercorn: HypercornServer, hanging: list[HangingListener]
) -> None:
    black_hole = HangingListener("::1")
    hanging.append(black_hole)
    resolver = StaticResolver((V6, ("::1", black_hole.port)), (V4, ("127.0.0.1", hypercorn.port)))
    loop = asyncio.get_running_loop()
    async with hyperhttp.Client(
        resolver=resolver, happy_eyeballs_delay=0.2, connect_timeout=5.0
    ) as client:
        started = loop.time()
        response = await client.get("http://dual.test/bytes/3")
        elapsed = loop.time() - started
        assert response.status_code == 200
        assert await response.aread() == pattern(3)
    # It waited for the delay (the IPv6 attempt really hung), not for the connect timeout.
    assert 0.15 <= elapsed < 2.0, elapsed
    assert await no_attempt_left(black_hole.port), "the losing IPv6 connect was not closed"


async def test_a_dual_stack_name_from_the_hosts_file_races_its_families(
    hypercorn: HypercornServer, hanging: list[HangingListener], tmp_path: pathlib.Path
) -> None:
    """Through the real resolver: the name is ::1 first (which hangs), then 127.0.0.1."""
    try:
        black_hole = HangingListener("::1", hypercorn.port)
    except OSError as exc:
        pytest.skip(f"cannot listen on [::1]:{hypercorn.port}: {exc}")
    hanging.append(black_hole)
    hosts = tmp_path / "hosts"
    hosts.write_text("::1 dual.test\n127.0.0.1 dual.test\n")
    resolver = AiodnsResolver(hosts_file=str(hosts))
    assert [family for family, _ in await resolver.resolve("dual.test", 80)] == [V6, V4]
    loop = asyncio.get_running_loop()
    async with hyperhttp.Client(
        resolver=resolver, happy_eyeballs_delay=0.2, connect_timeout=5.0
    ) as client:
        started = loop.time()
        response = await client.get(f"http://dual.test:{hypercorn.port}/bytes/4")
        elapsed = loop.time() - started
        assert response.status_code == 200
        assert await response.aread() == pattern(4)
    assert 0.15 <= elapsed < 2.0, elapsed
    assert await no_attempt_left(hypercorn.port)
    resolver.close()


async def test_a_failed_attempt_starts_the_next_at_once(hypercorn: HypercornServer) -> None:
    closed = socket.socket(V6)
    closed.bind(("::1", 0))  # bound, not listening: connects are refused
    try:
        resolver = StaticResolver(
            (V6, ("::1", closed.getsockname()[1])), (V4, ("127.0.0.1", hypercorn.port))
        )
        loop = asyncio.get_running_loop()
        async with hyperhttp.Client(resolver=resolver, happy_eyeballs_delay=3.0) as client:
            started = loop.time()
            response = await client.get("http://dual.test/bytes/1")
            assert response.status_code == 200
            assert loop.time() - started < 1.5  # not after the 3 s delay
    finally:
        closed.close()


async def test_every_address_failing_is_one_connect_error_naming_each() -> None:
    refusing = [socket.socket(V6), socket.socket(V4)]
    refusing[0].bind(("::1", 0))
    refusing[1].bind(("127.0.0.1", 0))
    p6, p4 = (s.getsockname()[1] for s in refusing)
    try:
        resolver = StaticResolver((V6, ("::1", p6)), (V4, ("127.0.0.1", p4)))
        async with hyperhttp.Client(resolver=resolver, happy_eyeballs_delay=3.0) as client:
            with pytest.raises(ConnectError) as caught:
                await client.get("http://dual.test/")
    finally:
        for sock in refusing:
            sock.close()
    error = caught.value
    assert [label for label, _ in error.attempts] == [f"[::1]:{p6}", f"127.0.0.1:{p4}"]
    assert all("refused" in reason.lower() for _, reason in error.attempts), error.attempts
    assert f"[::1]:{p6}" in str(error) and f"127.0.0.1:{p4}" in str(error)


async def test_connect_timeout_bounds_the_whole_race(hanging: list[HangingListener]) -> None:
    v6, v4 = HangingListener("::1"), HangingListener("127.0.0.1")
    hanging.extend([v6, v4])
    resolver = StaticResolver((V6, ("::1", v6.port)), (V4, ("127.0.0.1", v4.port)))
    loop = asyncio.get_running_loop()
    async with hyperhttp.Client(
        resolver=resolver, happy_eyeballs_delay=0.1, connect_timeout=0.5
    ) as client:
        started = loop.time()
        with pytest.raises(ConnectTimeout, match="timed out connecting"):
            await client.get("http://dual.test/")
        elapsed = loop.time() - started
        assert client.get_pool_stats()["http://dual.test:80"]["connections"] == 0
    assert 0.4 <= elapsed < 2.0, elapsed
    assert await no_attempt_left(v6.port) and await no_attempt_left(v4.port)


async def test_one_address_is_connected_by_the_loop_and_bounded_the_same(
    hanging: list[HangingListener], closed_port: int
) -> None:
    """A name with one address, without TLS, is connected by the event loop in one call (no
    race): a hanging connect is still a ConnectTimeout that leaves nothing behind, and a
    refused one a ConnectError naming the address, as for a race."""
    v4 = HangingListener("127.0.0.1")
    hanging.append(v4)
    loop = asyncio.get_running_loop()
    resolver = StaticResolver((V4, ("127.0.0.1", v4.port)))
    async with hyperhttp.Client(resolver=resolver, connect_timeout=0.3) as client:
        started = loop.time()
        with pytest.raises(ConnectTimeout, match="timed out connecting to one.test:80"):
            await client.get("http://one.test/")
        assert loop.time() - started < 2.0
        assert client.get_pool_stats()["http://one.test:80"]["connections"] == 0
    assert await no_attempt_left(v4.port)
    resolver = StaticResolver((V4, ("127.0.0.1", closed_port)))
    async with hyperhttp.Client(resolver=resolver) as client:
        with pytest.raises(ConnectError) as caught:
            await client.get("http://one.test/")
    assert [label for label, _ in caught.value.attempts] == [f"127.0.0.1:{closed_port}"]
    assert "refused" in caught.value.attempts[0][1].lower()
    assert f"127.0.0.1:{closed_port}: " in str(caught.value)


async def test_a_resolver_with_no_addresses_is_a_dns_error() -> None:
    async with hyperhttp.Client(resolver=StaticResolver()) as client:
        with pytest.raises(hyperhttp.DNSError, match="no addresses"):
            await client.get("http://empty.test/")
