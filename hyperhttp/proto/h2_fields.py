"""HTTP/2 field lists: a request's, encoded from its fields, and the check of a response's.

A request's fields become an HTTP/2 field list here (RFC 9113 section 8.3.1: the pseudo-fields
first, names lower-cased, the connection-specific fields dropped); the list for a block shared by
many requests (a Client's defaults) is made once and kept on the block. A response's fields are
checked once per distinct field, instead of by h2 on every response.
"""

from __future__ import annotations

from typing import Iterable

from ..exceptions import RemoteProtocolError
from .base import FieldBlock, Header, OutgoingRequest
from .h2_hpack import StatelessEncoder

__all__ = ["request_fields", "request_block", "response_fields", "trailer_fields"]

# Fields that are specific to one HTTP/1.1 connection and must not be sent in HTTP/2
# (RFC 9113 section 8.2.2); Host becomes :authority.
_DROP = frozenset(
    (b"host", b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)
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


def _h2_pairs(pairs: Iterable[Header]) -> list[Header]:
    """Names lower-cased; connection-specific fields (and TE other than "trailers") dropped."""
    fields: list[Header] = []
    for name, value in pairs:
        name = name.lower()
        if name in _DROP:
            continue
        if name == b"te" and value.lower() != b"trailers":
            continue
        fields.append((name, value))
    return fields


def _shared(block: FieldBlock) -> list[Header]:
    fields = block.h2
    if fields is None:
        fields = block.h2 = _h2_pairs(block.pairs)
    return fields


def request_fields(request: OutgoingRequest, scheme: bytes) -> list[Header]:
    """The HTTP/2 field list of ``request`` (its Host field's value is :authority)."""
    authority, block, own = request.fields
    fields = [
        (b":method", request.method_bytes),
        (b":scheme", scheme),
        (b":authority", authority),
        (b":path", request.url.target),
        *_shared(block),
    ]
    if own:
        fields += _h2_pairs(own)
    return fields


def request_block(request: OutgoingRequest, scheme: bytes, encoder: StatelessEncoder) -> bytes:
    """The header block of ``request``, the same fields as ``request_fields`` gives, encoded by
    ``encoder.request_block`` (which indexes the connection's constant fields)."""
    authority, block, own = request.fields
    return encoder.request_block(
        request.method_bytes,
        scheme,
        authority,
        request.url.target,
        block,
        _shared(block),
        _h2_pairs(own) if own else own,
    )
