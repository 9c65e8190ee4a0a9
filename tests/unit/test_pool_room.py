"""Room under the global cap, without sockets: which connection closes when a request needs
one, and that one request closes one connection (FakeNetwork's connections are real
H1Connections on fake transports whose connection_lost comes a loop iteration after close)."""

from __future__ import annotations

import asyncio
from typing import Any

import hyperhttp
from hyperhttp.net.pool import ConnectionPool
from hyperhttp.proto.h1 import H1Connection
from tests.unit.fakes import FakeNetwork, settle


def _get(pool: ConnectionPool, url: str) -> asyncio.Future[Any]:
    return asyncio.ensure_future(pool.handle_async_request(hyperhttp.Request("GET", url)))


async def _serve(net: FakeNetwork, connection: H1Connection, task: asyncio.Future[Any]) -> None:
    net.respond(connection)
    await (await task).aread()


def _open(net: FakeNetwork) -> int:
    return sum(not c.socket_closed for c in net.connections)


async def test_the_least_recently_used_idle_connection_makes_room() -> None:
    """Idle connections of three origins; a fourth origin at the cap closes the one idle the
    longest, whatever origin it belongs to, and the others stay."""
    net = FakeNetwork()
    pool = ConnectionPool(connector=net, max_connections=3, max_keepalive_connections=3)
    tasks = [_get(pool, f"http://{name}.test/") for name in ("a", "b", "c")]
    await settle()
    a, b, c = net.connections
    for connection, task in [(b, tasks[1]), (c, tasks[2]), (a, tasks[0])]:  # b idle first
        await _serve(net, connection, task)
    again = _get(pool, "http://b.test/again")  # b again: now c has been idle the longest
    await settle()
    assert net.transport(b).writes[-1].startswith(b"GET /again ")
    await _serve(net, b, again)
    new = _get(pool, "http://d.test/")
    await settle()
    assert net.transport(c).closed
    assert not (net.transport(a).closed or net.transport(b).closed)
    d = net.connections[3]
    assert net.open_sockets_at_connect[3] == 2  # c's socket was gone before d's opened
    await _serve(net, d, new)
    await pool.aclose()


async def test_a_request_at_the_cap_closes_one_connection_not_one_per_release() -> None:
    """A request to another origin at the cap closes an idle connection; its socket goes a
    loop iteration later. A connection released meanwhile is kept (for its origin's next
    request): the room is on its way. It used to be closed too, for the same request."""
    net = FakeNetwork()
    pool = ConnectionPool(connector=net, max_connections=3, max_keepalive_connections=3)
    held = [_get(pool, f"http://a.test/{n}") for n in range(3)]
    await settle()
    a0, a1, a2 = net.connections
    await _serve(net, a0, held[0])
    other = _get(pool, "http://b.test/")
    await asyncio.sleep(0)  # its task queued for room and closed a0; a0's socket is not gone yet
    assert net.transport(a0).closed and not a0.socket_closed
    await _serve(net, a1, held[1])  # released now
    assert not net.transport(a1).closed
    await settle()
    b0 = net.connections[3]
    assert net.transport(b0).writes[-1].startswith(b"GET / ")
    assert pool.get_stats()["http://a.test:80"]["idle"] == 1
    next_a = _get(pool, "http://a.test/next")
    await settle()
    assert net.transport(a1).writes[-1].startswith(b"GET /next ")  # reused, not reopened
    assert len(net.connections) == 4 and max(net.open_sockets_at_connect) <= 2
    assert _open(net) == 3
    await _serve(net, a1, next_a)
    await _serve(net, a2, held[2])
    await _serve(net, b0, other)
    await pool.aclose()


async def test_each_request_waiting_for_room_gets_a_connection_closed_for_it() -> None:
    """Room coming is counted against the requests waiting for it: with one socket closing
    and two requests of other origins waiting, a released connection still closes for the
    second, and both connect."""
    net = FakeNetwork()
    pool = ConnectionPool(connector=net, max_connections=2, max_keepalive_connections=2)
    held = [_get(pool, f"http://a.test/{n}") for n in range(2)]
    await settle()
    a0, a1 = net.connections
    await _serve(net, a0, held[0])
    first = _get(pool, "http://b.test/")
    second = _get(pool, "http://c.test/")
    await asyncio.sleep(0)  # both queued; the first closed a0, the second found nothing idle
    assert net.transport(a0).closed and not a1.socket_closed
    await _serve(net, a1, held[1])
    assert net.transport(a1).closed  # released with a request uncovered: closed for it
    await settle()
    b0, c0 = net.connections[2:]
    assert net.open_sockets_at_connect[2:] == [0, 1]
    await _serve(net, b0, first)
    await _serve(net, c0, second)
    assert _open(net) == 2
    await pool.aclose()


async def test_expiry_follows_the_idle_order_across_origins() -> None:
    """keepalive_expiry closes connections in the order they went idle, and comes back for
    the rest when the next is due."""
    net = FakeNetwork()
    pool = ConnectionPool(connector=net, max_connections=5, keepalive_expiry=0.05)
    tasks = [_get(pool, f"http://{name}.test/") for name in ("a", "b")]
    await settle()
    a, b = net.connections
    await _serve(net, a, tasks[0])
    loop = asyncio.get_running_loop()
    went_idle = loop.time()
    for _ in range(1000):  # b goes idle measurably later than a
        if loop.time() > went_idle + 0.02:
            break
        await asyncio.sleep(0.005)
    await _serve(net, b, tasks[1])
    for _ in range(1000):
        if a.socket_closed:
            break
        await asyncio.sleep(0.005)
    assert a.socket_closed and not b.socket_closed  # in the order they went idle
    for _ in range(1000):
        if b.socket_closed:
            break
        await asyncio.sleep(0.005)
    assert b.socket_closed
    assert pool.get_stats()["http://a.test:80"]["connections"] == 0
    await pool.aclose()
