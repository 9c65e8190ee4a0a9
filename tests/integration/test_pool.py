"""The connection pool: caps, FIFO waiting, PoolTimeout, keep-alive expiry, stats."""

from __future__ import annotations

import asyncio
import threading

import pytest

import hyperhttp
from tests.integration.conftest import kept_busy
from tests.servers.faults import Conn, established, keep_answering, respond


async def test_pool_timeout_when_every_connection_is_busy(scripted) -> None:
    release = threading.Event()

    def script(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nha")
        conn.wait(release)
        conn.send(b"lf")
        keep_answering(respond(body=b"next"))(conn)

    server = scripted(script)
    timeout = hyperhttp.Timeout(5.0, pool=0.2)
    async with hyperhttp.Client(max_connections=1, timeout=timeout) as client:
        holder = await client.get(server.url)  # body not complete: holds the only connection
        with pytest.raises(hyperhttp.PoolTimeout):
            await client.get(server.url)
        assert client.get_pool_stats()[server.url]["waiting"] == 0
        release.set()
        assert await holder.aread() == b"half"
        assert await (await client.get(server.url)).aread() == b"next"
    assert server.accepted == 1


async def test_waiters_are_served_in_arrival_order(scripted) -> None:
    server = scripted(keep_answering(respond(body=b"ok")))
    order: list[int] = []
    async with hyperhttp.Client(max_connections=1) as client:

        async def fetch(i: int) -> None:
            response = await client.get(f"{server.url}/{i}")
            order.append(i)
            await response.aread()

        await asyncio.gather(*(fetch(i) for i in range(10)))
    assert order == list(range(10))
    assert [r.split(b" ")[1] for r in server.requests] == [b"/%d" % i for i in range(10)]


async def test_keepalive_expiry_closes_idle_connections(scripted) -> None:
    server = scripted(keep_answering(respond(body=b"ok")))
    async with hyperhttp.Client(keepalive_expiry=0.1) as client:
        assert await (await client.get(server.url)).aread() == b"ok"
        assert client.get_pool_stats()[server.url]["idle"] == 1
        for _ in range(200):  # bounded wait for the expiry timer
            if client.get_pool_stats()[server.url]["connections"] == 0:
                break
            await asyncio.sleep(0.01)
        assert client.get_pool_stats()[server.url]["connections"] == 0
        assert await (await client.get(server.url)).aread() == b"ok"
    assert server.accepted == 2


async def test_global_and_per_host_caps_under_200_concurrent_requests(scripted) -> None:
    servers = [scripted(keep_answering(respond(body=b"ok"))) for _ in range(2)]
    async with hyperhttp.Client(max_connections=10, max_keepalive_connections=4) as client:

        async def fetch(i: int) -> bytes:
            response = await client.get(servers[i % 2].url)
            return await response.aread()

        results = await asyncio.gather(*(fetch(i) for i in range(200)))
        stats = client.get_pool_stats()
    assert results == [b"ok"] * 200
    assert max(s.peak for s in servers) <= 10
    assert sum(s.peak for s in servers) <= 20  # each server's own peak; the global cap was 10
    assert sum(origin["requests"] for origin in stats.values()) == 200
    for origin in stats.values():
        assert origin["idle"] <= 4
        assert origin["in_use"] == 0 and origin["waiting"] == 0


async def test_global_cap_holds_across_hosts_at_every_moment(scripted) -> None:
    peak = 0
    ports: list[int] = []

    def script(conn: Conn) -> None:
        nonlocal peak
        peak = max(peak, established(*ports))  # sampled as each connection is accepted
        keep_answering(respond(body=b"ok"))(conn)

    servers = [scripted(script) for _ in range(3)]
    ports.extend(server.port for server in servers)
    async with hyperhttp.Client(max_connections=6, max_keepalive_connections=6) as client:

        async def fetch(i: int) -> bytes:
            return await (await client.get(servers[i % 3].url)).aread()

        # Interleaved hosts at the cap: requests are served in arrival order across hosts, so
        # most of them close a connection of one host and open one to another (churn that
        # the cap must hold through).
        results = await asyncio.gather(*(fetch(i) for i in range(120)))
    assert results == [b"ok"] * 120
    assert 1 <= peak <= 6


async def test_stats_report_each_origin(scripted) -> None:
    server = scripted(keep_answering(respond(body=b"ok")))
    async with hyperhttp.Client() as client:
        response = await client.get(server.url)
        await response.aread()
        stats = client.get_pool_stats()
    assert stats == {
        server.url: {
            "connections": 1,
            "idle": 1,
            "in_use": 0,
            "active": 0,
            "connecting": 0,
            "waiting": 0,
            "requests": 1,
            "pending": 0,
            "waiters": 0,
            "total_connections": 1,
        }
    }


async def test_closed_client_refuses_requests(scripted) -> None:
    server = scripted(keep_answering(respond(body=b"ok")))
    client = hyperhttp.Client()
    await (await client.get(server.url)).aread()
    await client.aclose()
    with pytest.raises(hyperhttp.PoolClosed):
        await client.get(server.url)


async def test_a_busy_origin_does_not_starve_another_at_the_cap(scripted) -> None:
    """Issue 12, item 4: at max_connections a released connection went to a waiter of its own
    origin whenever there was one, so origin B's request, queued behind busy origin A's, waited
    until PoolTimeout. Waiters are served in arrival order across origins at the cap."""
    busy = scripted(keep_answering(respond(body=b"busy")))
    quiet = scripted(keep_answering(respond(body=b"quiet")))
    timeout = hyperhttp.Timeout(10.0, pool=3.0)
    async with hyperhttp.Client(max_connections=4, timeout=timeout) as client:
        async with kept_busy(client, f"{busy.url}/a", 32):  # 32 tasks on 4 connections
            for _ in range(10):  # PoolTimeout (3 s) before
                assert await (await client.get(f"{quiet.url}/b")).aread() == b"quiet"
    assert quiet.accepted == 10  # each of B's requests took a place that A's connection gave up


async def test_waiters_handed_released_connections_through_cancellations(scripted) -> None:
    """With more tasks than connections each released connection carries the next waiter's
    request straight away; waiters cancelled before or after theirs went out must leave the
    pool whole: every other request answered, the cap held, nothing in use or waiting after."""
    server = scripted(keep_answering(respond(body=b"ok")))
    async with hyperhttp.Client(max_connections=4, max_keepalive_connections=4) as client:

        async def fetch(i: int) -> bytes:
            return await (await client.get(f"{server.url}/{i}")).aread()

        tasks = [asyncio.ensure_future(fetch(i)) for i in range(120)]
        for round_ in range(40):  # cancel a few waiters at a time as the queue moves
            await asyncio.sleep(0)
            for task in tasks[round_ * 3 + 2 : 120 : 40][:1]:
                task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        answered = [r for r in results if r == b"ok"]
        cancelled = [r for r in results if isinstance(r, asyncio.CancelledError)]
        assert len(answered) + len(cancelled) == 120 and cancelled and len(answered) >= 80
        stats = client.get_pool_stats()[server.url]
        assert stats["in_use"] == 0 and stats["waiting"] == 0 and stats["connections"] <= 4
        assert await (await client.get(server.url)).aread() == b"ok"
    assert server.peak <= 4


async def test_a_waiter_cancelled_after_the_release_sent_its_request(scripted) -> None:
    """The release of the only connection sends the next waiter's request; that waiter is
    cancelled while the server holds its answer: the connection is dropped (its state is
    unknown), and the waiter behind gets a new one."""
    gate, hold = threading.Event(), threading.Event()

    def script(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            if b" /gate " in request:
                conn.wait(gate)
            elif b" /hold " in request:
                conn.wait(hold)
                return  # the client has gone
            conn.send(respond(body=b"ok"))

    server = scripted(script)
    async with hyperhttp.Client(max_connections=1) as client:
        first = asyncio.ensure_future(client.get(f"{server.url}/gate"))
        held = asyncio.ensure_future(client.get(f"{server.url}/hold"))
        after = asyncio.ensure_future(client.get(f"{server.url}/after"))
        for _ in range(2000):  # bounded: until both wait in the pool
            stats = client.get_pool_stats().get(server.url, {})
            if stats.get("waiting") == 2:
                break
            await asyncio.sleep(0.001)
        assert stats["waiting"] == 2
        gate.set()
        for _ in range(2000):  # bounded: until the release has sent /hold
            if any(b" /hold " in r for r in server.requests):
                break
            await asyncio.sleep(0.001)
        assert await (await first).aread() == b"ok"
        assert not held.done()
        held.cancel()
        with pytest.raises(asyncio.CancelledError):
            await held
        assert await (await after).aread() == b"ok"
        stats = client.get_pool_stats()[server.url]
        assert stats["in_use"] == 0 and stats["waiting"] == 0 and stats["connections"] == 1
    hold.set()
    assert server.accepted == 2
    assert [r.split(b" ")[1] for r in server.requests] == [b"/gate", b"/hold", b"/after"]
