"""HTTP/2 frames on the hot path, written and read with ``struct`` (RFC 9113 sections 4 and 6).

h2 builds a hyperframe object for every frame it sends or receives; for the few frames a plain
request and its response are made of, this module does the same work on bytes and memoryviews:

* ``headers_frames``, ``window_update`` and ``rst_stream`` give the bytes h2 would write for a
  header block (HEADERS then CONTINUATION frames, as h2 splits them), a WINDOW_UPDATE and a
  RST_STREAM;
* ``data_payload`` and ``headers_payload`` take a received DATA or HEADERS frame's payload apart
  (padding, priority), or give None for a payload hyperframe would refuse, so that such a frame
  can be left to h2 to refuse with its own error.

The frame header is read with ``HEADER.unpack_from`` (length in two parts, type, flags, stream id
with its reserved bit).
"""

from __future__ import annotations

import struct

__all__ = [
    "HEADER",
    "DATA",
    "HEADERS",
    "RST_STREAM",
    "SETTINGS",
    "PUSH_PROMISE",
    "WINDOW_UPDATE",
    "CONTINUATION",
    "END_STREAM",
    "ACK",
    "INITIAL_WINDOW_SIZE",
    "END_HEADERS",
    "PADDED",
    "PRIORITY",
    "headers_frames",
    "window_update",
    "rst_stream",
    "data_payload",
    "headers_payload",
]

HEADER = struct.Struct(">BHBBL")  # length (high byte, low 16 bits), type, flags, stream id
_UPDATE = struct.Struct(">BHBBLL")  # a frame header and one 32-bit field

DATA = 0x0
HEADERS = 0x1
RST_STREAM = 0x3
SETTINGS = 0x4
PUSH_PROMISE = 0x5
WINDOW_UPDATE = 0x8
CONTINUATION = 0x9

END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY = 0x20

INITIAL_WINDOW_SIZE = 0x4  # the SETTINGS parameter

_pack = HEADER.pack
_pack_update = _UPDATE.pack


def headers_frames(stream_id: int, block: bytes, end_stream: bool, max_frame: int) -> bytes:
    """A header block as h2 sends it: one HEADERS frame, then CONTINUATION frames, each with at
    most ``max_frame`` bytes of the block; END_HEADERS on the last, END_STREAM on the first."""
    size = len(block)
    if size <= max_frame:
        flags = END_HEADERS | END_STREAM if end_stream else END_HEADERS
        return _pack(size >> 16, size & 0xFFFF, HEADERS, flags, stream_id) + block
    parts = []
    kind = HEADERS
    flags = END_STREAM if end_stream else 0
    for start in range(0, size, max_frame):
        piece = block[start : start + max_frame]
        if start + max_frame >= size:
            flags |= END_HEADERS
        length = len(piece)
        parts.append(_pack(length >> 16, length & 0xFFFF, kind, flags, stream_id))
        parts.append(piece)
        kind, flags = CONTINUATION, 0
    return b"".join(parts)


def window_update(stream_id: int, increment: int) -> bytes:
    """A WINDOW_UPDATE frame granting ``increment`` bytes on ``stream_id`` (0: the connection)."""
    return _pack_update(0, 4, WINDOW_UPDATE, 0, stream_id, increment)


def rst_stream(stream_id: int, code: int) -> bytes:
    """A RST_STREAM frame with error code ``code``."""
    return _pack_update(0, 4, RST_STREAM, 0, stream_id, int(code))


def data_payload(payload: memoryview, flags: int) -> memoryview | None:
    """The data of a DATA frame (its padding removed), or None when hyperframe would refuse the
    payload (PADDED without a pad length, or padding as long as the payload)."""
    if not flags & PADDED:
        return payload
    size = len(payload)
    if not size:
        return None
    pad = payload[0]
    if pad and pad >= size:
        return None
    return payload[1 : size - pad]


def headers_payload(payload: memoryview, flags: int) -> tuple[memoryview, int] | None:
    """The header block fragment of a HEADERS frame and the stream it depends on (-1 without the
    PRIORITY flag), or None when hyperframe would refuse the payload."""
    pad = 0
    if flags & PADDED:
        if not len(payload):
            return None
        pad = payload[0]
        payload = payload[1:]
    size = len(payload)
    depends_on = -1
    start = 0
    if flags & PRIORITY:
        if size < 5:
            return None
        depends_on = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
        start = 5
    if pad and pad >= size:
        return None
    return payload[start : size - pad], depends_on
