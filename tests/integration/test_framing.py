"""RFC 9112 framing against scripted servers: chunked, HEAD/204/304, 1xx, close-delimited, lines."""

from __future__ import annotations

import threading

import pytest

import hyperhttp
from tests.servers.faults import Conn, keep_answering, respond


async def test_chunked_response_with_extensions_and_trailers(scripted) -> None:
    body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
    server = scripted(
        keep_answering(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    )
    async with hyperhttp.Client() as client:
        for _ in range(2):
            response = await client.get(server.url)
            assert await response.aread() == b"hello world"
    assert server.accepted == 1


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
async def test_204_and_304_have_no_body_whatever_their_fields_say(scripted, status: str) -> None:
    def script(conn: Conn) -> None:
        conn.read_request()
        conn.send(f"HTTP/1.1 {status}\r\nContent-Length: 12\r\n\r\n".encode())
        conn.read_request()
        conn.send(respond(body=b"second"))

    server = scripted(script)
    async with hyperhttp.Client() as client:
        first = await client.get(server.url)
        assert await first.aread() == b""
        second = await client.get(server.url)
        assert await second.aread() == b"second"
    assert server.accepted == 1


async def test_head_response_with_content_length_has_no_body_and_connection_is_reused(
    scripted,
) -> None:
    def script(conn: Conn) -> None:
        assert conn.read_request().startswith(b"HEAD ")
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        conn.read_request()
        conn.send(respond(body=b"after head"))
        assert conn.read_request().startswith(b"HEAD ")
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        conn.read_request()
        conn.send(respond(body=b"after chunked head"))

    server = scripted(script)
    async with hyperhttp.Client() as client:
        head = await client.head(server.url)
        assert head.headers["content-length"] == "1000"
        assert await head.aread() == b""
        assert await (await client.get(server.url)).aread() == b"after head"
        assert await (await client.head(server.url)).aread() == b""
        assert await (await client.get(server.url)).aread() == b"after chunked head"
    assert server.accepted == 1


async def test_interim_1xx_responses_are_skipped(scripted) -> None:
    server = scripted(
        keep_answering(
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
            + respond("201 Created", b"final", ("X-Final: 1",))
        )
    )
    async with hyperhttp.Client() as client:
        response = await client.post(server.url, content=b"x")
        assert response.status_code == 201
        assert response.headers["x-final"] == "1"
        assert "link" not in response.headers
        assert await response.aread() == b"final"
        again = await client.get(server.url)
        assert await again.aread() == b"final"
    assert server.accepted == 1


async def test_close_delimited_body_completes_at_close(scripted) -> None:
    def script(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\n\r\nread until ")
        conn.send(b"the server closes")
        conn.close()

    server = scripted(script)
    async with hyperhttp.Client() as client:
        response = await client.get(server.url)
        assert await response.aread() == b"read until the server closes"
        assert await (await client.get(server.url)).aread() == b"read until the server closes"
        assert client.get_pool_stats()[server.url]["idle"] == 0
    assert server.accepted == 2


async def test_connection_close_is_honoured(scripted) -> None:
    server = scripted(keep_answering(respond(body=b"bye", headers=("Connection: close",))))
    async with hyperhttp.Client() as client:
        for _ in range(3):
            assert await (await client.get(server.url)).aread() == b"bye"
        stats = client.get_pool_stats()[server.url]
    assert server.accepted == 3
    assert stats["idle"] == 0


async def test_http_10_response_without_keep_alive_closes(scripted) -> None:
    server = scripted(keep_answering(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold"))
    async with hyperhttp.Client() as client:
        for _ in range(2):
            response = await client.get(server.url)
            assert response.http_version == "HTTP/1.0"
            assert await response.aread() == b"old"
    assert server.accepted == 2


async def test_multibyte_character_and_crlf_split_across_writes(scripted) -> None:
    text = "zwölf € lines\r\nsecond\rthird\nfourth"
    encoded = text.encode()
    cut_char = encoded.index("€".encode()) + 1  # inside the 3-byte euro sign
    cut_crlf = encoded.index(b"\r\n") + 1  # between \r and \n
    release = threading.Event()

    def script(conn: Conn) -> None:
        conn.read_request()
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
        conn.send(head % len(encoded) + encoded[:cut_char])
        conn.wait(release)
        conn.send(encoded[cut_char:cut_crlf])
        conn.wait(release2)
        conn.send(encoded[cut_crlf:])

    release2 = threading.Event()
    server = scripted(script)
    async with hyperhttp.Client() as client:
        response = await client.get(server.url)
        pieces = response.aiter_text()
        first = await pieces.__anext__()
        assert first == "zwölf "  # the partial euro sign is held back, not mangled
        release.set()
        assert await pieces.__anext__() == "€ lines\r"
        release2.set()
        rest = "".join([piece async for piece in pieces])
        assert first + "€ lines\r" + rest == text

        def script_lines(conn: Conn) -> None:
            conn.read_request()
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(encoded))
            for piece in (encoded[:cut_crlf], encoded[cut_crlf:]):
                conn.send(piece)

        lines_server = scripted(script_lines)
        response = await client.get(lines_server.url)
        lines = [line async for line in response.aiter_lines()]
        assert lines == ["zwölf € lines", "second", "third", "fourth"]


async def test_trailers_are_kept_apart_from_the_headers(scripted) -> None:
    """Issue 12, item 9: trailer fields used to be appended to response.headers (a trailer
    Set-Cookie even reached the jar)."""
    body = b"4\r\nbody\r\n0\r\nX-Checksum: abc\r\nSet-Cookie: sneaky=1\r\n\r\n"
    server = scripted(
        keep_answering(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n" + body
        )
    )
    async with hyperhttp.Client() as client:
        response = await client.get(server.url)
        assert "x-checksum" not in response.headers and "set-cookie" not in response.headers
        assert await response.aread() == b"body"
        assert response.trailers["x-checksum"] == "abc"
        assert response.trailers.get_list("set-cookie") == ["sneaky=1"]
        assert "x-checksum" not in response.headers
        assert not client.cookies.jar  # a cookie in a trailer section is not stored
        streamed = await client.get(server.url)
        assert [chunk async for chunk in streamed.aiter_bytes()] == [b"body"]
        assert streamed.trailers["x-checksum"] == "abc"
    assert server.accepted == 1


@pytest.mark.parametrize(
    ("response", "expected_header"),
    [
        (b"HTTP/1.1 200 OK\r\nX-Folded: one\r\n two\r\nContent-Length: 5\r\n\r\nhello",
         ("x-folded", "one two")),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
         ("content-length", "5")),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello", ("content-length", "5")),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"2 ; a=1\r\nhe\r\n3; b = \"c\"\r\nllo\r\n0\r\n\r\n", ("transfer-encoding", "chunked")),
    ],
    ids=["obs-fold", "repeated-length", "length-list", "chunk-extension-bws"],
)  # fmt: skip
async def test_what_rfc_9112_tells_a_client_to_accept(
    scripted, response: bytes, expected_header: tuple[str, str]
) -> None:
    """Issue 12, item 12: httptools refuses these three; each response is read, and the
    connection is reused for the next request."""
    server = scripted(keep_answering(response))
    async with hyperhttp.Client() as client:
        for _ in range(3):
            got = await client.get(server.url)
            assert got.headers[expected_header[0]] == expected_header[1]
            assert await got.aread() == b"hello"
    assert server.accepted == 1


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 6\r\nhello\r\n0\r\n\r\n",
    ],
    ids=["differing-lengths", "length-and-chunked", "two-chunk-sizes"],
)
async def test_real_ambiguity_is_still_refused(scripted, response: bytes) -> None:
    server = scripted(keep_answering(response))
    async with hyperhttp.Client() as client:
        with pytest.raises(hyperhttp.RemoteProtocolError):
            got = await client.get(server.url)
            await got.aread()
        assert client.get_pool_stats()[server.url]["idle"] == 0


@pytest.mark.parametrize(
    ("charset", "encoding", "body", "text"),
    [
        ("ISO-8859-1", "iso-8859-1", "café".encode("latin-1"), "café"),
        ('"Windows-1252"', "windows-1252", "€5".encode("cp1252"), "€5"),
        ("UTF-8", "utf-8", "naïve".encode(), "naïve"),
    ],
)
async def test_encoding_is_the_charset_the_server_named(
    scripted, charset: str, encoding: str, body: bytes, text: str
) -> None:
    """Issue 12, item 13: response.encoding gave Python's codec name (iso8859-1, cp1252)."""
    server = scripted(
        keep_answering(
            respond(body=body, headers=(f"Content-Type: text/plain; charset={charset}",))
        )
    )
    async with hyperhttp.Client() as client:
        response = await client.get(server.url)
        await response.aread()
        assert response.encoding == encoding and response.text == text
        streamed = await client.get(server.url)
        assert "".join([piece async for piece in streamed.aiter_text()]) == text
