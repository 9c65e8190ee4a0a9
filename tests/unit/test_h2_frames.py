"""proto/h2_frames.py against hyperframe, which h2 uses: property-based inputs (hypothesis).

The fast path hands a frame to h2 whenever ``data_payload`` or ``headers_payload`` gives None,
trusting h2 (through hyperframe) to refuse it; and it acts on the payload itself otherwise. So on
every input the two must agree: None exactly where hyperframe raises, and otherwise the same data,
header block fragment and dependency. The frames we write must be the bytes hyperframe writes.
"""

from __future__ import annotations

import pytest
from hyperframe.exceptions import InvalidDataError, InvalidFrameError, InvalidPaddingError
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    HeadersFrame,
    RstStreamFrame,
    WindowUpdateFrame,
)

from hyperhttp.proto import h2_frames

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import example, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

payloads = st.binary(max_size=300)
flags = st.integers(min_value=0, max_value=255)
stream_ids = st.integers(min_value=1, max_value=2**31 - 1)


def _hyperframe(header: bytes, payload: bytes) -> Frame | None:
    frame, length = Frame.parse_frame_header(memoryview(header))
    try:
        frame.parse_body(memoryview(payload))
    except (InvalidFrameError, InvalidPaddingError):
        return None
    return frame


def _header(kind: int, flag_bits: int, stream_id: int, length: int) -> bytes:
    return h2_frames.HEADER.pack(length >> 16, length & 0xFFFF, kind, flag_bits, stream_id)


@given(payloads, flags, stream_ids)
@example(b"", 0x8, 1)  # PADDED, no pad length
@example(b"\x00", 0x8, 1)  # PADDED, pad length 0, nothing else
@example(b"\x01x", 0x8, 1)  # padding as long as the rest
@example(b"\x05abc", 0x8, 1)  # padding longer than the payload
def test_data_payload_is_hyperframes(payload: bytes, flag_bits: int, stream_id: int) -> None:
    theirs = _hyperframe(_header(h2_frames.DATA, flag_bits, stream_id, len(payload)), payload)
    ours = h2_frames.data_payload(memoryview(payload), flag_bits)
    if theirs is None:
        assert ours is None
    else:
        assert isinstance(theirs, DataFrame)
        assert ours is not None and ours.tobytes() == theirs.data
        assert theirs.flow_controlled_length == len(payload)  # what the fast path charges


@given(payloads, flags, stream_ids)
@example(b"", 0x8, 1)
@example(b"\x00\x00\x00", 0x20, 1)  # PRIORITY, too short
@example(b"\x00\x00\x00\x01\x10", 0x20, 1)  # PRIORITY, depends on stream 1
@example(b"\x80\x00\x00\x03\x10abc", 0x20, 3)  # exclusive bit set
@example(b"\x09\x00\x00\x00\x01\x10abc", 0x28, 1)  # PADDED and PRIORITY, padding into priority
@example(b"\x03\x00\x00\x00\x01\x10abc", 0x28, 1)
def test_headers_payload_is_hyperframes(payload: bytes, flag_bits: int, stream_id: int) -> None:
    theirs = _hyperframe(_header(h2_frames.HEADERS, flag_bits, stream_id, len(payload)), payload)
    ours = h2_frames.headers_payload(memoryview(payload), flag_bits)
    if theirs is None:
        assert ours is None
    else:
        assert isinstance(theirs, HeadersFrame)
        assert ours is not None
        fragment, depends_on = ours
        assert fragment.tobytes() == theirs.data
        assert depends_on == (theirs.depends_on if "PRIORITY" in theirs.flags else -1)


@given(
    stream_ids,
    st.binary(min_size=1, max_size=2000),
    st.booleans(),
    st.sampled_from([1, 7, 16, 100, 16384]),
)
def test_header_block_frames_are_h2s(
    stream_id: int, block: bytes, end_stream: bool, max_frame: int
) -> None:
    # h2 (stream.py, _build_headers_frames): the block cut into max_frame pieces, HEADERS then
    # CONTINUATION, END_STREAM on the first, END_HEADERS on the last.
    pieces = [block[i : i + max_frame] for i in range(0, len(block), max_frame)]
    frames: list[Frame] = [HeadersFrame(stream_id, pieces[0])]
    frames += [ContinuationFrame(stream_id, piece) for piece in pieces[1:]]
    frames[-1].flags.add("END_HEADERS")
    if end_stream:
        frames[0].flags.add("END_STREAM")
    expected = b"".join(frame.serialize() for frame in frames)
    assert h2_frames.headers_frames(stream_id, block, end_stream, max_frame) == expected


@given(st.integers(min_value=0, max_value=2**31 - 1), st.integers(1, 2**31 - 1))
def test_window_update_is_hyperframes(stream_id: int, increment: int) -> None:
    expected = WindowUpdateFrame(stream_id, window_increment=increment).serialize()
    assert h2_frames.window_update(stream_id, increment) == expected


@given(stream_ids, st.integers(min_value=0, max_value=2**32 - 1))
def test_rst_stream_is_hyperframes(stream_id: int, code: int) -> None:
    expected = RstStreamFrame(stream_id, error_code=code).serialize()
    assert h2_frames.rst_stream(stream_id, code) == expected


@given(st.integers(0, 2**24 - 1), st.integers(0, 255), flags, st.integers(0, 2**32 - 1))
def test_the_frame_header_reads_as_hyperframes(
    length: int, kind: int, flag_bits: int, raw_id: int
) -> None:
    header = length.to_bytes(3, "big") + bytes((kind, flag_bits)) + raw_id.to_bytes(4, "big")
    high, low, kind_read, flags_read, stream_id = h2_frames.HEADER.unpack_from(header)
    try:
        frame, length_read = Frame.parse_frame_header(memoryview(header))
    except InvalidDataError:
        # Only a frame on the wrong kind of stream: DATA, HEADERS, PRIORITY, RST_STREAM,
        # PUSH_PROMISE or CONTINUATION on stream 0, or SETTINGS, PING or GOAWAY on another. The
        # fast path handles none of these (stream 0 is never a fast stream; the others are
        # not frames it reads), so h2 gets them, and refuses them.
        on_zero = stream_id & 0x7FFFFFFF == 0
        assert (kind in (0, 1, 2, 3, 5, 9) and on_zero) or (kind in (4, 6, 7) and not on_zero)
        return
    assert (high << 16) | low == length_read == length
    assert kind_read == kind and flags_read == flag_bits
    assert stream_id & 0x7FFFFFFF == frame.stream_id  # the reserved bit is ignored
