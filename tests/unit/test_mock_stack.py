"""The whole client stack over MockTransport: only the network is replaced.

Retries, a Digest round trip (the server side is tests/servers/auth_app.py's, written from RFC 7616
apart from the client), redirects across hosts with the cookie jar, event hooks, decoding,
streaming, and network failures raised by a handler.
"""

from __future__ import annotations

import gzip
import json
from typing import Any, AsyncIterator

import pytest

import hyperhttp
from hyperhttp import (
    Client,
    DigestAuth,
    ExponentialBackoff,
    Request,
    RetryError,
    RetryPolicy,
)
from hyperhttp.mock import MockResponse, MockTransport, Router
from tests.servers.auth_app import AuthApp

FAST = ExponentialBackoff(base=0.001, max_backoff=0.002)


async def test_a_list_of_503s_is_retried_until_the_200() -> None:
    transport = MockTransport([503, 503, MockResponse(200, text="finally")])
    async with Client(transport=transport, retry=RetryPolicy(backoff_strategy=FAST)) as client:
        response = await client.get("http://api.test/flaky")
        assert (response.status_code, await response.aread()) == (200, b"finally")
    assert transport.call_count == 3


async def test_retries_run_out_into_a_retry_error_with_every_attempt() -> None:
    transport = MockTransport([503, 502, MockResponse(503, headers={"Retry-After": "0"})])
    policy = RetryPolicy(max_retries=2, backoff_strategy=FAST)
    async with Client(transport=transport, retry=policy) as client:
        with pytest.raises(RetryError) as caught:
            await client.get("http://api.test/down")
    state = caught.value.retry_state
    assert state.attempt_count == 3
    assert [attempt.status for attempt in state.attempts] == [503, 502, 503]
    assert transport.call_count == 3


async def test_network_errors_from_the_handler_are_classified_like_real_ones() -> None:
    transport = MockTransport([hyperhttp.ReadError("reset by peer"), 200])
    async with Client(transport=transport, retry=RetryPolicy(backoff_strategy=FAST)) as client:
        assert (await client.get("http://api.test/")).status_code == 200  # TRANSIENT: retried
    assert transport.call_count == 2
    transport = MockTransport([hyperhttp.ConnectError("connection refused"), 200])
    async with Client(transport=transport, retry=RetryPolicy(backoff_strategy=FAST)) as client:
        with pytest.raises(hyperhttp.ConnectError, match="refused"):
            await client.get("http://api.test/")  # CONNECTION is not a default category
    policy = RetryPolicy(retry_categories=["CONNECTION"], backoff_strategy=FAST)
    transport = MockTransport([hyperhttp.ConnectError("connection refused"), 200])
    async with Client(transport=transport, retry=policy) as client:
        assert (await client.get("http://api.test/")).status_code == 200


def digest_server(app: AuthApp) -> Any:
    """tests/servers/auth_app.py's Digest check as a mock handler."""

    def handler(request: Request) -> MockResponse:
        scope = {
            "path": request.url.path,
            "query_string": request.url.query.encode(),
            "method": request.method,
        }
        authorization = request.headers.get("authorization", "")
        status, challenges, payload, _ = app._digest(scope, authorization, request.read())
        headers = [("WWW-Authenticate", challenge) for challenge in challenges]
        return MockResponse(status, json=payload, headers=headers)

    return handler


@pytest.mark.parametrize("path", ["/digest/SHA-256/auth", "/digest/MD5-sess/auth-int"])
async def test_digest_auth_round_trip(path: str) -> None:
    transport = MockTransport(digest_server(AuthApp()))
    async with Client(transport=transport, auth=DigestAuth("user", "pass")) as client:
        response = await client.post(f"http://api.test{path}", content=b"payload")
        await response.aread()
        assert response.status_code == 200, response.text
        assert response.json()["user"] == "user"
        again = await client.post(f"http://api.test{path}", content=b"payload")
        await again.aread()
        assert again.json()["nc"] == 2  # the nonce was reused, its count went up
    first, answered, reused = transport.calls
    assert "authorization" not in first.headers
    assert answered.headers["authorization"].startswith("Digest ")
    assert reused.headers["authorization"].startswith("Digest ")


async def test_a_redirect_updates_the_jar_and_keeps_the_requests_own_cookie() -> None:
    """The request's own Cookie field goes again on same-origin hops, merged with the jar's
    cookies as they are at each hop: a value the redirect set is the one sent next, not the
    one the first hop took from the jar."""
    router = (
        Router()
        .get("https://shop.test/set", MockResponse(headers=[("Set-Cookie", "jar=1; Path=/")]))
        .get(
            "https://shop.test/go",
            MockResponse(302, headers=[("Location", "/next"), ("Set-Cookie", "jar=2; Path=/")]),
        )
        .get(
            "https://shop.test/next",
            lambda request: MockResponse(text=request.headers.get("cookie", "")),
        )
    )
    transport = MockTransport(router)
    async with Client(transport=transport, follow_redirects=True) as client:
        await (await client.get("https://shop.test/set")).aread()
        response = await client.get("https://shop.test/go", headers={"Cookie": "mine=1"})
        assert await response.aread() == b"jar=2; mine=1"
    assert transport.calls[1].headers["cookie"] == "jar=1; mine=1"


async def test_redirects_across_hosts_carry_only_each_hosts_cookies() -> None:
    router = (
        Router()
        .get(
            "https://shop.test/login",
            MockResponse(
                302,
                headers=[
                    ("Location", "https://auth.test/sso"),
                    ("Set-Cookie", "shop_session=s1; Path=/; Secure"),
                ],
            ),
        )
        .get(
            "https://auth.test/sso",
            MockResponse(
                303,
                headers=[
                    ("Location", "https://shop.test/home"),
                    ("Set-Cookie", "sso=a1; Path=/"),
                ],
            ),
        )
        .get(
            "https://shop.test/home",
            lambda request: MockResponse(text=request.headers.get("cookie", "")),
        )
    )
    transport = MockTransport(router)
    async with Client(transport=transport, follow_redirects=True) as client:
        response = await client.get("https://shop.test/login", headers={"Authorization": "secret"})
        assert await response.aread() == b"shop_session=s1"
        assert [r.status_code for r in response.history] == [302, 303]
        assert str(response.url) == "https://shop.test/home"
        assert client.cookies.get("sso") == "a1"
    to_shop, to_auth, back = transport.calls
    assert "cookie" not in to_auth.headers  # shop's cookie stays with shop
    assert "authorization" not in to_auth.headers  # and the credentials with the first origin
    assert back.headers["cookie"] == "shop_session=s1"


async def test_event_hooks_see_each_attempt_sync_and_async() -> None:
    seen: list[str] = []

    def on_request(request: Request) -> None:
        request.headers["X-Trace"] = "t-1"
        seen.append(f"request {request.url.path}")

    async def on_response(response: hyperhttp.Response) -> None:
        seen.append(f"response {response.status_code}")

    transport = MockTransport([MockResponse(301, headers={"Location": "/next"}), 200])
    hooks = {"request": [on_request], "response": [on_response]}
    async with Client(transport=transport, event_hooks=hooks, follow_redirects=True) as client:
        await client.get("http://api.test/first")
    assert seen == ["request /first", "response 301", "request /next", "response 200"]
    assert all(request.headers["x-trace"] == "t-1" for request in transport.calls)


async def test_a_gzip_body_is_decoded_and_advertised() -> None:
    transport = MockTransport(
        MockResponse(content=gzip.compress(b'{"ok": true}'), headers={"Content-Encoding": "gzip"})
    )
    async with Client(transport=transport) as client:
        response = await client.get("http://api.test/")
        await response.aread()
    assert response.json() == {"ok": True}
    assert "gzip" in transport.calls[0].headers["accept-encoding"]


async def test_a_streamed_body_is_read_piece_by_piece() -> None:
    async def events() -> AsyncIterator[bytes]:
        for n in range(3):
            yield json.dumps({"n": n}).encode() + b"\n"

    transport = MockTransport(lambda request: MockResponse(stream=events()))
    async with Client(transport=transport) as client:
        async with client.stream("GET", "http://api.test/events") as response:
            lines = [json.loads(line) async for line in response.aiter_lines()]
    assert lines == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert response.is_closed


async def test_raise_for_status_and_the_response_url() -> None:
    async with Client(transport=MockTransport(404), base_url="http://api.test/v1") as client:
        response = await client.get("/missing")
        assert str(response.url) == "http://api.test/v1/missing"
        with pytest.raises(hyperhttp.HTTPStatusError, match="404"):
            response.raise_for_status()


async def test_an_open_circuit_breaker_stops_requests_before_the_mock() -> None:
    breakers = hyperhttp.DomainCircuitBreakerManager(
        {"failure_threshold": 2, "recovery_timeout": 60.0, "success_threshold": 1}
    )
    transport = MockTransport(503)
    async with Client(transport=transport, circuit_breaker_manager=breakers) as client:
        for _ in range(2):
            assert (await client.get("http://api.test/")).status_code == 503
        with pytest.raises(hyperhttp.CircuitBreakerOpen) as caught:
            await client.get("http://api.test/")
    assert caught.value.host == "api.test"
    assert transport.call_count == 2


async def test_default_fields_outside_latin_1_are_encoded_as_a_requests_own() -> None:
    """A default field's value outside Latin-1 raised UnicodeEncodeError from Client(); a
    request's own goes out in UTF-8, and now so does a default one. A name outside Latin-1 is
    refused as any invalid name is."""
    transport = MockTransport(lambda request: MockResponse(200))
    async with Client(transport=transport, headers={"X-Default": "€"}) as client:
        await client.get("https://a.test/", headers={"X-Own": "€"})
    raw = dict(transport.calls[0].headers.raw)
    assert raw[b"X-Default"] == raw[b"X-Own"] == "€".encode()
    with pytest.raises(hyperhttp.LocalProtocolError):
        Client(transport=transport, headers={"X-€": "1"})
