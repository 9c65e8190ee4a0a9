"""The DNS cache against a real DNS server on loopback (dnslib), which counts every query.

Time is a fake clock handed to the resolver, so TTL expiry needs no waiting. Only ``localhost``
ever goes through the system's hosts file; every other name is answered by the test server.
"""

from __future__ import annotations

import asyncio
import pathlib
import socket

import pytest

import hyperhttp
from hyperhttp import AiodnsResolver, DNSError
from hyperhttp.net.dns import SystemResolver
from tests.servers.dns import DNSServer
from tests.servers.hypercorn_app import HypercornServer, pattern


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def resolver_for(server: DNSServer, clock: Clock | None = None, **kwargs: object) -> AiodnsResolver:
    return AiodnsResolver(
        [server.nameserver],
        timeout=1.0,
        tries=1,
        clock=clock or Clock(),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_answers_are_kept_for_the_record_ttl(dns_server: DNSServer) -> None:
    dns_server.set("app.test", "10.0.0.7", "fd00::7", ttl=30)
    clock = Clock()
    resolver = resolver_for(dns_server, clock)
    try:
        first = await resolver.resolve("app.test", 443)
        assert sorted(first) == sorted(
            [(socket.AF_INET, ("10.0.0.7", 443)), (socket.AF_INET6, ("fd00::7", 443))]
        )
        assert dns_server.count("app.test", "A") == 1
        assert dns_server.count("app.test", "AAAA") == 1

        clock.now += 29
        again = await resolver.resolve("app.test", 8080)  # another port, same cached answer
        assert sorted(again) == sorted(
            [(socket.AF_INET, ("10.0.0.7", 8080)), (socket.AF_INET6, ("fd00::7", 8080))]
        )
        assert dns_server.count("app.test") == 2

        dns_server.set("app.test", "10.0.0.8", ttl=30)
        clock.now += 2  # 31 s after the answer: its TTL has run out
        assert await resolver.resolve("app.test", 443) == [(socket.AF_INET, ("10.0.0.8", 443))]
        assert dns_server.count("app.test", "A") == 2
        assert resolver.lookups == 2
    finally:
        resolver.close()


async def test_cached_answers_without_waiting_only_what_resolve_would_at_once(
    dns_server: DNSServer,
) -> None:
    """``cached`` (what a connect asks before awaiting ``resolve``) answers an IP literal, the
    hosts file and a fresh cache entry, and nothing that needs a query: a name never asked, an
    expired answer, or a negative one (``resolve`` raises DNSError for that)."""
    dns_server.set("app.test", "10.0.0.7", ttl=30)
    clock = Clock()
    resolver = resolver_for(dns_server, clock, negative_ttl=5)
    try:
        assert resolver.cached("10.1.2.3", 80) == [(socket.AF_INET, ("10.1.2.3", 80))]
        assert resolver.cached("::1", 80) == [(socket.AF_INET6, ("::1", 80))]
        assert resolver.cached("localhost", 80)  # the hosts file
        assert resolver.cached("app.test", 443) is None  # never asked: it needs a query
        await resolver.resolve("app.test", 443)
        assert resolver.cached("APP.test.", 8080) == [(socket.AF_INET, ("10.0.0.7", 8080))]
        with pytest.raises(DNSError):
            await resolver.resolve("missing.test", 80)
        assert resolver.cached("missing.test", 80) is None
        clock.now += 31
        assert resolver.cached("app.test", 443) is None  # expired
        assert dns_server.count("app.test", "A") == 1
    finally:
        resolver.close()


async def test_max_ttl_caps_a_long_record_ttl(dns_server: DNSServer) -> None:
    dns_server.set("long.test", "10.0.0.1", ttl=86400)
    clock = Clock()
    resolver = resolver_for(dns_server, clock, max_ttl=10)
    try:
        assert await resolver.resolve("long.test", 80) == [(socket.AF_INET, ("10.0.0.1", 80))]
        clock.now += 9
        await resolver.resolve("long.test", 80)
        assert dns_server.count("long.test", "A") == 1
        dns_server.set("long.test", "10.0.0.2", ttl=86400)
        clock.now += 2
        # Past the cap, though the record said a day: asked again (c-ares's cache bypassed).
        assert await resolver.resolve("long.test", 80) == [(socket.AF_INET, ("10.0.0.2", 80))]
        assert dns_server.count("long.test", "A") == 2
    finally:
        resolver.close()


async def test_nxdomain_is_cached_briefly(dns_server: DNSServer) -> None:
    clock = Clock()
    resolver = resolver_for(dns_server, clock, negative_ttl=5)
    try:
        with pytest.raises(DNSError, match="missing.test"):
            await resolver.resolve("missing.test", 80)
        queries = dns_server.count("missing.test")
        assert queries >= 1
        with pytest.raises(DNSError, match="no such name"):
            await resolver.resolve("missing.test", 80)
        assert dns_server.count("missing.test") == queries  # answered from the negative cache

        dns_server.set("missing.test", "10.9.9.9")
        clock.now += 6
        assert await resolver.resolve("missing.test", 80) == [(socket.AF_INET, ("10.9.9.9", 80))]
        assert dns_server.count("missing.test") > queries
    finally:
        resolver.close()


async def test_concurrent_lookups_of_one_name_make_one_query(dns_server: DNSServer) -> None:
    dns_server.set("busy.test", "10.1.1.1", ttl=60)
    resolver = resolver_for(dns_server)
    try:
        results = await asyncio.gather(*(resolver.resolve("busy.test", 80) for _ in range(50)))
        assert all(r == [(socket.AF_INET, ("10.1.1.1", 80))] for r in results)
        assert dns_server.count("busy.test", "A") == 1
        assert resolver.lookups == 1
    finally:
        resolver.close()


async def test_a_caller_giving_up_leaves_the_shared_lookup_to_the_others(
    dns_server: DNSServer,
) -> None:
    dns_server.set("shared.test", "10.1.1.2", ttl=60)
    resolver = resolver_for(dns_server)
    try:
        impatient = asyncio.ensure_future(resolver.resolve("shared.test", 80))
        patient = asyncio.ensure_future(resolver.resolve("shared.test", 80))
        await asyncio.sleep(0)  # both are waiting on the one query now
        impatient.cancel()
        assert await patient == [(socket.AF_INET, ("10.1.1.2", 80))]
        assert impatient.cancelled()
        assert dns_server.count("shared.test", "A") == 1
    finally:
        resolver.close()


async def test_the_cache_is_bounded_in_entries(dns_server: DNSServer) -> None:
    for name in ("a.test", "b.test", "c.test"):
        dns_server.set(name, "10.2.2.2", ttl=60)
    resolver = resolver_for(dns_server, max_entries=2)
    try:
        for name in ("a.test", "b.test", "c.test"):
            await resolver.resolve(name, 80)
        assert len(resolver._cache) == 2
        assert "a.test" not in resolver._cache  # the least recently used went
        await resolver.resolve("c.test", 80)  # still cached
        assert resolver.lookups == 3
        await resolver.resolve("a.test", 80)  # evicted: looked up again
        assert resolver.lookups == 4
    finally:
        resolver.close()


async def test_ip_literals_are_never_resolved(dns_server: DNSServer) -> None:
    resolver = resolver_for(dns_server)
    try:
        assert await resolver.resolve("127.0.0.1", 80) == [(socket.AF_INET, ("127.0.0.1", 80))]
        assert await resolver.resolve("::1", 80) == [(socket.AF_INET6, ("::1", 80))]
        assert resolver.lookups == 0
        assert sum(dns_server.queries.values()) == 0
    finally:
        resolver.close()


async def test_hosts_file_answers_localhost_without_a_query(dns_server: DNSServer) -> None:
    resolver = resolver_for(dns_server)
    try:
        addresses = await resolver.resolve("localhost", 80)
        assert (socket.AF_INET, ("127.0.0.1", 80)) in addresses
        assert sum(dns_server.queries.values()) == 0
    finally:
        resolver.close()


async def test_an_unreachable_nameserver_is_a_dns_error_and_not_cached() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))  # bound, never read: queries go unanswered
    port = sock.getsockname()[1]
    resolver = AiodnsResolver([f"127.0.0.1:{port}"], timeout=0.2, tries=1)
    try:
        with pytest.raises(DNSError, match="nowhere.test"):
            await resolver.resolve("nowhere.test", 80)
        assert resolver._cache == {}
    finally:
        resolver.close()
        sock.close()


async def test_client_connects_through_the_resolver(
    dns_server: DNSServer, hypercorn: HypercornServer
) -> None:
    dns_server.set("service.test", "127.0.0.1", ttl=60)
    resolver = resolver_for(dns_server)
    async with hyperhttp.Client(resolver=resolver, max_keepalive_connections=0) as client:
        for _ in range(3):  # three connections (no keep-alive), one lookup
            response = await client.get(f"http://service.test:{hypercorn.port}/bytes/5")
            assert response.status_code == 200
            assert await response.aread() == pattern(5)
    assert dns_server.count("service.test", "A") == 1
    assert resolver.lookups == 1
    resolver.close()


async def test_unknown_host_is_a_dns_error_from_the_client(dns_server: DNSServer) -> None:
    resolver = resolver_for(dns_server)
    async with hyperhttp.Client(resolver=resolver) as client:
        with pytest.raises(DNSError):
            await client.get("http://no-such-host.test/")
    resolver.close()


async def test_a_name_without_addresses_is_cached_as_negative(dns_server: DNSServer) -> None:
    dns_server.records["mailonly.test"] = []  # exists, no A or AAAA records (NOERROR, no data)
    resolver = resolver_for(dns_server)
    try:
        for _ in range(2):
            with pytest.raises(DNSError, match="no A/AAAA records"):
                await resolver.resolve("mailonly.test", 80)
        assert dns_server.count("mailonly.test", "A") == 1
        assert resolver.lookups == 1
    finally:
        resolver.close()


async def test_names_in_the_hosts_file_need_no_query(
    dns_server: DNSServer, tmp_path: pathlib.Path
) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(
        "# a comment\n10.9.8.7   listed.test other.test  # trailing\n::1 listed.test\n"
    )
    clock = Clock()
    resolver = resolver_for(dns_server, clock, hosts_file=str(hosts))
    try:
        assert await resolver.resolve("Listed.Test", 80) == [
            (socket.AF_INET, ("10.9.8.7", 80)),
            (socket.AF_INET6, ("::1", 80)),
        ]
        assert await resolver.resolve("other.test", 80) == [(socket.AF_INET, ("10.9.8.7", 80))]
        hosts.write_text("10.1.1.1 listed.test\n")
        clock.now += 1.5  # the file is looked at again at most once a second
        assert await resolver.resolve("listed.test", 80) == [(socket.AF_INET, ("10.1.1.1", 80))]
        assert sum(dns_server.queries.values()) == 0 and resolver.lookups == 0
        dns_server.set("unlisted.test", "10.2.2.2")
        assert await resolver.resolve("unlisted.test", 80) == [(socket.AF_INET, ("10.2.2.2", 80))]
    finally:
        resolver.close()


# -- SystemResolver: getaddrinfo in a thread (the loop's own: asyncio's executor, libuv's pool) --
# Only "localhost" is resolved: the machine's nameserver is never asked anything.


async def test_the_system_resolver_answers_localhost_and_keeps_the_answer() -> None:
    clock = Clock()
    resolver = SystemResolver(ttl=30, clock=clock)
    try:
        first = await resolver.resolve("localhost", 80)
        assert first and set(first) <= {
            (socket.AF_INET, ("127.0.0.1", 80)),
            (socket.AF_INET6, ("::1", 80)),
        }
        clock.now += 29
        assert await resolver.resolve("LOCALHOST.", 80) == first
        assert resolver.lookups == 1
        clock.now += 2
        assert await resolver.resolve("localhost", 80) == first
        assert resolver.lookups == 2
    finally:
        resolver.close()


async def test_concurrent_system_lookups_of_one_name_make_one_call() -> None:
    resolver = SystemResolver()
    try:
        results = await asyncio.gather(*(resolver.resolve("localhost", 80) for _ in range(20)))
        assert results[0] and all(result == results[0] for result in results)
        assert resolver.lookups == 1
    finally:
        resolver.close()


async def test_client_connects_through_the_system_resolver(hypercorn: HypercornServer) -> None:
    resolver = SystemResolver()
    async with hyperhttp.Client(resolver=resolver, max_keepalive_connections=0) as client:
        for _ in range(3):  # three connections (no keep-alive), one lookup
            response = await client.get(f"http://localhost:{hypercorn.port}/bytes/5")
            assert response.status_code == 200
            assert await response.aread() == pattern(5)
    assert resolver.lookups == 1
    resolver.close()
