"""The connector's ALPN choice (net/connector.py), on fake TLS transports."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hyperhttp.exceptions import TLSError
from hyperhttp.net import connector as connector_module
from hyperhttp.net.connector import DirectConnector, Negotiator
from hyperhttp.proto.h2 import H2Connection
from tests.unit.fakes import FakeTransport


class FakeProtocol:
    def __init__(self) -> None:
        self.transport: Any = None
        self.lost: list[Any] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Any) -> None:
        self.lost.append(exc)


@pytest.mark.parametrize(
    ("alpn", "chosen"), [("h2", "h2"), ("http/1.1", "h1"), ("", "h1"), (None, "h1")]
)
async def test_negotiator_follows_alpn(alpn: str | None, chosen: str) -> None:
    made = {"h1": FakeProtocol(), "h2": FakeProtocol()}
    negotiator = Negotiator(lambda: made["h1"], lambda: made["h2"])
    transport = FakeTransport(alpn, strict=True)
    transport.protocol = negotiator
    negotiator.connection_made(transport)  # type: ignore[arg-type]
    other = "h1" if chosen == "h2" else "h2"
    assert negotiator.protocol is made[chosen]
    assert transport.protocol is made[chosen] and made[chosen].transport is transport
    assert made[other].transport is None
    error = OSError("gone")
    negotiator.connection_lost(error)
    assert made[chosen].lost == [error]


async def test_negotiator_starts_a_real_h2_connection() -> None:
    h2_made: list[H2Connection] = []

    def make_h2() -> H2Connection:
        conn = H2Connection(
            asyncio.get_running_loop(), memoryview(bytearray(1024)), lambda: None, lambda: None
        )
        h2_made.append(conn)
        return conn

    negotiator = Negotiator(lambda: pytest.fail("HTTP/1.1 chosen"), make_h2)
    transport = FakeTransport("h2", strict=True)
    negotiator.connection_made(transport)  # type: ignore[arg-type]
    assert transport.protocol is h2_made[0]
    assert transport.take().startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")


@pytest.mark.parametrize(("alpn", "http2"), [("spdy/3.1", True), ("h2", False)])
async def test_negotiator_refuses_what_it_cannot_speak(alpn: str, http2: bool) -> None:
    made: list[Any] = []
    negotiator = Negotiator(
        lambda: made.append("h1"), (lambda: made.append("h2")) if http2 else None
    )
    transport = FakeTransport(alpn, strict=True)
    negotiator.connection_made(transport)  # type: ignore[arg-type]
    assert made == [] and negotiator.protocol is None and negotiator.refused == alpn
    assert transport.aborted


class _Endpoint:
    host = "alpn.test"
    port = 443
    tls = True


@pytest.mark.parametrize(("alpn", "http2"), [("spdy/3.1", True), ("h2", False)])
async def test_connector_turns_a_refused_alpn_into_tls_error(
    monkeypatch: pytest.MonkeyPatch, alpn: str, http2: bool
) -> None:
    """ALPN is read once, by the Negotiator; the connector reports its refusal as TLSError."""

    async def open_connection(factory: Any, host: str, port: int, **kwargs: Any) -> Any:
        protocol = factory()
        transport = FakeTransport(alpn)
        transport.protocol = protocol
        protocol.connection_made(transport)
        return protocol

    monkeypatch.setattr(connector_module, "open_connection", open_connection)
    connector = DirectConnector(resolver=object())  # type: ignore[arg-type]
    with pytest.raises(TLSError, match=f"alpn.test:443 negotiated '{alpn}'"):
        await connector.connect(
            _Endpoint(), http2=http2, timeout=None, on_idle=lambda: None, on_lost=lambda: None
        )
