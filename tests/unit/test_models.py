"""Headers, URL, Timeout, decoders, Request/Response models and request building: pure logic."""

from __future__ import annotations

import gzip
import zlib
from typing import Iterator

import brotli
import pytest
import zstandard

import hyperhttp
from hyperhttp._decoders import ByteChunker, LineDecoder, TextDecoder, decoder_for
from hyperhttp.proto.h1 import encode_request_head

# -- Headers ------------------------------------------------------------------------------------


def test_headers_are_case_insensitive_and_keep_repeated_fields_in_order() -> None:
    headers = hyperhttp.Headers([("Set-Cookie", "a=1"), ("X-A", "x"), ("set-cookie", "b=2")])
    assert headers["SET-COOKIE"] == "a=1, b=2"
    assert headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert headers.multi_items() == [("Set-Cookie", "a=1"), ("X-A", "x"), ("set-cookie", "b=2")]
    assert list(headers) == ["set-cookie", "x-a"] and len(headers) == 2
    headers["Set-Cookie"] = "c=3"
    assert headers.multi_items() == [("Set-Cookie", "c=3"), ("X-A", "x")]
    headers.add("x-a", "y")
    assert headers.get_list("X-A") == ["x", "y"]
    del headers["x-a"]
    assert "x-a" not in headers and headers.get("x-a") is None


def test_headers_from_raw_decode_lazily_with_fallbacks() -> None:
    headers = hyperhttp.Headers.from_raw(
        [(b"A", b"ascii"), (b"B", "ütf".encode()), (b"C", "lätin".encode("latin-1"))]
    )
    assert headers["a"] == "ascii" and headers["b"] == "ütf" and headers["c"] == "lätin"
    copy = headers.copy()
    copy["a"] = "changed"
    assert headers["a"] == "ascii"
    assert headers == {"a": "ascii", "b": "ütf", "c": "lätin"}


@pytest.mark.parametrize(
    "pair",
    [(b"X", b"a\r\nb"), (b"X", b"a\nb"), (b"X", b"a\x00b"), (b"Bad Name", b"v"), (b"", b"v")],
)
def test_a_request_refuses_unsafe_fields(pair: tuple[bytes, bytes]) -> None:
    with pytest.raises(hyperhttp.LocalProtocolError):
        hyperhttp.Request("GET", "http://h/", headers=[pair])
    request = hyperhttp.Request("GET", "http://h/")
    request.headers.add(pair[0].decode("latin-1"), pair[1].decode("latin-1"))
    with pytest.raises(hyperhttp.LocalProtocolError):  # a field added later, checked at send
        request.check()


# -- URL ----------------------------------------------------------------------------------------


def test_url_parts_target_and_host_header() -> None:
    url = hyperhttp.URL("HTTP://Example.COM:80/a b/%2F?q=ü&x=1#frag")
    assert (url.scheme, url.host, url.port) == ("http", "example.com", 80)
    assert url.target == b"/a%20b/%2F?q=%C3%BC&x=1"
    assert url.host_header == b"example.com"
    assert url.origin == ("http", "example.com", 80)
    assert url.fragment == "frag"
    ipv6 = hyperhttp.URL("https://[::1]:8443/")
    assert ipv6.host == "::1" and ipv6.host_header == b"[::1]:8443" and ipv6.origin[2] == 8443
    assert hyperhttp.URL("http://bücher.example/").host == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    "url",
    ["ftp://h/", "http:///x", "http://h:0/", "http://h:70000/", "http://h/\r\n", "http://h/\t",
     "http://h/\x00"],
)  # fmt: skip
def test_url_refuses_what_cannot_be_requested(url: str) -> None:
    with pytest.raises(hyperhttp.InvalidURL):
        hyperhttp.URL(url)


@pytest.mark.parametrize(
    "params",
    ["a=1\r\nX-Evil:1", "a=1\nX-Evil:1", "a=\x00", "a=\x7f", "a=1\tb", b"a=1\r\nX-Evil:1",
     b"a=\xff"],
    ids=["crlf", "lf", "nul", "del", "tab", "bytes-crlf", "bytes-not-ascii"],
)  # fmt: skip
def test_a_query_string_with_control_characters_is_refused(params: str | bytes) -> None:
    """Issue 12, item 1: a str or bytes query is checked like the URL itself (it used to be
    added as given, so CR LF in it became a header line of its own)."""
    with pytest.raises(hyperhttp.InvalidURL):
        hyperhttp.URL("http://h/p", params=params)
    with pytest.raises(hyperhttp.InvalidURL):
        hyperhttp.URL("http://h/p?x=1").copy_merge_params(params)


def test_every_byte_of_a_request_target_is_printable_ascii() -> None:
    """What may not appear in a request target is percent-encoded, whatever built the URL."""
    for params in ("q=a b", 'q="<>', "q=ü", {"q": "a\r\nb"}, [("k\n", "\x00")]):
        target = hyperhttp.URL("http://h/p", params=params).target
        assert all(0x21 <= byte < 0x7F for byte in target), target
    assert hyperhttp.URL("http://h/p", params={"q": "a\r\nb"}).query == "q=a%0D%0Ab"


def test_url_params_and_join() -> None:
    url = hyperhttp.URL("http://h/p?a=1", params={"b": [1, 2], "c": True, "d": None})
    assert url.query == "a=1&b=1&b=2&c=true&d="
    assert hyperhttp.URL("http://h/a/b/c").join("../d?x=1") == "http://h/a/d?x=1"


# -- Timeout ------------------------------------------------------------------------------------


def test_timeout_phases() -> None:
    assert hyperhttp.Timeout(5.0).as_dict() == dict.fromkeys(
        ["connect", "read", "write", "pool"], 5.0
    )
    t = hyperhttp.Timeout(5.0, read=None, pool=1)
    assert (t.connect, t.read, t.write, t.pool) == (5.0, None, 5.0, 1.0)
    assert hyperhttp.Timeout(t) == t
    assert hyperhttp.Timeout(connect=2).read is None
    with pytest.raises(ValueError):
        hyperhttp.Timeout(-1)


# -- decoders -----------------------------------------------------------------------------------

PAYLOAD = b"The quick brown fox jumps over the lazy dog. " * 50


def _one_byte_at_a_time(encoding: str, data: bytes) -> bytes:
    decoder = decoder_for([encoding])
    assert decoder is not None
    out = b"".join(decoder.decode(data[i : i + 1]) for i in range(len(data)))
    return out + decoder.flush()


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda d: zlib.compress(d)[2:-4]),  # raw deflate, as some servers send
        ("br", brotli.compress),
        ("zstd", lambda d: zstandard.ZstdCompressor().compress(d)),
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw", "br", "zstd"],
)
def test_each_coding_decodes_one_byte_at_a_time(encoding: str, encode: object) -> None:
    assert _one_byte_at_a_time(encoding, encode(PAYLOAD)) == PAYLOAD  # type: ignore[operator]


def test_stacked_codings_are_undone_in_reverse_order() -> None:
    data = brotli.compress(gzip.compress(PAYLOAD))  # gzip applied first, then br
    assert _one_byte_at_a_time("gzip, br", data) == PAYLOAD
    assert gzip.decompress(gzip.compress(PAYLOAD) + gzip.compress(b"!")) == PAYLOAD + b"!"
    assert (
        _one_byte_at_a_time("gzip", gzip.compress(PAYLOAD) + gzip.compress(b"!")) == PAYLOAD + b"!"
    )


def test_unknown_codings_pass_through_and_corrupt_data_is_an_error() -> None:
    assert decoder_for(["x-custom"]) is None
    assert decoder_for(["identity"]) is None
    with pytest.raises(hyperhttp.DecompressionError):
        decoder_for(["gzip"]).decode(b"definitely not gzip")  # type: ignore[union-attr]
    truncated = decoder_for(["gzip"])
    assert truncated is not None
    truncated.decode(gzip.compress(PAYLOAD)[:-10])
    with pytest.raises(hyperhttp.DecompressionError):
        truncated.flush()


def test_text_and_line_decoders_across_chunk_boundaries() -> None:
    data = "a€b".encode()
    text = TextDecoder("utf-8")
    assert text.decode(data[:2]) == "a" and text.decode(data[2:]) == "€b" and text.flush() == ""
    lines = LineDecoder()
    out = lines.decode("one\r") + lines.decode("\ntwo\rthree\n\nfour")
    assert out + lines.flush() == ["one", "two", "three", "", "four"]


def test_byte_chunker_cuts_exact_sizes() -> None:
    chunker = ByteChunker(4)
    pieces = chunker.decode(b"ab") + chunker.decode(b"cdefghij") + chunker.decode(b"k")
    assert pieces + chunker.flush() == [b"abcd", b"efgh", b"ijk"]
    with pytest.raises(ValueError):
        ByteChunker(0)


# -- Request and Response -----------------------------------------------------------------------


def test_request_constructor_adds_host_and_framing() -> None:
    post = hyperhttp.Request("post", "http://h:81/x")
    assert post.method == "POST"
    assert post.headers.multi_items() == [("Host", "h:81"), ("Content-Length", "0")]
    get = hyperhttp.Request("GET", "http://h/", headers={"Accept": "*/*"})
    assert "content-length" not in get.headers
    streamed = hyperhttp.Request("PUT", "http://h/", content=iter([b"a"]))
    assert streamed.headers["transfer-encoding"] == "chunked" and streamed.chunked


async def test_response_reading_and_status_helpers() -> None:
    response = hyperhttp.Response(
        404,
        headers=[("Content-Type", "application/json; charset=latin-1")],
        content=b'{"a": "\xe9"}',
    )
    with pytest.raises(hyperhttp.ResponseNotRead):
        _ = response.content
    assert await response.aread() == b'{"a": "\xe9"}'
    assert response.encoding == "latin-1"  # as the server named it (Python's name: iso8859-1)
    assert response.json() == {"a": "é"}
    assert not response.is_success and not response.is_redirect
    with pytest.raises(hyperhttp.HTTPStatusError):
        response.raise_for_status()
    assert [c async for c in response.aiter_bytes(chunk_size=4)] == [b'{"a"', b': "\xe9', b'"}']
    ok = hyperhttp.Response(200, content=b"x")
    assert ok.raise_for_status() is ok
    assert len(ok.trailers) == 0  # none: an empty Headers
    assert [c async for c in ok.aiter_raw()] == [b"x"]
    with pytest.raises(hyperhttp.StreamConsumed):
        [c async for c in ok.aiter_raw()]


@pytest.mark.parametrize(
    ("content_type", "encoding"),
    [
        ("text/plain; charset=ISO-8859-1", "iso-8859-1"),
        ('text/html; charset="Windows-1252"', "windows-1252"),
        ("text/plain;charset=utf8", "utf8"),
        ("text/plain; charset=no-such-codec", "utf-8"),  # unknown: the default
        ("text/plain", "utf-8"),
    ],
)
async def test_encoding_is_the_charset_as_the_server_named_it(
    content_type: str, encoding: str
) -> None:
    """Issue 12, item 13: the charset as sent (lower-cased), not Python's codec name, and the
    text decoded with the codec it maps to."""
    response = hyperhttp.Response(200, headers=[("Content-Type", content_type)], content=b"caf\xe9")
    await response.aread()
    assert response.encoding == encoding
    expected = "café" if encoding in ("iso-8859-1", "windows-1252") else "caf\ufffd"
    assert response.text == expected
    streamed = hyperhttp.Response(200, headers=[("Content-Type", content_type)], content=b"caf\xe9")
    assert "".join([text async for text in streamed.aiter_text()]) == expected


async def test_build_request_merges_client_defaults() -> None:
    async with hyperhttp.Client(
        base_url="http://api.test/v1",
        headers={"X-Client": "1"},
        cookies={"s": "1"},
        user_agent="me/1",
    ) as client:
        request = client.build_request("GET", "/users", params={"p": 2})
        assert str(request.url) == "http://api.test/v1/users?p=2"
        headers = request.headers
        assert headers["host"] == "api.test" and headers["user-agent"] == "me/1"
        assert (
            headers["x-client"] == "1" and "cookie" not in headers
        )  # the jar's cookies join at send time
        assert client.cookies["s"] == "1"
        assert headers["accept-encoding"].startswith("gzip, deflate")
        request = client.build_request(
            "POST", "/x", json={"a": 1}, headers={"X-Client": "2"}, cookies={"t": "2"}
        )
        assert request.content == b'{"a":1}'
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-client"] == "2" and request.headers["cookie"] == "t=2"
        assert request.headers["content-length"] == "7"
        request = client.build_request("PATCH", "/x", data={"k": ["a", "b"]})
        assert request.content == b"k=a&k=b"
        request.headers["X-Late"] = "hooked"  # changes to request.headers are what is sent
        request.check()  # what the transport does before it takes a connection
        assert b"X-Late: hooked\r\n" in encode_request_head(request)
        with pytest.raises(TypeError):
            client.build_request("POST", "/x", content=b"a", json={})
    async with hyperhttp.Client(accept_compressed=False) as client:
        assert "accept-encoding" not in client.build_request("GET", "http://h/").headers
        with pytest.raises(hyperhttp.InvalidURL):
            client.build_request("GET", "/relative")


async def test_a_response_built_with_text_pairs_is_still_decoded() -> None:
    """A mock transport may give (str, str) pairs: Content-Encoding is found in them too."""
    body = gzip.compress(b"mocked")
    response = hyperhttp.Response(200, headers=[("Content-Encoding", "gzip")], content=body)
    assert await response.aread() == b"mocked"
    assert response.field_values(b"content-encoding") == ["gzip"]


async def test_a_requests_fields_and_their_http11_encoding() -> None:
    """``request.fields`` (authority, the Client's shared block, the request's own fields) is
    what is sent; the HTTP/1.1 lines are an encoding of it, the same on every path."""
    async with hyperhttp.Client(headers={"X-Client": "1"}, accept_compressed=False) as client:
        fast = client.build_request("POST", "http://h.test:81/a?b=c", json=[1])
        host, block, own = fast.fields
        assert host == b"h.test:81" and block is client._defaults
        assert own == [(b"Content-Type", b"application/json"), (b"Content-Length", b"3")]
        assert encode_request_head(fast) == (
            b"POST /a?b=c HTTP/1.1\r\nHost: h.test:81\r\nAccept: */*\r\n"
            b"User-Agent: hyperhttp/" + hyperhttp.__version__.encode() + b"\r\n"
            b"X-Client: 1\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n"
        )
        merged = client.build_request(
            "POST", "http://h.test:81/a?b=c", json=[1], headers={"X-Request": " 2 "}
        )
        assert encode_request_head(merged) == encode_request_head(fast).replace(
            b"json\r\n",
            b"json\r\nX-Request: 2\r\n",  # the framing field comes last
        )
        assert merged.headers["x-request"] == "2"  # the public face, made when asked for

        def chunks() -> Iterator[bytes]:
            yield b"a"

        streamed = client.build_request("PUT", "http://h.test/", content=chunks())
        assert streamed.chunked and (b"Transfer-Encoding", b"chunked") in streamed.fields[2]
        streamed.headers["Content-Length"] = "1"  # now the caller frames it
        streamed.headers.pop("Transfer-Encoding")
        streamed.check()
        assert not streamed.chunked and streamed.stream_length == 1
        assert (b"Transfer-Encoding", b"chunked") not in streamed.fields[2]
    by_hand = hyperhttp.Request("GET", "http://h.test/", headers={"Host": "other.test"})
    assert by_hand.fields[0] == b"other.test"
    assert all(name.lower() != b"host" for name, _ in by_hand.fields[2])
