"""TLS session resumption: a new connection to a host name offers the session of the last one.

The server is an asyncio TLS server in the test's own loop (Python's ssl, a trustme certificate
for localhost and 127.0.0.1), which answers each request and closes, and records for every
connection whether OpenSSL resumed a session (``SSLObject.session_reused``, server side)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import pytest

import hyperhttp
from hyperhttp.net.tls import ResumingContext
from tests.integration.conftest import Certs

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class TLSServer:
    def __init__(self, certs: Certs, version: ssl.TLSVersion) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certs.server_cert, certs.server_key)
        self.context.minimum_version = self.context.maximum_version = version
        self.resumed: list[bool] = []  # per connection, in the order they were answered
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> TLSServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.resumed.append(writer.get_extra_info("ssl_object").session_reused)
            writer.write(RESPONSE)
            await writer.drain()
        finally:
            writer.close()

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture(params=[ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2], ids=["tls13", "tls12"])
async def server(request: pytest.FixtureRequest, certs: Certs) -> AsyncIterator[TLSServer]:
    tls = await TLSServer(certs, request.param).start()
    yield tls
    await tls.close()


async def get(client: hyperhttp.Client, url: str) -> None:
    response = await client.get(url)
    assert await response.aread() == b"ok"


async def test_later_connections_to_a_host_resume_its_session(
    server: TLSServer, certs: Certs
) -> None:
    async with hyperhttp.Client(verify=certs.ca_path, max_keepalive_connections=0) as client:
        for _ in range(4):  # a connection each: the server closes after every response
            await get(client, f"https://localhost:{server.port}/")
    assert server.resumed == [False, True, True, True]


async def test_a_session_is_offered_only_to_the_name_it_was_verified_for(
    server: TLSServer, certs: Certs
) -> None:
    """localhost and 127.0.0.1 are the same server here, and its certificate names both; still
    127.0.0.1's first connection does a full handshake (and is verified), then resumes its own."""
    async with hyperhttp.Client(verify=certs.ca_path, max_keepalive_connections=0) as client:
        await get(client, f"https://localhost:{server.port}/")
        await get(client, f"https://127.0.0.1:{server.port}/")
        await get(client, f"https://127.0.0.1:{server.port}/")
        await get(client, f"https://localhost:{server.port}/")
    assert server.resumed == [False, False, True, True]


async def test_a_context_given_as_ssl_context_is_used_as_it_is(
    server: TLSServer, certs: Certs
) -> None:
    context = ssl.create_default_context(cafile=certs.ca_path)
    async with hyperhttp.Client(ssl_context=context, max_keepalive_connections=0) as client:
        for _ in range(2):
            await get(client, f"https://localhost:{server.port}/")
    assert server.resumed == [False, False]


async def test_a_resumed_session_still_needs_the_context_to_trust_the_server(
    server: TLSServer, certs: Certs
) -> None:
    """Sessions live in the context that verified them: a client trusting another CA neither
    connects nor resumes anything."""
    async with hyperhttp.Client(verify=certs.ca_path, max_keepalive_connections=0) as client:
        await get(client, f"https://localhost:{server.port}/")
    async with hyperhttp.Client(verify=certs.other_ca_path, max_keepalive_connections=0) as other:
        with pytest.raises(hyperhttp.TLSError):
            await get(other, f"https://localhost:{server.port}/")
    assert server.resumed == [False]


async def test_connections_in_a_burst_to_servers_sharing_a_name(certs: Certs) -> None:
    """Two servers on one address (another port each, as a crawl's farm is): connections made
    while another to the same name is still in its handshake find no session to take from it
    (reading one then raised ValueError("i2d() failed") from inside the TLS set-up, and the
    connection failed). Every request succeeds; later connections resume."""
    servers = [await TLSServer(certs, ssl.TLSVersion.TLSv1_3).start() for _ in range(2)]
    try:
        async with hyperhttp.Client(verify=certs.ca_path, max_keepalive_connections=0) as client:
            for _ in range(3):
                await asyncio.gather(
                    *(get(client, f"https://127.0.0.1:{servers[n % 2].port}/") for n in range(16))
                )
    finally:
        for server in servers:
            await server.close()
    resumed = servers[0].resumed + servers[1].resumed
    assert len(resumed) == 48 and any(resumed)


def test_the_names_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from hyperhttp.net import tls

    monkeypatch.setattr(tls, "_SESSIONS", 3)
    context = ResumingContext()
    for n in range(10):
        context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname=f"host{n}.test")
    assert list(context._latest) == ["host7.test", "host8.test", "host9.test"]
    assert context._session_for("host9.test") is None  # no handshake: no session yet
    assert list(context._latest) == ["host7.test", "host8.test"]
