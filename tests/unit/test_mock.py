"""MockTransport, MockResponse and Router: the handler forms, the bodies, the matching rules."""

from __future__ import annotations

import asyncio
import gzip
import re
import zlib
from typing import Any, AsyncIterator

import pytest

import hyperhttp
from hyperhttp import Client, Request
from hyperhttp.mock import (
    MockError,
    MockExhausted,
    MockResponse,
    MockTransport,
    Router,
    UnmatchedRequest,
)


def client(handler: Any, **options: Any) -> Client:
    return Client(transport=MockTransport(handler), **options)


async def fetch(
    handler: Any, url: str = "http://api.test/", method: str = "GET", **kw: Any
) -> hyperhttp.Response:
    async with client(handler) as c:
        response = await c.request(method, url, **kw)
        await response.aread()
        return response


# -- handler forms --------------------------------------------------------------------------


async def test_a_sync_function_answers_with_a_mock_response() -> None:
    seen: list[Request] = []

    def handler(request: Request) -> MockResponse:
        seen.append(request)
        return MockResponse(201, json={"path": request.url.path})

    response = await fetch(handler, "http://api.test/things?x=1")
    assert response.status_code == 201
    assert response.json() == {"path": "/things"}
    assert response.headers["content-type"] == "application/json"
    assert seen[0].url.query == "x=1"
    assert response.request is not None and response.request.url == seen[0].url
    assert response.request is not seen[0]  # the handler's copy is the server's view


async def test_an_async_function_and_a_plain_status() -> None:
    async def handler(request: Request) -> int:
        await asyncio.sleep(0)
        return 204

    response = await fetch(handler)
    assert response.status_code == 204
    assert response.content == b""


async def test_one_mock_response_answers_every_request() -> None:
    transport = MockTransport(MockResponse(text="same"))
    async with Client(transport=transport) as c:
        for _ in range(3):
            response = await c.get("http://api.test/")
            assert await response.aread() == b"same"
    assert transport.call_count == 3


async def test_a_sequence_is_answered_in_order_and_running_out_says_so() -> None:
    transport = MockTransport([MockResponse(200), 503, hyperhttp.ConnectError("refused")])
    async with Client(transport=transport) as c:
        assert (await c.get("http://api.test/a")).status_code == 200
        assert (await c.get("http://api.test/b")).status_code == 503
        with pytest.raises(hyperhttp.ConnectError, match="refused"):
            await c.get("http://api.test/c")
        with pytest.raises(
            MockExhausted, match=r"3 responses were all used.*#4 \(GET http://api.test/d\)"
        ):
            await c.get("http://api.test/d")
    assert isinstance(MockExhausted("x"), IndexError)  # as 2.x raised
    assert [str(r.url) for r in transport.calls] == [f"http://api.test/{p}" for p in "abcd"]


async def test_a_mapping_routes_method_and_path_as_in_2x() -> None:
    handler = {
        "/users": MockResponse(json=["ann"]),  # a key without a method is GET
        "POST /users": 201,
        ("DELETE", "/users/1"): 204,
        "PUT https://api.test/users/1": MockResponse(200, text="put"),
    }
    async with client(handler) as c:
        assert (await c.get("http://api.test/users")).status_code == 200
        assert (await c.post("http://api.test/users")).status_code == 201
        assert (await c.delete("http://api.test/users/1")).status_code == 204
        assert (await c.put("https://api.test/users/1")).status_code == 200
        assert (await c.put("http://api.test/users/1")).status_code == 404  # scheme differs
        assert (await c.get("http://api.test/other")).status_code == 404


async def test_a_handler_raising_a_hyperhttp_error_reaches_the_caller_as_it_is() -> None:
    def handler(request: Request) -> MockResponse:
        raise hyperhttp.ReadTimeout("the server went quiet")

    transport = MockTransport(handler)
    async with Client(transport=transport) as c:
        with pytest.raises(hyperhttp.ReadTimeout, match="went quiet"):
            await c.get("http://api.test/")
    assert transport.last_request is not None  # recorded before the handler ran


async def test_a_handler_answering_something_else_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="answered GET http://api.test/ with NoneType"):
        await fetch(lambda request: None)
    with pytest.raises(TypeError, match="not str"):
        MockTransport("nope")
    with pytest.raises(TypeError, match="raise an instance"):
        MockTransport(hyperhttp.ConnectError)  # type: ignore[arg-type]


async def test_calls_and_reset() -> None:
    transport = MockTransport(200)
    assert transport.last_request is None
    async with Client(transport=transport) as c:
        await c.get("http://api.test/1")
        await c.post("http://api.test/2", content=b"body")
    assert transport.call_count == 2
    assert transport.last_request is not None
    assert transport.last_request.method == "POST"
    assert transport.last_request.read() == b"body"
    transport.reset()
    assert (transport.calls, transport.call_count, transport.last_request) == ([], 0, None)


async def test_a_closed_mock_transport_refuses() -> None:
    transport = MockTransport(200)
    await transport.aclose()
    request = Request("GET", "http://api.test/")
    with pytest.raises(hyperhttp.PoolClosed):
        await transport.handle_async_request(request)


# -- request bodies ---------------------------------------------------------------------------


async def test_a_streamed_request_body_is_received_before_the_handler_runs() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"part one, "
        yield b"part two"

    bodies: list[bytes] = []
    transport = MockTransport(lambda request: bodies.append(request.read()) or 200)
    async with Client(transport=transport) as c:
        await c.post("http://api.test/", content=chunks())
        await c.post("http://api.test/", json={"a": 1})
    assert bodies == [b"part one, part two", b'{"a":1}']
    assert transport.calls[0].headers["transfer-encoding"] == "chunked"
    assert transport.calls[1].json() == {"a": 1}


async def test_the_handler_sees_the_request_as_sent_not_as_changed_later() -> None:
    def handler(request: Request) -> int:
        request.headers["X-Server-Side"] = "changed"  # touches the server's copy only
        return 200

    transport = MockTransport(handler)
    async with Client(transport=transport) as c:
        response = await c.get("http://api.test/", headers={"X-Client": "1"})
        assert response.request is not None
        response.request.headers["X-Client"] = "2"
    received = transport.calls[0]
    assert received.headers["x-client"] == "1"
    assert "x-server-side" not in response.request.headers


async def test_a_hook_adding_a_bad_header_is_refused_as_on_the_network() -> None:
    def hook(request: Request) -> None:
        request.headers["X-Bad"] = "a\r\nInjected: yes"

    transport = MockTransport(200)
    async with Client(transport=transport, event_hooks={"request": [hook]}) as c:
        with pytest.raises(hyperhttp.LocalProtocolError):
            await c.get("http://api.test/")
    assert transport.call_count == 0


async def test_a_stream_not_yet_sent_cannot_be_read() -> None:
    request = Request("POST", "http://api.test/", content=iter([b"x"]))
    with pytest.raises(hyperhttp.RequestNotRead):
        request.read()
    assert Request("GET", "http://api.test/").read() == b""


async def test_a_stream_shorter_than_its_content_length_fails_as_on_the_network() -> None:
    with pytest.raises(hyperhttp.LocalProtocolError, match="short of its Content-Length"):
        await fetch(200, method="POST", content=iter([b"abc"]), headers={"Content-Length": "5"})


# -- MockResponse -------------------------------------------------------------------------------


async def test_text_json_and_content_and_their_fields() -> None:
    text = await fetch(MockResponse(text="héllo"))
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.headers["content-length"] == str(len("héllo".encode()))
    assert text.text == "héllo"
    raw = await fetch(MockResponse(content=b"\x00\x01", headers={"Content-Type": "x/y"}))
    assert (raw.content, raw.headers["content-type"]) == (b"\x00\x01", "x/y")
    assert (await fetch(MockResponse(json=None))).json() is None
    assert (await fetch(MockResponse(http_version="HTTP/2"))).http_version == "HTTP/2"


def test_a_mock_response_refuses_what_no_server_could_send() -> None:
    with pytest.raises(ValueError, match="at most one"):
        MockResponse(text="a", json={})
    with pytest.raises(ValueError, match="three-digit"):
        MockResponse(42)
    with pytest.raises(TypeError, match="must be an int"):
        MockResponse("200")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="would break the response"):
        MockResponse(headers={"X-A": "a\r\nX-B: b"})


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd", "gzip, deflate"])
async def test_text_and_json_are_compressed_with_the_content_encoding_and_decoded(
    coding: str,
) -> None:
    if (
        "br" in coding
        and not hyperhttp.HAS_BROTLI
        or "zstd" in coding
        and not hyperhttp.HAS_ZSTANDARD
    ):
        pytest.skip(f"{coding} is not installed")
    payload = {"words": ["compressed"] * 50}
    response = await fetch(MockResponse(json=payload, headers={"Content-Encoding": coding}))
    assert response.json() == payload
    assert int(response.headers["content-length"]) < len(str(payload))  # what went on the wire


async def test_content_is_sent_as_given_and_the_client_decodes_or_refuses_it() -> None:
    body = gzip.compress(b"already gzipped")
    response = await fetch(MockResponse(content=body, headers={"Content-Encoding": "gzip"}))
    assert response.content == b"already gzipped"
    with pytest.raises(hyperhttp.DecompressionError):
        await fetch(MockResponse(content=b"not gzip at all", headers={"Content-Encoding": "gzip"}))


async def test_a_stream_arrives_chunk_by_chunk_and_decodes() -> None:
    compressor = zlib.compressobj(wbits=31)
    wire = compressor.compress(b"line one\nline two\n") + compressor.flush()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(wire), 7):
            yield wire[start : start + 7]

    reply = MockResponse(stream=chunks(), headers={"Content-Encoding": "gzip"})
    async with client(reply) as c:
        async with c.stream("GET", "http://api.test/") as response:
            assert "content-length" not in response.headers
            raw = [piece async for piece in response.aiter_raw()]
    assert len(raw) == len(range(0, len(wire), 7)) and b"".join(raw) == wire
    async with client(MockResponse(stream=[b"a\n", b"b\n"])) as c:
        response = await c.get("http://api.test/")
        assert [line async for line in response.aiter_lines()] == ["a", "b"]


async def test_a_stream_is_sent_once_and_a_second_use_is_a_mock_error() -> None:
    reply = MockResponse(stream=[b"once"])
    async with client(reply) as c:
        assert await (await c.get("http://api.test/")).aread() == b"once"
        with pytest.raises(MockError, match="was sent already"):
            await c.get("http://api.test/")


async def test_a_stream_failing_midway_raises_its_error_to_the_reader() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first"
        raise hyperhttp.ReadError("connection reset by peer")

    response = await client(MockResponse(stream=chunks())).get("http://api.test/")
    with pytest.raises(hyperhttp.ReadError, match="reset"):
        await response.aread()


async def test_a_stream_yielding_text_is_a_type_error() -> None:
    response = await client(MockResponse(stream=["text"])).get("http://api.test/")  # type: ignore[list-item]
    with pytest.raises(TypeError, match="must yield bytes"):
        await response.aread()


async def test_closing_a_response_early_closes_its_stream() -> None:
    closed = asyncio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"x" * 100
        finally:
            closed.set()

    async with client(MockResponse(stream=chunks())) as c:
        async with c.stream("GET", "http://api.test/") as response:
            async for _ in response.aiter_raw():
                break
    await asyncio.wait_for(closed.wait(), 1.0)


async def test_head_204_and_304_have_no_body() -> None:
    reply = MockResponse(text="body")
    assert (await fetch(reply, method="HEAD")).content == b""
    assert (await fetch(reply, method="HEAD")).headers["content-length"] == "4"
    assert (await fetch(MockResponse(304, text="x"))).content == b""
    assert (await fetch(MockResponse(204, stream=[b"x"]))).content == b""


async def test_a_slow_handler_or_chunk_meets_the_read_timeout() -> None:
    never = asyncio.Event()

    async def slow(request: Request) -> int:
        await never.wait()
        return 200

    with pytest.raises(hyperhttp.ReadTimeout, match="read timeout"):
        await fetch(slow, timeout=0.05)

    async def stalls() -> AsyncIterator[bytes]:
        yield b"start"
        await never.wait()
        yield b"never"

    with pytest.raises(hyperhttp.ReadTimeout):
        await fetch(MockResponse(stream=stalls()), timeout=0.05)


async def test_body_limits_apply_to_mock_bodies() -> None:
    async with client(MockResponse(content=b"x" * 100), max_response_size=10) as c:
        response = await c.get("http://api.test/")
        with pytest.raises(hyperhttp.ResponseTooLarge):
            await response.aread()


# -- Router ---------------------------------------------------------------------------------------


async def test_router_verbs_chain_and_match_method_and_path_exactly() -> None:
    router = (
        Router()
        .get("/users", MockResponse(json=[]))
        .post("/users", 201)
        .put("/users/1", 200)
        .patch("/users/1", 202)
        .delete("/users/1", 204)
        .head("/users", 200)
        .options("/users", 200)
        .route("GET", "/health", 204)
    )
    async with client(router) as c:
        assert (await c.get("http://api.test/users")).status_code == 200
        assert (await c.get("http://api.test/users?page=2")).status_code == 200
        assert (await c.post("http://api.test/users")).status_code == 201
        assert (await c.patch("http://api.test/users/1")).status_code == 202
        assert (await c.delete("http://api.test/users/1")).status_code == 204
        assert (await c.get("http://api.test/health")).status_code == 204
        assert (await c.get("http://api.test/users/")).status_code == 404
        assert (await c.put("http://api.test/users")).status_code == 404
    assert [r.call_count for r in router.routes] == [2, 1, 0, 1, 1, 0, 0, 1]
    assert [str(r.url) for r in router.unmatched] == [
        "http://api.test/users/",
        "http://api.test/users",
    ]


async def test_router_default_answers_unmatched_requests() -> None:
    router = Router(default=MockResponse(418))
    assert (await fetch(router)).status_code == 418


async def test_an_unmatched_request_names_itself_and_the_routes() -> None:
    router = Router().get("/a", 200).post(re.compile(r"/items/\d+"), 201, host="api.test")
    response = await fetch(router, "http://api.test/b?q=1")
    assert response.status_code == 404
    assert "no route matches GET http://api.test/b?q=1" in response.text
    assert "<Route GET /a: called 0 times>" in response.text
    assert "<Route POST re('/items/\\\\d+') host=api.test: called 0 times>" in response.text
    strict = Router(strict=True).get("/a", 200)
    with pytest.raises(
        UnmatchedRequest,
        match=r"no route matches DELETE http://api.test/a\nroutes:\n  <Route GET /a",
    ):
        await fetch(strict, "http://api.test/a", method="DELETE")


async def test_router_matches_hosts_prefixes_regexes_and_query_params() -> None:
    router = (
        Router()
        .get("https://api.test/v1/users", MockResponse(text="absolute"))
        .get("/v1/", MockResponse(text="prefix"), prefix=True, host="api.test")
        .get(re.compile(r"/files/[a-z]+\.txt"), MockResponse(text="regex"))
        .get("/search", MockResponse(text="q=cats"), params={"q": "cats"})
        .get("/search", MockResponse(text="tags"), params={"tag": ["a", "b"]})
        .get(None, MockResponse(text="other host"), host=re.compile(r".*\.example"))
        .route("*", "/any-method", MockResponse(text="any"))
    )

    async def text(url: str, method: str = "GET") -> str:
        response = await fetch(router, url, method)
        return response.text if response.status_code == 200 else str(response.status_code)

    assert await text("https://api.test/v1/users") == "absolute"
    assert await text("http://api.test/v1/users") == "prefix"  # the scheme differs
    assert await text("https://api.test:8443/v1/users") == "prefix"  # so does the port
    assert await text("http://other.test/v1/users") == "404"  # prefix is for api.test only
    assert await text("http://x/files/notes.txt") == "regex"
    assert await text("http://x/files/notes.txt.bak") == "404"  # the whole path must match
    assert await text("http://x/search?q=cats&page=2") == "q=cats"
    assert await text("http://x/search?q=dogs") == "404"
    assert await text("http://x/search?tag=a&tag=b") == "tags"
    assert await text("http://x/search?tag=b&tag=a") == "404"
    assert await text("http://cdn.example/anything") == "other host"
    assert await text("http://x/any-method", "PATCH") == "any"


async def test_an_absolute_route_with_a_query_requires_it() -> None:
    router = Router().get("http://api.test/list?page=2", 200)
    assert (await fetch(router, "http://api.test/list?page=2&size=5")).status_code == 200
    assert (await fetch(router, "http://api.test/list?page=3")).status_code == 404


async def test_a_route_path_is_quoted_as_the_client_quotes_it() -> None:
    router = Router().get("/a b/ü", 200)
    assert (await fetch(router, "http://api.test/a b/ü")).status_code == 200


def test_bad_routes_are_refused_when_added() -> None:
    with pytest.raises(ValueError, match="starts with '/'"):
        Router().get("users", 200)
    with pytest.raises(ValueError, match="not both"):
        Router().get("http://a.test/", 200, host="b.test")
    with pytest.raises(ValueError, match="prefix=True takes a path"):
        Router().get(None, 200, prefix=True)
    with pytest.raises(TypeError, match="path is a string"):
        Router().get(42, 200)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'METHOD /path'"):
        MockTransport({"GET /a extra": 200})


async def test_a_route_handler_may_be_a_sequence_or_an_exception() -> None:
    router = (
        Router().get("/flaky", [503, 200]).get("/down", hyperhttp.ConnectError("no route to host"))
    )
    async with client(router) as c:
        assert [(await c.get("http://api.test/flaky")).status_code for _ in range(2)] == [503, 200]
        with pytest.raises(hyperhttp.ConnectError):
            await c.get("http://api.test/down")


async def test_assert_all_called_names_the_routes_never_reached_and_reset_forgets() -> None:
    router = Router().get("/used", 200).post("/unused", 201)
    await fetch(router, "http://api.test/used")
    with pytest.raises(MockError, match=r"1 route\(s\) were never called:\n  <Route POST /unused"):
        router.assert_all_called()
    await fetch(router, "http://api.test/unused", "POST")
    router.assert_all_called()
    router.reset()
    assert router.calls == [] and all(not route.called for route in router.routes)
