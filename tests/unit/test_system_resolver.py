"""SystemResolver: the C library's getaddrinfo in a thread, behind the cache of CachingResolver.

Only ``localhost`` is ever really resolved: the loop's ``getaddrinfo`` is replaced by a stand-in
that passes ``localhost`` to the real one, answers made-up names as the test scripts, and fails
the test for any other name, so the machine's nameserver is never asked anything.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from typing import Any, Union

import pytest

import hyperhttp
from hyperhttp import DNSError
from hyperhttp.net.dns import SystemResolver

AddrInfo = tuple[int, int, int, str, tuple[Any, ...]]
Answer = Union[list[AddrInfo], BaseException]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class System:
    """Stands in for ``loop.getaddrinfo``, counting the names asked for."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.calls: list[str] = []
        self.answers: dict[str, Answer] = {}
        self.gate: asyncio.Event | None = None  # when set, every lookup waits for it

    async def __call__(self, host: str, port: Any, **options: Any) -> list[AddrInfo]:
        self.calls.append(host)
        if self.gate is not None:
            await self.gate.wait()
        if host == "localhost":
            result: list[AddrInfo] = await self.real(host, port, **options)
            return result
        if host not in self.answers:
            raise AssertionError(f"{host!r} would have gone to the system's resolver")
        answer = self.answers[host]
        if isinstance(answer, BaseException):
            raise answer
        return answer


@pytest.fixture
async def system(monkeypatch: pytest.MonkeyPatch) -> System:
    loop = asyncio.get_running_loop()
    stand_in = System(loop.getaddrinfo)
    monkeypatch.setattr(loop, "getaddrinfo", stand_in)
    return stand_in


@pytest.fixture
def resolvers() -> Iterator[Callable[..., SystemResolver]]:
    """Make resolvers for one test; each is closed when it ends."""
    made: list[SystemResolver] = []

    def make(**options: Any) -> SystemResolver:
        resolver = SystemResolver(**options)
        made.append(resolver)
        return resolver

    yield make
    for resolver in made:
        resolver.close()


def addrinfo(family: int, ip: str) -> AddrInfo:
    sockaddr: tuple[Any, ...] = (ip, 0) if family == socket.AF_INET else (ip, 0, 0, 0)
    return (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)


def not_found(code: int = socket.EAI_NONAME) -> socket.gaierror:
    return socket.gaierror(code, "Name or service not known")


async def test_localhost_resolves_to_loopback_addresses(
    system: System, resolvers: Callable[..., SystemResolver]
) -> None:
    addresses = await resolvers().resolve("localhost", 8080)
    assert addresses, "localhost has no addresses"
    assert set(addresses) <= {
        (socket.AF_INET, ("127.0.0.1", 8080)),
        (socket.AF_INET6, ("::1", 8080)),
    }
    assert len(addresses) == len(set(addresses))
    assert system.calls == ["localhost"]


async def test_the_answer_keeps_getaddrinfo_order_without_duplicates(
    system: System, resolvers: Callable[..., SystemResolver]
) -> None:
    system.answers["made-up.invalid"] = [
        addrinfo(socket.AF_INET6, "fd00::2"),
        addrinfo(socket.AF_INET, "10.0.0.1"),
        addrinfo(socket.AF_INET6, "fd00::2"),  # also given for another socket type or protocol
        addrinfo(socket.AF_INET, "10.0.0.3"),
        addrinfo(socket.AF_INET, "10.0.0.1"),
    ]
    assert await resolvers().resolve("made-up.invalid", 443) == [
        (socket.AF_INET6, ("fd00::2", 443)),
        (socket.AF_INET, ("10.0.0.1", 443)),
        (socket.AF_INET, ("10.0.0.3", 443)),
    ]


async def test_it_asks_for_stream_sockets_of_both_families(
    monkeypatch: pytest.MonkeyPatch, resolvers: Callable[..., SystemResolver]
) -> None:
    asked: list[tuple[str, Any, dict[str, Any]]] = []

    async def getaddrinfo(host: str, port: Any, **options: Any) -> list[AddrInfo]:
        asked.append((host, port, options))
        return [addrinfo(socket.AF_INET, "10.0.0.1")]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    await resolvers().resolve("Made-Up.Invalid.", 80)
    assert asked == [
        ("made-up.invalid", None, {"family": socket.AF_UNSPEC, "type": socket.SOCK_STREAM})
    ]


async def test_ip_literals_are_never_resolved(
    system: System, resolvers: Callable[..., SystemResolver]
) -> None:
    resolver = resolvers()
    assert await resolver.resolve("127.0.0.1", 80) == [(socket.AF_INET, ("127.0.0.1", 80))]
    assert await resolver.resolve("::1", 80) == [(socket.AF_INET6, ("::1", 80))]
    assert system.calls == [] and resolver.lookups == 0


async def test_answers_are_kept_for_ttl(
    system: System, resolvers: Callable[..., SystemResolver]
) -> None:
    clock = Clock()
    resolver = resolvers(ttl=30, clock=clock)
    first = await resolver.resolve("localhost", 80)
    clock.now += 29
    again = await resolver.resolve("localhost", 8080)  # another port, the same cached answer
    assert again == [(family, (ip, 8080)) for family, (ip, _) in first]
    assert system.calls == ["localhost"]
    clock.now += 2  # past the TTL: asked again
    assert await resolver.resolve("localhost", 80) == first
    assert system.calls == ["localhost", "localhost"]


async def test_max_ttl_caps_ttl(system: System, resolvers: Callable[..., SystemResolver]) -> None:
    clock = Clock()
    resolver = resolvers(ttl=600, max_ttl=10, clock=clock)
    await resolver.resolve("localhost", 80)
    clock.now += 11
    await resolver.resolve("localhost", 80)
    assert system.calls == ["localhost", "localhost"]


async def test_ttl_zero_keeps_nothing(
    system: System, resolvers: Callable[..., SystemResolver]
) -> None:
    resolver = resolvers(ttl=0)
    for _ in range(3):
        await resolver.resolve("localhost", 80)
    assert system.calls == ["localhost"] * 3


def test_a_negative_ttl_is_refused() -> None:
    with pytest.raises(ValueError, match="ttl"):
        SystemResolver(ttl=-1)


async def test_concurrent_lookups_of_one_name_share_one_call(
    system: System, resolvers: Callable[..., SystemResolver]
) -> None:
    resolver = resolvers(ttl=0)  # shared while in flight even when nothing is kept
    system.gate = asyncio.Event()
    waiting = [asyncio.ensure_future(resolver.resolve("localhost", 80)) for _ in range(20)]
    await asyncio.sleep(0)
    system.gate.set()
    results = await asyncio.gather(*waiting)
    assert all(result == results[0] for result in results) and results[0]
    assert system.calls == ["localhost"] and resolver.lookups == 1


async def test_a_caller_giving_up_leaves_the_shared_lookup_to_the_others(
    system: System, resolvers: Callable[..., SystemResolver]
) -> None:
    resolver = resolvers()
    system.gate = asyncio.Event()
    impatient = asyncio.ensure_future(resolver.resolve("localhost", 80))
    patient = asyncio.ensure_future(resolver.resolve("localhost", 80))
    await asyncio.sleep(0)
    impatient.cancel()
    system.gate.set()
    assert await patient
    assert impatient.cancelled()
    assert system.calls == ["localhost"]


@pytest.mark.parametrize(
    "code",
    [socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)],
    ids=["EAI_NONAME", "EAI_NODATA"],
)
async def test_a_name_that_does_not_exist_is_cached_as_negative(
    system: System, resolvers: Callable[..., SystemResolver], code: int
) -> None:
    system.answers["made-up.invalid"] = not_found(code)
    clock = Clock()
    resolver = resolvers(negative_ttl=5, clock=clock)
    for _ in range(2):
        with pytest.raises(DNSError, match="'made-up.invalid': no such name"):
            await resolver.resolve("made-up.invalid", 80)
    assert system.calls == ["made-up.invalid"]  # the second answered from the negative cache

    system.answers["made-up.invalid"] = [addrinfo(socket.AF_INET, "10.9.9.9")]
    clock.now += 6
    assert await resolver.resolve("made-up.invalid", 80) == [(socket.AF_INET, ("10.9.9.9", 80))]
    assert len(system.calls) == 2


async def test_a_negative_ttl_of_zero_keeps_no_negative_answer(
    system: System, resolvers: Callable[..., SystemResolver]
) -> None:
    system.answers["made-up.invalid"] = not_found()
    resolver = resolvers(negative_ttl=0)
    for _ in range(2):
        with pytest.raises(DNSError, match="no such name"):
            await resolver.resolve("made-up.invalid", 80)
    assert len(system.calls) == 2


async def test_a_temporary_failure_is_a_dns_error_and_not_cached(
    system: System, resolvers: Callable[..., SystemResolver]
) -> None:
    system.answers["made-up.invalid"] = socket.gaierror(
        socket.EAI_AGAIN, "Temporary failure in name resolution"
    )
    resolver = resolvers()
    for _ in range(2):
        with pytest.raises(DNSError, match="'made-up.invalid': Temporary failure"):
            await resolver.resolve("made-up.invalid", 80)
    assert len(system.calls) == 2
    assert resolver._cache == {}


async def test_a_name_the_system_cannot_encode_is_a_dns_error(
    system: System, resolvers: Callable[..., SystemResolver]
) -> None:
    system.answers["made-up.invalid"] = UnicodeError("label empty or too long")
    with pytest.raises(DNSError, match="made-up.invalid"):
        await resolvers().resolve("made-up.invalid", 80)


async def test_the_resolver_serves_a_client(system: System) -> None:
    """A tiny HTTP server on loopback, fetched as ``http://localhost:PORT/``."""

    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    servers = [await asyncio.start_server(respond, "127.0.0.1", 0)]
    port = servers[0].sockets[0].getsockname()[1]
    try:  # localhost may come back as ::1 first: answer there too when the machine has IPv6
        servers.append(await asyncio.start_server(respond, "::1", port))
    except OSError:
        pass
    resolver = SystemResolver()
    try:
        async with hyperhttp.Client(resolver=resolver, max_keepalive_connections=0) as client:
            for _ in range(3):  # three connections, one lookup
                response = await client.get(f"http://localhost:{port}/")
                assert response.status_code == 200
                assert await response.aread() == b"ok"
        assert system.calls == ["localhost"] and resolver.lookups == 1
    finally:
        resolver.close()
        for server in servers:
            server.close()
            await server.wait_closed()
