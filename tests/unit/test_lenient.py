"""proto/lenient.py: what RFC 9112 asks a client to accept and httptools refuses (issue 12, item 12)."""

from __future__ import annotations

import pytest

from hyperhttp.exceptions import RemoteProtocolError
from hyperhttp.proto.lenient import (
    CHUNK_COMPLETE,
    CHUNK_HEADER,
    chunk_size,
    normalise_heads,
    resume_offset,
)


def test_obs_fold_is_replaced_with_a_space() -> None:
    head = b"HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\n\tthree\r\nContent-Length: 0\r\n\r\n"
    assert normalise_heads(head + b"rest", 1) == (
        b"HTTP/1.1 200 OK\r\nX-A: one two three\r\nContent-Length: 0\r\n\r\nrest"
    )


def test_a_fold_right_after_the_status_line_is_left_for_the_parser_to_refuse() -> None:
    head = b"HTTP/1.1 200 OK\r\n folded\r\nContent-Length: 0\r\n\r\n"
    assert normalise_heads(head, 1) == head


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (b"Content-Length: 5\r\ncontent-length: 5\r\n", b"Content-Length: 5\r\n"),
        (b"Content-Length: 5, 5\r\n", b"Content-Length: 5\r\n"),
        (b"Content-Length: 5,5\r\nX: y\r\nContent-Length:5\r\n", b"Content-Length: 5\r\nX: y\r\n"),
        (b"Content-Length: 5\r\nContent-Length: 6\r\n", None),  # differing: left as it is
        (b"Content-Length: 5, 6\r\n", None),
        (b"Content-Length: 5\r\nContent-Length: \r\n", None),
        (b"Content-Length: -5, -5\r\n", None),
        (b"Content-Length: 5\r\n", None),  # nothing to fix
    ],
)
def test_a_repeated_content_length_of_one_value_is_given_once(
    fields: bytes, expected: bytes | None
) -> None:
    head = b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n"
    fixed = normalise_heads(head, 1)
    assert fixed == (head if expected is None else b"HTTP/1.1 200 OK\r\n" + expected + b"\r\n")


def test_interim_heads_before_the_refused_one_are_kept_and_an_unfinished_head_waits() -> None:
    interim = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    final = b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"
    assert normalise_heads(interim + final, 2) == interim + b"HTTP/1.1 200 OK\r\nX: a b\r\n\r\n"
    assert normalise_heads(interim + final[:-2], 2) is None


@pytest.mark.parametrize(
    ("line", "size"),
    [
        (b"a\r\n", 10),
        (b"5;ext\r\n", 5),
        (b"5 ;ext=1\r\n", 5),
        (b"5; ext=1\r\n", 5),
        (b"5\t;\text = 1 ; other\r\n", 5),
        (b'5; name="quoted \\" value"\r\n', 5),
        (b"FFFFFFFFFFFFFFFF\r\n", 2**64 - 1),
    ],
)
def test_chunk_size_lines_with_whitespace_around_extensions(line: bytes, size: int) -> None:
    assert chunk_size(line) == size


@pytest.mark.parametrize(
    "line",
    [
        b"5 \r\n",  # whitespace is allowed around ";" and "=" only
        b"5 6\r\n",
        b"5;\r\n",
        b"5; =1\r\n",
        b"5;ext=\r\n",
        b"5;ext=1 \r\n",
        b"5\n",
        b";ext\r\n",
        b"10000000000000000\r\n",  # more than 64 bits
        b'5;a="unterminated\r\n',
    ],
)
def test_chunk_size_lines_that_stay_refused(line: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="chunk-size line"):
        chunk_size(line)


def test_resume_offset_walks_the_parser_events_to_the_refused_line() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"3\r\nabc\r\n2; x\r\nde\r\n0\r\n\r\n"
    # The head and the first chunk parsed, then the second chunk-size line refused:
    events = [CHUNK_HEADER, 3, CHUNK_COMPLETE]
    assert resume_offset(head + body, False, 1, events) == len(head) + 8
    # The same body from a read that began inside the first chunk's data, at "bc":
    data = body[4:]
    assert resume_offset(data, False, 0, [2, CHUNK_COMPLETE]) == 4
    # ... or inside the CRLF after it, or at a chunk-size line that began in an earlier read:
    assert resume_offset(b"\n2; x\r\nde", False, 0, [CHUNK_COMPLETE]) == 1
    assert resume_offset(b"; x\r\n", True, 0, []) == 0
    # Refused inside a chunk's data or a trailer section: not a chunk-size line.
    assert resume_offset(data, False, 0, [2]) == -1
    assert resume_offset(head + b"0\r\nbad trailer\r\n", False, 1, [CHUNK_HEADER]) == -1
