"""Fakes for the sans-IO connection and pool tests: a transport that records what a protocol does,
and a connector whose connections the test answers by hand."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from hyperhttp.net.connector import Endpoint
from hyperhttp.proto.h1 import H1Connection


class FakeTransport:
    """Records what the protocol does; like asyncio, a close delivers connection_lost a loop
    iteration later (and once)."""

    def __init__(self, alpn: str | None = None, strict: bool = False) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.paused = False
        self.protocol: Any = None
        self.alpn = alpn  # what the fake TLS session negotiated (None: no TLS)
        self.strict = strict  # a write after close is a test failure

    def write(self, data: Any) -> None:
        assert not (self.strict and (self.closed or self.aborted)), "write after close"
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self._lose()
        self.closed = True

    def abort(self) -> None:
        self._lose()
        self.aborted = True

    def _lose(self) -> None:
        if not (self.closed or self.aborted) and self.protocol is not None:
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object" and self.alpn is not None:
            return FakeSSLObject(self.alpn)
        return default

    def take(self) -> bytes:
        data = b"".join(self.writes)
        self.writes.clear()
        return data


class FakeSSLObject:
    def __init__(self, alpn: str) -> None:
        self.alpn = alpn

    def selected_alpn_protocol(self) -> str | None:
        return self.alpn or None

    def version(self) -> str:
        return "TLSv1.3"


class Timeouts:
    """The read and write timeouts a connection's ``send`` takes (``Timeout`` has more)."""

    def __init__(self, read: float | None = None, write: float | None = None) -> None:
        self.read = read
        self.write = write


class _Target:
    def __init__(self, target: bytes) -> None:
        self.target = target


class WireRequest:
    """What a connection reads from a request (proto/base.py's OutgoingRequest), built by hand:
    ``fields`` are the request's own fields (Host excluded), as ``(bytes, bytes)`` pairs."""

    def __init__(
        self,
        method: bytes = b"GET",
        body: Any = None,
        *,
        target: bytes = b"/",
        host: bytes = b"test",
        fields: list[tuple[bytes, bytes]] | None = None,
        chunked: bool = False,
        length: int | None = None,
    ) -> None:
        from hyperhttp.proto.base import EMPTY_BLOCK

        self.method_bytes = method
        self.url = _Target(target)
        is_bytes = isinstance(body, (bytes, bytearray, memoryview))
        self.content = body if is_bytes else None
        self.stream = None if is_bytes else body
        self.chunked = chunked
        self.stream_length = length
        self.fields = (host, EMPTY_BLOCK, fields if fields is not None else [])


class FakeClock:
    """A monotonic clock the test advances by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class FakeNetwork:
    """A connector: every connect makes a connection the test answers by hand."""

    def __init__(self) -> None:
        self.connections: list[H1Connection] = []
        self.open_sockets_at_connect: list[int] = []
        self.endpoints: list[tuple[str, int, bool, bool]] = []
        self.closed = False

    async def connect(
        self,
        endpoint: Endpoint,
        *,
        http2: bool,
        timeout: float | None,
        on_idle: Callable[[], None],
        on_lost: Callable[[], None],
        phases: dict[str, float] | None = None,
    ) -> H1Connection:
        self.endpoints.append((endpoint.host, endpoint.port, endpoint.tls, http2))
        self.open_sockets_at_connect.append(sum(not c.socket_closed for c in self.connections))
        buffer = memoryview(bytearray(1 << 16))
        connection = H1Connection(asyncio.get_running_loop(), buffer, on_idle, on_lost)
        transport = FakeTransport()
        transport.protocol = connection
        connection.connection_made(transport)  # type: ignore[arg-type]
        self.connections.append(connection)
        return connection

    def close(self) -> None:
        self.closed = True

    @staticmethod
    def respond(connection: H1Connection, data: bytes = OK) -> None:
        buffer = connection.get_buffer(len(data))
        buffer[: len(data)] = data
        connection.buffer_updated(len(data))

    @staticmethod
    def transport(connection: H1Connection) -> FakeTransport:
        return connection._transport  # type: ignore[no-any-return]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)
