"""ConnectionPool bookkeeping without sockets: the pool is given a connector whose connections
are real H1Connections on fake transports."""

from __future__ import annotations

import asyncio
import gc
from typing import Any, AsyncIterator

import pytest

import hyperhttp
from hyperhttp.net import pool as pool_module
from hyperhttp.net.pool import ConnectionPool
from hyperhttp.proto.h1 import H1Connection
from tests.unit.fakes import FakeNetwork
from tests.unit.fakes import settle as _settle


def _request(path: str = "/", timeout: hyperhttp.Timeout | None = None) -> hyperhttp.Request:
    return hyperhttp.Request("GET", f"http://pool.test{path}", timeout=timeout)


async def test_idle_connections_are_reused_most_recent_first() -> None:
    net = FakeNetwork()
    pool = ConnectionPool(connector=net, max_connections=10, max_keepalive_connections=10)
    first = asyncio.ensure_future(pool.handle_async_request(_request()))
    second = asyncio.ensure_future(pool.handle_async_request(_request()))
    await _settle()
    a, b = net.connections
    net.respond(a)
    net.respond(b)  # b went idle last
    await first, await second
    third = asyncio.ensure_future(pool.handle_async_request(_request()))
    await _settle()
    assert len(net.transport(b).writes) == 2 and len(net.transport(a).writes) == 1
    net.respond(b)
    await third
    assert pool.get_stats()["http://pool.test:80"]["requests"] == 3


async def test_cap_queues_waiters_and_serves_them_in_order() -> None:
    net = FakeNetwork()
    pool = ConnectionPool(connector=net, max_connections=1)
    tasks = [asyncio.ensure_future(pool.handle_async_request(_request(f"/{i}"))) for i in range(4)]
    await _settle()
    assert len(net.connections) == 1
    stats = pool.get_stats()["http://pool.test:80"]
    assert stats["waiting"] == 3 and stats["in_use"] == 1
    (connection,) = net.connections
    for i in range(4):
        await _settle()
        assert net.transport(connection).writes[-1].startswith(b"GET /%d " % i)
        net.respond(connection)
        await tasks[i]
    assert pool.get_stats()["http://pool.test:80"]["waiting"] == 0


async def test_pool_timeout_and_cancelled_waiters_leak_nothing() -> None:
    net = FakeNetwork()
    pool = ConnectionPool(connector=net, max_connections=1)
    holder = asyncio.ensure_future(pool.handle_async_request(_request()))
    await _settle()
    with pytest.raises(hyperhttp.PoolTimeout):
        await pool.handle_async_request(_request(timeout=hyperhttp.Timeout(5.0, pool=0.01)))
    cancelled = asyncio.ensure_future(pool.handle_async_request(_request()))
    await _settle()
    cancelled.cancel()
    (connection,) = net.connections
    net.respond(connection)  # the connection is handed over while the waiter is being cancelled
    await holder
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    stats = pool.get_stats()["http://pool.test:80"]
    assert stats == {**stats, "waiting": 0, "in_use": 0, "idle": 1, "connections": 1}
    follow_up = asyncio.ensure_future(pool.handle_async_request(_request()))
    await _settle()
    net.respond(connection)
    await follow_up
    assert len(net.connections) == 1


async def test_keepalive_cap_closes_surplus_on_release() -> None:
    net = FakeNetwork()
    pool = ConnectionPool(connector=net, max_connections=10, max_keepalive_connections=2)
    tasks = [asyncio.ensure_future(pool.handle_async_request(_request())) for _ in range(4)]
    await _settle()
    for connection in net.connections:
        net.respond(connection)
    await asyncio.gather(*tasks)
    closed = [c for c in net.connections if net.transport(c).closed]
    stats = pool.get_stats()["http://pool.test:80"]
    assert len(closed) == 2 and stats["idle"] == 2 and stats["connections"] == 2


async def test_connection_lost_while_idle_is_forgotten() -> None:
    net = FakeNetwork()
    pool = ConnectionPool(connector=net)
    task = asyncio.ensure_future(pool.handle_async_request(_request()))
    await _settle()
    net.respond(net.connections[0])
    await task
    net.connections[0].connection_lost(None)
    stats = pool.get_stats()["http://pool.test:80"]
    assert stats["idle"] == 0 and stats["connections"] == 0


async def test_aclose_closes_connections_and_fails_waiters() -> None:
    net = FakeNetwork()
    pool = ConnectionPool(connector=net, max_connections=1)
    holder = asyncio.ensure_future(pool.handle_async_request(_request()))
    waiter = asyncio.ensure_future(pool.handle_async_request(_request()))
    await _settle()
    await pool.aclose()
    with pytest.raises(hyperhttp.PoolClosed):
        await waiter
    with pytest.raises(hyperhttp.ReadError):
        await holder
    assert net.transport(net.connections[0]).closed
    with pytest.raises(hyperhttp.PoolClosed):
        await pool.handle_async_request(_request())


async def test_a_closing_connection_keeps_its_place_until_its_socket_is_gone() -> None:
    net = FakeNetwork()
    pool = ConnectionPool(connector=net, max_connections=1)
    first = asyncio.ensure_future(pool.handle_async_request(_request()))
    second = asyncio.ensure_future(pool.handle_async_request(_request()))
    await _settle()
    net.respond(
        net.connections[0], b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    await first
    assert pool.get_stats()["http://pool.test:80"]["connections"] == 0  # out of the stats at once
    await _settle()
    assert len(net.connections) == 2
    assert net.open_sockets_at_connect == [
        0,
        0,
    ]  # the second connect came after the first socket closed
    net.respond(net.connections[1])
    await second


def _waiter_records() -> int:
    return sum(isinstance(o, pool_module.Waiter) for o in gc.get_objects())


async def test_sustained_overload_leaves_no_waiter_records_behind() -> None:
    """Far more tasks than connections, the queue never draining until the end: the pool's
    records of served waiters must not pile up (one per request would be a leak under load)."""
    gc.collect()  # waiter records left in cycles by earlier tests would be counted too
    net = FakeNetwork()
    pool = ConnectionPool(connector=net, max_connections=2)
    tasks = [asyncio.ensure_future(pool.handle_async_request(_request())) for _ in range(200)]
    await _settle()
    origin = pool._origins[("http", "pool.test", 80)]
    assert origin.waiting == 198
    for _ in range(100):
        for connection in net.connections:
            net.respond(connection)
        await _settle()
        # Only live waiters are kept anywhere: those queued, and those whose request the pool
        # sent on a released connection, until their response head wakes their task.
        in_flight = sum(connection.in_use for connection in net.connections)
        assert _waiter_records() == origin.waiting + in_flight
    await asyncio.gather(*tasks)
    assert len(net.connections) == 2
    assert _waiter_records() == 0


async def test_records_of_many_origins_are_pruned_when_idle() -> None:
    """A crawler's thousands of hosts must not leave a record each behind for ever."""
    net = FakeNetwork()
    pool = ConnectionPool(connector=net, max_connections=10)
    pool._origin_limit = 8
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    busy = asyncio.ensure_future(
        pool.handle_async_request(hyperhttp.Request("GET", "http://busy.test/"))
    )
    await _settle()
    for n in range(40):
        task = asyncio.ensure_future(
            pool.handle_async_request(hyperhttp.Request("GET", f"http://host{n}.test/"))
        )
        await _settle()
        net.respond(net.connections[-1], closing)
        response = await task
        await response.aread()
        await _settle()  # the closed connection's socket is gone: its record is empty now
        assert len(pool._origins) <= 8
    assert ("http", "busy.test", 80) in pool._origins  # a record in use is never dropped
    net.respond(net.connections[0])
    await busy


async def test_at_the_cap_waiters_are_served_in_arrival_order_across_origins() -> None:
    """Issue 12, item 4: a released connection went to a waiter of its own origin whenever
    there was one, so a request to origin B that queued behind a busy origin A waited until
    PoolTimeout while A's later requests went first. At the cap the oldest waiter goes first:
    when it is another origin's, the released connection is closed and that waiter connects."""
    net = FakeNetwork()
    pool = ConnectionPool(connector=net, max_connections=2)

    def get(url: str) -> asyncio.Future[Any]:
        return asyncio.ensure_future(pool.handle_async_request(hyperhttp.Request("GET", url)))

    held = [get("http://a.test/held0"), get("http://a.test/held1")]
    await _settle()
    early = [get("http://a.test/early0"), get("http://a.test/early1")]
    await _settle()
    other = get("http://b.test/other")
    await _settle()
    late = [get("http://a.test/late0"), get("http://a.test/late1")]
    await _settle()
    a0, a1 = net.connections
    served: list[str] = []

    def sent(connection: H1Connection) -> str:
        return net.transport(connection).writes[-1].split(b" ")[1].decode()

    for connection, task in zip([a0, a1], held, strict=True):
        net.respond(connection)
        await task
        await _settle()
        served.append(sent(connection))
    assert served == ["/early0", "/early1"]  # older than B's request: A's own, on A's connections
    net.respond(a0)
    await early[0]
    await _settle()
    # B's request is next: a0 is closed rather than handed to /late0, and B connects.
    assert net.transport(a0).closed and len(net.connections) == 3
    b0 = net.connections[2]
    assert sent(b0) == "/other"
    net.respond(a1)
    await early[1]
    await _settle()
    assert sent(a1) == "/late0"  # then A's later requests, in order
    net.respond(b0)
    await other
    await _settle()
    assert net.transport(b0).closed  # /late1 (A) is the oldest now: B's connection makes room
    a2 = net.connections[3]
    assert sent(a2) == "/late1"
    net.respond(a1)
    net.respond(a2)
    await asyncio.gather(*late)


async def test_the_connector_is_asked_for_the_origin_and_closed_with_the_pool() -> None:
    net = FakeNetwork()
    pool = ConnectionPool(connector=net, http2=True, http2_prior_knowledge=False)
    task = asyncio.ensure_future(pool.handle_async_request(_request()))
    await _settle()
    net.respond(net.connections[0])
    await task
    assert net.endpoints == [("pool.test", 80, False, False)]  # http: HTTP/2 only by knowledge
    await pool.aclose()
    assert net.closed


@pytest.mark.parametrize(("method", "replayed"), [("GET", True), ("POST", False)])
async def test_a_stale_keep_alive_connection_is_replayed_only_when_safe(
    method: str, replayed: bool
) -> None:
    """The connection raises StaleConnection (served before, no byte of the response yet); the
    pool decides from that and the method: a GET goes out once more on a new connection, a
    POST fails with the connection's own error, never the internal one."""
    net = FakeNetwork()
    pool = ConnectionPool(connector=net)
    first = asyncio.ensure_future(pool.handle_async_request(_request()))
    await _settle()
    (reused,) = net.connections
    net.respond(reused)
    await first
    request = hyperhttp.Request(method, "http://pool.test/again")
    second = asyncio.ensure_future(pool.handle_async_request(request))
    await _settle()
    assert net.transport(reused).writes[-1].startswith(method.encode() + b" /again ")
    reused.connection_lost(None)  # the server had closed it as the request went out
    await _settle()
    if replayed:
        fresh = net.connections[1]
        assert net.transport(fresh).writes[-1].startswith(b"GET /again ")
        net.respond(fresh)
        assert (await second).status_code == 200
    else:
        with pytest.raises(hyperhttp.RemoteProtocolError) as info:
            await second
        assert type(info.value) is hyperhttp.RemoteProtocolError
        assert "without sending a response" in str(info.value)
        assert len(net.connections) == 1
    assert pool.get_stats()["http://pool.test:80"]["in_use"] == 0


async def test_a_fresh_connection_that_fails_is_not_replayed() -> None:
    net = FakeNetwork()
    pool = ConnectionPool(connector=net)
    task = asyncio.ensure_future(pool.handle_async_request(_request()))
    await _settle()
    net.connections[0].connection_lost(None)
    with pytest.raises(hyperhttp.RemoteProtocolError):
        await task
    assert len(net.connections) == 1


# -- a released connection handed to the next waiter, its request sent by the pool ------------------


async def _one_busy_connection(
    net: FakeNetwork, timeout: hyperhttp.Timeout | None = None
) -> tuple[ConnectionPool, H1Connection, asyncio.Future[Any]]:
    pool = ConnectionPool(connector=net, max_connections=1)
    holder = asyncio.ensure_future(pool.handle_async_request(_request("/holder", timeout)))
    await _settle()
    (connection,) = net.connections
    return pool, connection, holder


async def test_a_released_connection_carries_the_next_waiters_request_at_once() -> None:
    net = FakeNetwork()
    pool, connection, holder = await _one_busy_connection(net)
    waiter = asyncio.ensure_future(pool.handle_async_request(_request("/next")))
    await _settle()
    writes = net.transport(connection).writes
    assert len(writes) == 1
    net.respond(connection)  # the release writes the waiter's request, before any task runs
    assert len(writes) == 2 and writes[1].startswith(b"GET /next ")
    assert pool.get_stats()["http://pool.test:80"]["waiting"] == 0
    net.respond(connection)
    await holder
    response = await waiter
    assert response.status_code == 200 and await response.aread() == b"ok"
    assert pool.get_stats()["http://pool.test:80"]["idle"] == 1


async def test_a_waiter_with_a_streamed_body_sends_it_from_its_own_task() -> None:
    net = FakeNetwork()
    pool, connection, holder = await _one_busy_connection(net)

    async def body() -> AsyncIterator[bytes]:
        yield b"abc"

    request = hyperhttp.Request("POST", "http://pool.test/upload", content=body())
    waiter = asyncio.ensure_future(pool.handle_async_request(request))
    await _settle()
    writes = net.transport(connection).writes
    net.respond(connection)
    assert len(writes) == 1  # not sent by the release: the connection went to the task
    await _settle()
    assert writes[1].startswith(b"POST /upload ") and b"3\r\nabc\r\n" in b"".join(writes[2:])
    net.respond(connection)
    await holder
    assert (await waiter).status_code == 200


async def test_a_waiter_cancelled_after_its_request_went_out_drops_the_connection() -> None:
    net = FakeNetwork()
    pool, connection, holder = await _one_busy_connection(net)
    waiter = asyncio.ensure_future(pool.handle_async_request(_request("/next")))
    await _settle()
    net.respond(connection)  # sent on the released connection...
    waiter.cancel()  # ...and abandoned before its response
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await holder
    assert net.transport(connection).aborted and connection.is_closed
    await _settle()  # its connection_lost
    after = asyncio.ensure_future(pool.handle_async_request(_request("/after")))
    await _settle()
    assert len(net.connections) == 2
    net.respond(net.connections[1])
    assert (await after).status_code == 200
    stats = pool.get_stats()["http://pool.test:80"]
    assert stats["connections"] == 1 and stats["in_use"] == 0 and stats["waiting"] == 0


@pytest.mark.parametrize(("method", "replayed"), [("GET", True), ("DELETE", True), ("POST", False)])
async def test_a_request_sent_by_the_release_on_a_stale_connection_is_replayed_when_safe(
    method: str, replayed: bool
) -> None:
    net = FakeNetwork()
    pool, connection, holder = await _one_busy_connection(net)
    waiter = asyncio.ensure_future(
        pool.handle_async_request(hyperhttp.Request(method, "http://pool.test/next"))
    )
    await _settle()
    net.respond(connection)
    await holder
    connection.connection_lost(None)  # the server had closed it as the request went out
    await _settle()
    if replayed:
        fresh = net.connections[1]
        assert net.transport(fresh).writes[-1].startswith(method.encode() + b" /next ")
        net.respond(fresh)
        assert (await waiter).status_code == 200
    else:
        with pytest.raises(hyperhttp.RemoteProtocolError) as info:
            await waiter
        assert type(info.value) is hyperhttp.RemoteProtocolError
        assert len(net.connections) == 1


async def test_the_read_timeout_of_a_request_sent_by_the_release() -> None:
    net = FakeNetwork()
    pool, connection, holder = await _one_busy_connection(net)
    waiter = asyncio.ensure_future(
        pool.handle_async_request(_request("/slow", hyperhttp.Timeout(5.0, read=0.02)))
    )
    await _settle()
    net.respond(connection)
    await holder
    with pytest.raises(hyperhttp.ReadTimeout):
        await waiter
    assert connection.is_closed


async def test_a_request_in_flight_is_no_longer_under_the_pool_timeout() -> None:
    net = FakeNetwork()
    pool, connection, holder = await _one_busy_connection(net)
    waiter = asyncio.ensure_future(
        pool.handle_async_request(_request("/next", hyperhttp.Timeout(5.0, pool=60.0)))
    )
    await _settle()
    origin = pool._origins[("http", "pool.test", 80)]
    (record,) = origin.waiters
    net.respond(connection)
    await holder
    record.deadline = 1.0  # long past: the pool timer finds nothing to fail
    assert pool._check_waiters() == 0.0
    assert not waiter.done()
    net.respond(connection)
    assert (await waiter).status_code == 200


async def test_pool_timeouts_share_one_timer_and_fire_in_deadline_order() -> None:
    net = FakeNetwork()
    pool, connection, holder = await _one_busy_connection(net)
    late = asyncio.ensure_future(
        pool.handle_async_request(_request("/late", hyperhttp.Timeout(5.0, pool=30.0)))
    )
    soon = asyncio.ensure_future(
        pool.handle_async_request(_request("/soon", hyperhttp.Timeout(5.0, pool=0.01)))
    )
    with pytest.raises(hyperhttp.PoolTimeout, match="within 0.01s"):
        await soon
    assert not late.done()
    net.respond(connection)  # the late one is still first in line
    await holder
    net.respond(connection)
    assert (await late).status_code == 200
    assert pool.get_stats()["http://pool.test:80"]["waiting"] == 0
