"""Bad caller input gets a typed error before anything is sent."""

from __future__ import annotations

import pytest

import hyperhttp
from tests.servers.faults import keep_answering, respond


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
