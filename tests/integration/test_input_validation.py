"""Bad caller input gets a typed error before anything is sent."""

from __future__ import annotations

from typing import Any

import pytest

import hyperhttp
from tests.integration.conftest import crlf_on_bad_path
from tests.servers.faults import Conn, keep_answering, respond


@pytest.mark.parametrize(
    "url",
    [
        "http:///path",
        "ftp://127.0.0.1/file",
        "127.0.0.1/no-scheme",
        "http://127.0.0.1:99999/",
        "http://127.0.0.1/a\r\nInjected: yes",
        "http://127.0.0.1/\x00",
    ],
    ids=["no-host", "unknown-scheme", "no-scheme", "bad-port", "crlf", "nul"],
)
async def test_bad_urls_raise_invalid_url(scripted, url: str) -> None:
    server = scripted(keep_answering(respond(body=b"ok")))
    async with hyperhttp.Client() as client:
        with pytest.raises(hyperhttp.InvalidURL):
            await client.get(
                url.replace("127.0.0.1", f"127.0.0.1:{server.port}", 1)
                if "99999" not in url
                else url
            )
    assert server.accepted == 0


@pytest.mark.parametrize(
    "params",
    ["a=1\r\nX-Evil: 1", "a=1\r\n\r\nGET /smuggled HTTP/1.1", b"a=1\nX-Evil: 1", "a=\x00"],
    ids=["crlf", "crlf-crlf", "bytes-lf", "nul"],
)
async def test_control_characters_in_params_raise_invalid_url(
    scripted, params: str | bytes
) -> None:
    """Issue 12, item 1: a str or bytes query used to go on the wire as given."""
    server = scripted(keep_answering(respond(body=b"ok")))
    async with hyperhttp.Client() as client:
        with pytest.raises(hyperhttp.InvalidURL):
            await client.get(f"{server.url}/p", params=params)
        response = await client.get(f"{server.url}/p", params={"q": "a\r\nb"})  # encoded: fine
        assert response.status_code == 200
    assert server.requests and server.requests[0].startswith(b"GET /p?q=a%0D%0Ab HTTP/1.1\r\n")
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Bad": "a\r\nInjected: 1"},
        {"X-Bad": "a\nb"},
        {"X-Bad": "a\x00b"},
        {"Bad Name": "v"},
        {"Bad:Name": "v"},
        {"X\r\nInjected": "v"},
    ],
    ids=["crlf-value", "lf-value", "nul-value", "space-name", "colon-name", "crlf-name"],
)
async def test_bad_headers_raise_local_protocol_error(scripted, headers: dict[str, str]) -> None:
    server = scripted(keep_answering(respond(body=b"ok")))
    async with hyperhttp.Client() as client:
        with pytest.raises(hyperhttp.LocalProtocolError):
            await client.get(server.url, headers=headers)
    assert server.accepted == 0


@pytest.mark.parametrize("method", ["GET /evil", "BAD\r\nMETHOD", "", "GÉT"])
async def test_bad_methods_raise_local_protocol_error(scripted, method: str) -> None:
    server = scripted(keep_answering(respond(body=b"ok")))
    async with hyperhttp.Client() as client:
        with pytest.raises(hyperhttp.LocalProtocolError):
            await client.request(method, server.url)
    assert server.accepted == 0


async def test_bad_client_default_headers_are_refused_at_construction() -> None:
    with pytest.raises(hyperhttp.LocalProtocolError):
        hyperhttp.Client(headers={"X-Bad": "a\r\nb"})
    with pytest.raises(hyperhttp.InvalidURL):
        hyperhttp.Client(base_url="ftp://example.test")


# -- framing is the client's (issue 12, item 2) ---------------------------------------------------


def _echo_requests(conn: Conn) -> None:
    """Answers each request (read with its Content-Length or chunked body) with 200 "ok"."""
    while conn.read_request() is not None:
        conn.send(respond(body=b"ok"))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"content": b"x" * 46, "headers": {"Content-Length": "5"}}, "disagrees with the body"),
        ({"content": b"abc", "headers": {"Content-Length": "300"}}, "disagrees with the body"),
        ({"headers": {"Content-Length": "5"}}, "disagrees with the body"),  # a GET: no body
        ({"content": b"abc", "headers": {"Content-Length": "3, 4"}}, "invalid Content-Length"),
        ({"content": b"abc", "headers": {"Content-Length": "-3"}}, "invalid Content-Length"),
        ({"content": b"abc", "headers": {"Content-Length": "3", "Transfer-Encoding": "chunked"}},
         "both"),
        ({"content": b"abc", "headers": {"Transfer-Encoding": "gzip"}}, "end with chunked"),
        ({"content": b"abc", "headers": {"Transfer-Encoding": "chunked, chunked"}},
         "end with chunked"),
    ],
    ids=["longer-body", "shorter-body", "no-body", "two-lengths", "negative", "both",
         "not-chunked", "chunked-twice"],
)  # fmt: skip
async def test_framing_that_disagrees_with_the_body_is_refused(
    scripted, options: dict[str, Any], match: str
) -> None:
    """A declared length that disagrees with the body used to go out as declared: 46 bytes under
    Content-Length 5, the other 41 read by the server as a second request."""
    server = scripted(_echo_requests)
    async with hyperhttp.Client() as client:
        with pytest.raises(hyperhttp.LocalProtocolError, match=match):
            await client.request("GET" if "content" not in options else "POST", server.url,
                                 **options)  # fmt: skip
        request = client.build_request("POST", server.url, content=b"x" * 46)
        request.headers["Content-Length"] = "5"  # the same, set after the request was built
        with pytest.raises(hyperhttp.LocalProtocolError, match="disagrees"):
            await client.send(request)
    assert server.accepted == 0


async def test_a_callers_transfer_encoding_gets_a_chunk_framed_body(scripted) -> None:
    server = scripted(_echo_requests)
    async with hyperhttp.Client() as client:
        for content in (b"hello", b"", b"x" * 100_000):
            response = await client.post(
                server.url, content=content, headers={"Transfer-Encoding": "chunked"}
            )
            assert await response.aread() == b"ok"
        response = await client.post(server.url, content=b"abc", headers={"content-length": "3"})
        assert await response.aread() == b"ok"
    sent = server.requests
    assert len(sent) == 4 and server.accepted == 1  # every response in step on one connection
    for request, body in zip(sent, (b"hello", b"", b"x" * 100_000), strict=False):
        head, _, framed = request.partition(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        assert b"content-length" not in head.lower()
        expected = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
        assert framed == expected
    assert sent[3].lower().count(b"content-length: 3\r\n") == 1 and sent[3].endswith(b"\r\n\r\nabc")


# -- a refused field leaks nothing (issue 12, item 3) ----------------------------------------------


@pytest.mark.parametrize("warm", [False, True], ids=["new-connection", "idle-connection"])
async def test_a_field_refused_after_the_hooks_leaks_no_connection(scripted, warm: bool) -> None:
    """A request hook (or an auth flow, or a cookie) that sets a value with CR LF makes the
    request fail when it is encoded: that used to happen after the pool had handed out a
    connection, which was then neither idle nor closed (max_connections=1: PoolTimeout next)."""
    server = scripted(_echo_requests)

    timeout = hyperhttp.Timeout(5.0, pool=1.0)
    async with hyperhttp.Client(
        max_connections=1, timeout=timeout, event_hooks={"request": [crlf_on_bad_path]}
    ) as client:
        if warm:
            assert await (await client.get(server.url + "/ok")).aread() == b"ok"
        for _ in range(3):
            with pytest.raises(hyperhttp.LocalProtocolError, match="invalid header value"):
                await client.get(server.url + "/bad")
            assert await (await client.get(server.url + "/ok")).aread() == b"ok"
        stats = client.get_pool_stats()[server.url]
        assert stats["in_use"] == 0 and stats["connections"] == 1
    assert not any(b"/bad" in request for request in server.requests)
