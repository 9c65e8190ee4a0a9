"""The parts of an HTTP/2 connection that hold no connection state of their own.

The request's field list (from the HTTP/1.1 field lines the Client encoded once), the check of a
response's fields (done here, once per distinct field, instead of by h2 on every response), the
body stream that hands flow-control credit back as it is read, one stream's bookkeeping, the
GOAWAY work-around for h2, and the ALPN switch between HTTP/1.1 and HTTP/2.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Iterable

import h2.config
import h2.connection

from ..exceptions import RemoteProtocolError, StreamNotProcessed
from .h1 import ResponseHead
from .stream import BodyStream

__all__ = [
    "H2Body",
    "Negotiator",
    "StreamNotProcessed",
    "StreamState",
    "LeanH2Connection",
    "request_headers",
    "response_fields",
    "trailer_fields",
]

Header = tuple[bytes, bytes]

# Fields that are specific to one HTTP/1.1 connection and must not be sent in HTTP/2
# (RFC 9113 section 8.2.2); Host becomes :authority.
_DROP = frozenset(
    (b"host", b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)
_request_fields: dict[bytes, tuple[bytes, list[Header]]] = {}
_FIELD_CACHE = 256


_CONNECTION_FIELDS = _DROP - {b"host"}
# Bytes a field name may hold (RFC 9113 section 8.2.1: no controls, space, upper case or 0x7f-0xff).
_NAME_BYTES = bytes(range(0x21, 0x41)) + bytes(range(0x5B, 0x7F))
_checked: dict[tuple[bytes, bytes], None] = {}  # fields already found well-formed
_CHECKED_LIMIT = 4096


def response_fields(headers: Iterable[tuple[bytes, bytes]]) -> tuple[int, list[Header]]:
    """The status and the regular fields of a response's HEADERS, or RemoteProtocolError when
    the block is malformed (RFC 9113 sections 8.2 and 8.3.2).

    h2 would check every field of every response; here a field found well-formed once is not
    checked again (servers send the same fields over and over), which is most of h2's cost of
    receiving a small response."""
    status = 0
    fields: list[Header] = []
    for pair in headers:
        name = pair[0]
        if name[:1] == b":":
            value = pair[1]
            if name != b":status" or status or fields:
                raise RemoteProtocolError(f"malformed HTTP/2 response: pseudo-field {name!r}")
            if len(value) != 3 or not value.isdigit():
                raise RemoteProtocolError(f"malformed HTTP/2 response: :status {value!r}")
            status = int(value)
            continue
        if pair not in _checked:
            _check_field(name, pair[1])
            if len(_checked) >= _CHECKED_LIMIT:
                _checked.clear()
            _checked[pair] = None
        fields.append(pair)
    if not status:
        raise RemoteProtocolError("malformed HTTP/2 response: no :status")
    return status, fields


def trailer_fields(headers: Iterable[tuple[bytes, bytes]]) -> list[Header]:
    """The fields of a trailer section, or RemoteProtocolError when it is malformed (RFC 9113
    section 8.1: no pseudo-fields in trailers)."""
    fields: list[Header] = []
    for pair in headers:
        name = pair[0]
        if name[:1] == b":":
            raise RemoteProtocolError(f"malformed HTTP/2 trailers: pseudo-field {name!r}")
        if pair not in _checked:
            _check_field(name, pair[1])
        fields.append(pair)
    return fields


def _check_field(name: bytes, value: bytes) -> None:
    if not name or name.translate(None, _NAME_BYTES):
        raise RemoteProtocolError(f"malformed HTTP/2 response: field name {name!r}")
    if name in _CONNECTION_FIELDS:
        raise RemoteProtocolError(f"malformed HTTP/2 response: connection field {name!r}")
    if (
        b"\0" in value
        or b"\r" in value
        or b"\n" in value
        or value[:1] in (b" ", b"\t")
        or (value[-1:] in (b" ", b"\t"))
    ):
        raise RemoteProtocolError(f"malformed HTTP/2 response: value of {name!r}")


def request_headers(method: bytes, scheme: bytes, target: bytes, lines: bytes) -> list[Header]:
    """The HTTP/2 field list for a request whose HTTP/1.1 field lines are ``lines``.

    Names are lower-cased, Host becomes :authority and connection-specific fields are dropped;
    the result for one ``lines`` is kept (the same defaults are sent over and over).
    """
    cached = _request_fields.get(lines)
    if cached is None:
        authority = b""
        fields: list[Header] = []
        for line in lines.split(b"\r\n"):
            if not line:
                continue
            name, _, value = line.partition(b":")
            name = name.lower()
            value = value.strip()
            if name in _DROP:
                if name == b"host":
                    authority = value
                continue
            if name == b"te" and value.lower() != b"trailers":
                continue
            fields.append((name, value))
        if len(_request_fields) >= _FIELD_CACHE:
            _request_fields.clear()
        cached = _request_fields[lines] = (authority, fields)
    authority, fields = cached
    return [
        (b":method", method),
        (b":scheme", scheme),
        (b":authority", authority),
        (b":path", target),
        *fields,
    ]


class H2Body(BodyStream):
    """A response body that hands flow-control credit back as the reader takes bytes."""

    __slots__ = ("stream_id", "connection")
    holds_credit = True  # what it buffers is the connection's credit until read or closed

    def __init__(self, connection: Any, stream_id: int, read_timeout: float | None) -> None:
        super().__init__(connection, connection._loop, read_timeout)
        self.connection = connection
        self.stream_id = stream_id

    def _taken(self, size: int) -> None:
        self._buffered -= size
        if size:
            self.connection._consumed(self.stream_id, size)

    def close(self) -> None:
        dropped = self._buffered
        super().close()
        if dropped:  # discarded unread: the server may send that much again
            self.connection._consumed(0, dropped)


class StreamState:
    __slots__ = (
        "id",
        "waiter",
        "body",
        "deadline",
        "read_timeout",
        "sending",
        "received_end",
        "window_waiter",
        "unacked",
        "is_head",
    )

    def __init__(self, stream_id: int, waiter: asyncio.Future[ResponseHead]) -> None:
        self.id = stream_id
        self.waiter: asyncio.Future[ResponseHead] | None = waiter
        self.body: H2Body | None = None
        self.deadline = 0.0
        self.read_timeout: float | None = None
        self.sending = True  # the request is not completely sent yet
        self.received_end = False
        self.window_waiter: asyncio.Future[None] | None = None
        self.unacked = 0
        self.is_head = False


class LeanH2Connection(h2.connection.H2Connection):
    """h2's connection with two changes, both for a client that keeps its own stream accounts.

    * Streams at or below a GOAWAY's last_stream_id can finish (RFC 9113 section 6.8). h2 closes
      its connection state machine on receiving GOAWAY and then rejects every later frame, so the
      streams the server promised to complete could not (python-hyper/h2 issue 1181). Here the
      state stays open on a received GOAWAY, and what is queued to send is kept; the owner opens
      no new stream after it.
    * The open-stream count that ``send_headers`` checks against the server's limit comes from
      the owner (``counted``: its streams open besides the one being opened). h2 counts by
      walking every stream it holds, on every new stream: a tenth of the CPU of a small request
      at 64 concurrent streams. h2's walk, which also drops closed streams, still runs once the
      streams it holds outnumber the open ones by more than 32 (amortised: once per 32 streams).
    """

    counted = 0

    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config)
        machine = self.state_machine
        inputs, states = h2.connection.ConnectionInputs, h2.connection.ConnectionState
        machine._transitions = {  # this instance's copy
            **machine._transitions,
            (states.IDLE, inputs.RECV_GOAWAY): (None, states.IDLE),
            (states.CLIENT_OPEN, inputs.RECV_GOAWAY): (None, states.CLIENT_OPEN),
        }

    def clear_outbound_data_buffer(self) -> None:
        """Kept (h2 calls it on a received GOAWAY): see the class's docstring."""

    @property
    def open_outbound_streams(self) -> int:
        if len(self.streams) > 2 * self.counted + 32:
            return super().open_outbound_streams
        return self.counted


class Negotiator(asyncio.BaseProtocol):
    """Stands in for the connection until TLS is up, then hands the transport to the protocol
    that ALPN chose: ``make_h2()`` for "h2", else ``make_h1()``."""

    def __init__(self, make_h1: Callable[[], Any], make_h2: Callable[[], Any]) -> None:
        self._make_h1 = make_h1
        self._make_h2 = make_h2
        self.protocol: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        protocol = self._make_h2() if alpn == "h2" else self._make_h1()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        self.protocol = protocol

    def connection_lost(self, exc: Exception | None) -> None:
        if self.protocol is not None:
            self.protocol.connection_lost(exc)
