"""The real client against hypercorn: methods, body forms, headers, streaming, charsets, reuse."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterator

import pytest

import hyperhttp
from tests.servers.hypercorn_app import TEXT, HypercornServer, pattern


def _headers(echo: dict) -> dict[str, str]:
    return {name: value for name, value in echo["headers"]}


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "DELETE", "POST", "PUT", "PATCH"])
async def test_every_method_reaches_the_server(hypercorn: HypercornServer, method: str) -> None:
    async with hyperhttp.Client(base_url=hypercorn.url) as client:
        verb = getattr(client, method.lower())
        response = await verb("/echo")
        body = await response.aread()
        assert response.status_code == 200
        assert response.http_version == "HTTP/1.1"
        if method == "HEAD":
            assert body == b""
            assert int(response.headers["content-length"]) > 0
        else:
            echo = json.loads(body)
            assert echo["method"] == method
            if method in ("POST", "PUT", "PATCH"):
                assert _headers(echo)["content-length"] == "0"


async def _async_chunks() -> AsyncIterator[bytes]:
    for piece in (b"async ", b"", b"chunks ", b"arrive"):
        yield piece


def _sync_chunks() -> Iterator[bytes]:
    yield from (b"sync ", b"chunks")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"plain bytes", b"plain bytes"),
        (bytearray(b"a bytearray"), b"a bytearray"),
        (memoryview(b"a memoryview"), b"a memoryview"),
        ("text é", "text é".encode()),
        (pattern(300_000), pattern(300_000)),  # larger than one write slice
    ],
    ids=["bytes", "bytearray", "memoryview", "str", "300KB"],
)
async def test_content_forms_arrive_byte_exact(
    hypercorn: HypercornServer, content: object, expected: bytes
) -> None:
    async with hyperhttp.Client(base_url=hypercorn.url) as client:
        response = await client.post("/hash", content=content)
        await response.aread()
        received = response.json()
        assert received["sha256"] == hashlib.sha256(expected).hexdigest()
        assert received["length"] == len(expected)
        assert received["content-length"] == str(len(expected))


@pytest.mark.parametrize(
    ("make_body", "expected"),
    [(_async_chunks, b"async chunks arrive"), (_sync_chunks, b"sync chunks")],
    ids=["async-iterator", "sync-iterator"],
)
async def test_iterator_bodies_are_sent_chunked(
    hypercorn: HypercornServer, make_body: object, expected: bytes
) -> None:
    async with hyperhttp.Client(base_url=hypercorn.url) as client:
        response = await client.post("/echo", content=make_body())  # type: ignore[operator]
        echo = json.loads(await response.aread())
        assert echo["body"].encode("latin-1") == expected
        assert _headers(echo)["transfer-encoding"] == "chunked"


async def test_json_and_form_bodies(hypercorn: HypercornServer) -> None:
    async with hyperhttp.Client(base_url=hypercorn.url) as client:
        response = await client.post("/echo", json={"name": "alice", "n": [1, 2]})
        echo = json.loads(await response.aread())
        assert json.loads(echo["body"]) == {"name": "alice", "n": [1, 2]}
        assert _headers(echo)["content-type"] == "application/json"

        response = await client.put("/echo", data={"a": "1 2", "b": ["x", "y"]})
        echo = json.loads(await response.aread())
        assert echo["body"] == "a=1+2&b=x&b=y"
        assert _headers(echo)["content-type"] == "application/x-www-form-urlencoded"


async def test_params_headers_cookies_and_user_agent(hypercorn: HypercornServer) -> None:
    async with hyperhttp.Client(
        base_url=hypercorn.url,
        headers={"X-Default": "client", "X-Override": "client"},
        cookies={"session": "abc"},
    ) as client:
        response = await client.get(
            "/echo?fixed=1",
            params={"page": 2, "tag": ["a", "b"]},
            headers={"X-Override": "request"},
            cookies={"extra": "1"},
        )
        echo = json.loads(await response.aread())
        headers = _headers(echo)
        assert echo["query"] == "fixed=1&page=2&tag=a&tag=b"
        assert headers["x-default"] == "client"
        assert headers["x-override"] == "request"
        assert headers["cookie"] == "session=abc; extra=1"
        assert headers["user-agent"] == f"hyperhttp/{hyperhttp.__version__}"
        assert str(response.url) == f"{hypercorn.url}/echo?fixed=1&page=2&tag=a&tag=b"

        response = await client.get("/echo")
        headers = _headers(json.loads(await response.aread()))
        assert headers["cookie"] == "session=abc"
        assert headers["host"] == f"127.0.0.1:{hypercorn.port}"


@pytest.mark.parametrize("chunk_size", [1, 7, 1000, 4096, 50_000])
async def test_aiter_bytes_yields_exact_chunk_sizes(
    hypercorn: HypercornServer, chunk_size: int
) -> None:
    size = 10_000
    async with hyperhttp.Client(base_url=hypercorn.url) as client:
        async with await client.stream("GET", f"/chunked/{size}") as response:
            chunks = [chunk async for chunk in response.aiter_bytes(chunk_size=chunk_size)]
    assert b"".join(chunks) == pattern(size)
    assert all(len(chunk) == chunk_size for chunk in chunks[:-1])
    assert 0 < len(chunks[-1]) <= chunk_size


async def test_chunked_response_and_aiter_raw(hypercorn: HypercornServer) -> None:
    async with hyperhttp.Client(base_url=hypercorn.url) as client:
        response = await client.get("/chunked/25000")
        assert "content-length" not in response.headers
        assert response.headers["transfer-encoding"] == "chunked"
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
        assert raw == pattern(25000)
        with pytest.raises(hyperhttp.StreamConsumed):
            await response.aread()


async def test_large_body_read_whole(hypercorn: HypercornServer) -> None:
    async with hyperhttp.Client(base_url=hypercorn.url) as client:
        response = await client.get("/bytes/3000000")
        assert await response.aread() == pattern(3_000_000)
        assert response.content is await response.aread()


@pytest.mark.parametrize("charset", ["utf-8", "latin-1", "utf-16"])
async def test_text_uses_the_content_type_charset(hypercorn: HypercornServer, charset: str) -> None:
    async with hyperhttp.Client(base_url=hypercorn.url) as client:
        response = await client.get(f"/charset/{charset}")
        await response.aread()
        expected = TEXT if charset != "latin-1" else "héllo wörld"
        assert response.text == expected
        assert response.encoding.replace("_", "-") in (charset, "iso8859-1", "utf-16")
        response = await client.get(f"/charset/{charset}")
        assert "".join([t async for t in response.aiter_text(chunk_size=3)]) == expected


async def test_body_before_aread_raises_response_not_read(hypercorn: HypercornServer) -> None:
    async with hyperhttp.Client(base_url=hypercorn.url) as client:
        response = await client.get("/bytes/10")
        with pytest.raises(hyperhttp.ResponseNotRead):
            _ = response.content
        await response.aclose()


async def test_raise_for_status(hypercorn: HypercornServer) -> None:
    async with hyperhttp.Client(base_url=hypercorn.url) as client:
        ok = await client.get("/status/204")
        assert ok.raise_for_status() is ok
        missing = await client.get("/status/404")
        with pytest.raises(hyperhttp.HTTPStatusError) as caught:
            missing.raise_for_status()
        assert caught.value.response is missing
        assert "404 Not Found" in str(caught.value)


async def test_sequential_requests_reuse_one_connection(hypercorn: HypercornServer) -> None:
    hypercorn.reset_connections()
    async with hyperhttp.Client(base_url=hypercorn.url) as client:
        for _ in range(20):
            response = await client.get("/bytes/100")
            assert len(await response.aread()) == 100
        stats = client.get_pool_stats()[hypercorn.url]
    assert hypercorn.connections() == 1
    assert stats["requests"] == 20
    assert stats["connections"] == 1 and stats["idle"] == 1 and stats["in_use"] == 0
