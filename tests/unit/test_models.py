"""Headers, URL, Timeout, decoders, Request/Response models and request building: pure logic."""

from __future__ import annotations

import gzip
import random
import struct
import zlib
from typing import Iterable, Iterator

import brotli
import pytest
import zstandard

import hyperhttp
from hyperhttp import _decoders
from hyperhttp._compat import HAS_ISAL
from hyperhttp._decoders import (
    STEP,
    ByteChunker,
    DeflateDecoder,
    GzipDecoder,
    LineDecoder,
    TextDecoder,
    decoder_for,
    inflate_backends,
    use_inflate_backend,
)
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


def _decode_in(encoding: str, pieces: Iterable[bytes]) -> bytes:
    decoder = decoder_for([encoding])
    assert decoder is not None
    out = b"".join(decoder.decode(piece) for piece in pieces)
    return out + decoder.flush()


def _raw_deflate(data: bytes) -> bytes:
    return zlib.compress(data)[2:-4]


def _gzip_member(data: bytes, flags: int = 0, header_crc: int | None = None) -> bytes:
    """A gzip member with the optional header fields that ``flags`` names (RFC 1952 2.3)."""
    header = b"\x1f\x8b\x08" + bytes([flags]) + b"\x00\x00\x00\x00\x00\xff"
    if flags & 0x04:
        header += b"\x05\x00extra"
    if flags & 0x08:
        header += b"page.html\x00"
    if flags & 0x10:
        header += b"a comment\x00"
    if flags & 0x02:
        crc = zlib.crc32(header) & 0xFFFF if header_crc is None else header_crc
        header += struct.pack("<H", crc)
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = compressor.compress(data) + compressor.flush()
    return header + deflated + struct.pack("<II", zlib.crc32(data), len(data))


def _zlib_header(cmf: int, flags: int) -> bytes:
    """CMF and FLG (RFC 1950 2.2), FLG's check bits set so that the pair is a multiple of 31."""
    flags &= 0xE0
    return bytes([cmf, flags | (31 - (cmf << 8 | flags) % 31) % 31])


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", _raw_deflate),  # raw deflate, as some servers send
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw"],
)
def test_gzip_and_deflate_decode_one_byte_at_a_time(
    inflate_backend: str, encoding: str, encode: object
) -> None:
    assert _one_byte_at_a_time(encoding, encode(PAYLOAD)) == PAYLOAD  # type: ignore[operator]


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("br", brotli.compress),
        ("zstd", lambda d: zstandard.ZstdCompressor().compress(d)),
    ],
    ids=["br", "zstd"],
)
def test_brotli_and_zstd_decode_one_byte_at_a_time(encoding: str, encode: object) -> None:
    assert _one_byte_at_a_time(encoding, encode(PAYLOAD)) == PAYLOAD  # type: ignore[operator]


def test_stacked_codings_are_undone_in_reverse_order(inflate_backend: str) -> None:
    data = brotli.compress(gzip.compress(PAYLOAD))  # gzip applied first, then br
    assert _one_byte_at_a_time("gzip, br", data) == PAYLOAD
    assert gzip.decompress(gzip.compress(PAYLOAD) + gzip.compress(b"!")) == PAYLOAD + b"!"
    assert (
        _one_byte_at_a_time("gzip", gzip.compress(PAYLOAD) + gzip.compress(b"!")) == PAYLOAD + b"!"
    )


def test_unknown_codings_pass_through_and_corrupt_data_is_an_error(inflate_backend: str) -> None:
    assert decoder_for(["x-custom"]) is None
    assert decoder_for(["identity"]) is None
    with pytest.raises(hyperhttp.DecompressionError):
        decoder_for(["gzip"]).decode(b"definitely not gzip")  # type: ignore[union-attr]
    truncated = decoder_for(["gzip"])
    assert truncated is not None
    truncated.decode(gzip.compress(PAYLOAD)[:-10])
    with pytest.raises(hyperhttp.DecompressionError):
        truncated.flush()


def test_the_fastest_installed_inflate_backend_is_the_default() -> None:
    backends = inflate_backends()
    assert backends[-1] == "zlib"
    assert _decoders.INFLATE_BACKEND == backends[0]
    assert ("isal" in backends) is HAS_ISAL
    if HAS_ISAL:
        assert backends[0] == "isal"  # ISA-L inflates web pages about twice as fast as zlib
    with pytest.raises(ValueError, match="no inflate backend"):
        use_inflate_backend("gzip-9000")
    assert _decoders.INFLATE_BACKEND == backends[0]


def test_ordinary_bodies_are_inflated_by_the_backend_in_use(inflate_backend: str) -> None:
    # What keeps the speed-up: only odd headers may go to zlib (see GzipDecoder), never these.
    module = {"zlib": "zlib", "isal": "isal_zlib", "zlib-ng": "zlib_ng"}[inflate_backend]
    page = bytes(range(256)) * 64
    for decoder, body in (
        (GzipDecoder(), gzip.compress(page)),
        (GzipDecoder(), _gzip_member(page, 0x08)),  # with a file name, as gzip(1) writes
        (DeflateDecoder(), zlib.compress(page)),
        (DeflateDecoder(), _raw_deflate(page)),
    ):
        out = decoder.decode(body[:3]) + decoder.decode(body[3:100])
        assert type(decoder._decompressor).__module__ == module
        assert out + decoder.decode(body[100:]) + decoder.flush() == page


def test_a_large_body_decodes_whole_and_in_network_sized_chunks(inflate_backend: str) -> None:
    page = b"".join(
        b'<li><a href="/item/%d">item %d</a></li>\n' % (i, i * i % 977) for i in range(80_000)
    )
    assert len(page) > 3 * STEP  # whole, it comes out in several bounded steps
    for encoding, body in (
        ("gzip", gzip.compress(page)),
        ("gzip", gzip.compress(page[:1_500_000]) + gzip.compress(page[1_500_000:])),
        ("deflate", zlib.compress(page)),
        ("deflate", _raw_deflate(page)),
    ):
        for size in (len(body), 16384):
            chunks = [body[i : i + size] for i in range(0, len(body), size)]
            assert _decode_in(encoding, chunks) == page, (encoding, size)


def test_gzip_members_split_anywhere_decode_as_one_body(inflate_backend: str) -> None:
    first, second = gzip.compress(PAYLOAD), gzip.compress(b"!" * 100)
    body = first + second
    for cut in range(len(first) - 12, len(first) + 14):
        assert _decode_in("gzip", [body[:cut], body[cut:]]) == PAYLOAD + b"!" * 100, cut
    assert (
        _decode_in("gzip", [first, b"", second[:1], second[1:2], second[2:]])
        == PAYLOAD + b"!" * 100
    )


@pytest.mark.parametrize(
    "flags",
    [0x01, 0x02, 0x04, 0x08, 0x10, 0x0C, 0x18, 0x1F],
    ids=["text", "hcrc", "extra", "name", "comment", "extra-name", "name-comment", "all"],
)
def test_gzip_header_fields_split_anywhere(inflate_backend: str, flags: int) -> None:
    # ISA-L alone fails on a header with a CRC, or with two of extra, name and comment, when it
    # comes in pieces.
    first = _gzip_member(PAYLOAD, flags)
    body = first + _gzip_member(b"second", flags)
    for cut in [*range(1, 40), *range(len(first) + 1, len(first) + 40)]:
        assert _decode_in("gzip", [body[:cut], body[cut:]]) == PAYLOAD + b"second", cut
    assert _one_byte_at_a_time("gzip", body) == PAYLOAD + b"second"


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x10]) + data[index + 1 :]


_GZIPPED = gzip.compress(PAYLOAD)


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", _gzip_member(PAYLOAD, 0x02, header_crc=0x1234)),
        ("gzip", _gzip_member(PAYLOAD, 0x20)),  # a reserved flag, which ISA-L alone lets by
        ("gzip", b"\x1f\x8b\x09" + _GZIPPED[3:]),  # compression method 9
        ("gzip", b"\x1f\x8c" + _GZIPPED[2:]),
        ("gzip", _flip(_GZIPPED, 12)),  # an invalid deflate block
        ("gzip", _GZIPPED[:-8] + b"\x00\x00\x00\x00" + _GZIPPED[-4:]),  # wrong CRC-32
        ("gzip", _GZIPPED[:-4] + b"\x00\x00\x00\x00"),  # wrong length
        ("gzip", _GZIPPED + b"trailing junk"),  # not a member
        ("gzip", _GZIPPED + bytes(10)),  # zero padding
        ("gzip", _GZIPPED + b"\r\n"),  # too short for ISA-L alone to see it is no header
        ("deflate", zlib.compress(PAYLOAD)[:-4] + b"\x00\x00\x00\x00"),  # wrong Adler-32
        ("deflate", _zlib_header(0x88, 0) + zlib.compress(PAYLOAD)[2:]),  # a 64 KiB window
        ("deflate", _zlib_header(0x78, 0x20) + b"\x00\x00\x00\x01" + zlib.compress(PAYLOAD)[2:]),
        ("deflate", b"\xff\xff\xff\xff"),  # raw deflate with a reserved block type
    ],
    ids=[
        "gzip-header-crc",
        "gzip-reserved-flag",
        "gzip-method",
        "gzip-magic",
        "gzip-deflate-block",
        "gzip-crc",
        "gzip-length",
        "gzip-trailing-junk",
        "gzip-zero-padding",
        "gzip-trailing-crlf",
        "zlib-adler32",
        "zlib-window",
        "zlib-preset-dictionary",
        "raw-block-type",
    ],
)
def test_corrupt_bodies_are_a_decompression_error_in_any_chunking(
    inflate_backend: str, encoding: str, body: bytes
) -> None:
    for pieces in ([body], [body[i : i + 1] for i in range(len(body))], [body[:5], body[5:]]):
        with pytest.raises(hyperhttp.DecompressionError, match=f"corrupt {encoding} body"):
            _decode_in(encoding, pieces)


@pytest.mark.parametrize(
    ("encoding", "body", "members"),
    [
        ("gzip", _gzip_member(PAYLOAD, 0x1F), 1),
        ("gzip", _GZIPPED + _GZIPPED, 2),
        ("deflate", zlib.compress(PAYLOAD), 1),
        ("deflate", _raw_deflate(PAYLOAD), 1),
    ],
    ids=["gzip", "gzip-two-members", "deflate-zlib", "deflate-raw"],
)
def test_a_truncated_body_is_an_error_when_it_ends(
    inflate_backend: str, encoding: str, body: bytes, members: int
) -> None:
    cuts = [1, 2, 3, 4, 9, 20, len(body) // 2 + 1, len(body) - 8, len(body) - 1]
    if members == 2:
        cuts += [len(_GZIPPED) + 1, len(_GZIPPED) + 3, len(_GZIPPED) + 9]
    for cut in cuts:
        decoder = decoder_for([encoding])
        assert decoder is not None
        decoder.decode(body[:cut])  # no error yet: the rest may come
        with pytest.raises(hyperhttp.DecompressionError, match=f"truncated {encoding} body"):
            decoder.flush()
    assert _decode_in(encoding, [body]) == PAYLOAD * members


def test_what_follows_a_deflate_stream_is_ignored(inflate_backend: str) -> None:
    assert _decode_in("deflate", [zlib.compress(PAYLOAD) + b"junk"]) == PAYLOAD
    assert _decode_in("deflate", [_raw_deflate(PAYLOAD), b"junk"]) == PAYLOAD


def _decode_outcome(encoding: str, pieces: list[bytes], backend: str) -> tuple[str, bytes]:
    previous = use_inflate_backend(backend)
    try:
        return "ok", _decode_in(encoding, pieces)
    except hyperhttp.DecompressionError as exc:
        return str(exc).split(" ", 1)[0], b""  # "corrupt" or "truncated"
    finally:
        use_inflate_backend(previous)


@pytest.mark.parametrize("backend", [name for name in inflate_backends() if name != "zlib"])
def test_every_backend_decodes_exactly_as_zlib_does(backend: str) -> None:
    rng = random.Random(1952)
    words = [b"<div>", b"</a>", b"class", b"news", b"the", b"\n", b"href"]
    for case in range(300):
        payload = b" ".join(rng.choice(words) for _ in range(rng.randrange(0, 5000)))
        kind = rng.randrange(3)
        if kind == 0:
            encoding = "gzip"
            body = b"".join(
                _gzip_member(payload[i::2], rng.choice([0, 0, 0x02, 0x08, 0x1F, 0x40]))
                for i in range(rng.choice([1, 1, 2]))
            )
        else:
            encoding = "deflate"
            body = zlib.compress(payload) if kind == 1 else _raw_deflate(payload)
        mutation = rng.randrange(5)
        if mutation == 0:
            body = body[: rng.randrange(len(body))]
        elif mutation == 1:
            body = _flip(body, rng.randrange(len(body)))
        elif mutation == 2:
            body += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 12)))
        cuts = sorted(rng.randrange(len(body) + 1) for _ in range(rng.randrange(0, 6)))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        expected = _decode_outcome(encoding, pieces, "zlib")
        assert _decode_outcome(encoding, pieces, backend) == expected, (case, encoding, mutation)


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
