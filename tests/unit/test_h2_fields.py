"""A response's HTTP/2 fields, checked once per distinct field (the request side is in
test_h2_sans_io.py)."""

from __future__ import annotations

import pytest

from hyperhttp.exceptions import RemoteProtocolError
from hyperhttp.proto import h2_fields
from hyperhttp.proto.h2_fields import response_fields


def test_a_well_formed_response() -> None:
    status, fields = response_fields(
        [(b":status", b"204"), (b"server", b"nginx"), (b"x-empty", b""), (b"x-inner", b"a  b")]
    )
    assert status == 204
    assert fields == [(b"server", b"nginx"), (b"x-empty", b""), (b"x-inner", b"a  b")]


@pytest.mark.parametrize(
    "headers, complaint",
    [
        ([(b"server", b"x")], "no :status"),
        ([(b":status", b"20")], ":status"),
        ([(b":status", b"2x0")], ":status"),
        ([(b":status", b"200"), (b":status", b"200")], "pseudo-field"),
        ([(b"server", b"x"), (b":status", b"200")], "pseudo-field"),
        ([(b":status", b"200"), (b":path", b"/")], "pseudo-field"),
        ([(b":method", b"GET")], "pseudo-field"),
        ([(b":status", b"200"), (b"Server", b"x")], "field name"),
        ([(b":status", b"200"), (b"bad name", b"x")], "field name"),
        ([(b":status", b"200"), (b"", b"x")], "field name"),
        ([(b":status", b"200"), (b"caf\xc3\xa9", b"x")], "field name"),
        ([(b":status", b"200"), (b"connection", b"close")], "connection field"),
        ([(b":status", b"200"), (b"transfer-encoding", b"chunked")], "connection field"),
        ([(b":status", b"200"), (b"x", b"a\r\nb")], "value"),
        ([(b":status", b"200"), (b"x", b"a\x00b")], "value"),
        ([(b":status", b"200"), (b"x", b" padded")], "value"),
        ([(b":status", b"200"), (b"x", b"padded\t")], "value"),
    ],
)
def test_malformed_responses(headers: list[tuple[bytes, bytes]], complaint: str) -> None:
    with pytest.raises(RemoteProtocolError, match=complaint):
        response_fields(headers)


def test_a_field_found_bad_is_not_remembered_as_good() -> None:
    bad = [(b":status", b"200"), (b"x-bad", b"v\n")]
    for _ in range(2):
        with pytest.raises(RemoteProtocolError):
            response_fields(bad)
    assert (b"x-bad", b"v\n") not in h2_fields._checked


def test_the_memo_of_good_fields_is_bounded() -> None:
    for n in range(h2_fields._CHECKED_LIMIT * 2 + 5):
        response_fields([(b":status", b"200"), (b"x-n", b"%d" % n)])
    assert len(h2_fields._checked) <= h2_fields._CHECKED_LIMIT
