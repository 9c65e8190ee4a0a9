"""Redirects, the cookie jar and event hooks against hypercorn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest

import hyperhttp
from hyperhttp import Request, Response
from hyperhttp._cookies import Cookie
from tests.servers.hypercorn_app import HypercornServer


def redirect(base: str, code: int, to: str) -> str:
    return f"{base}/redirect/{code}?to={quote(to, safe='')}"


async def echo(response: Response) -> dict[str, object]:
    await response.aread()
    result: dict[str, object] = response.json()
    return result


def header(echoed: dict[str, object], name: str) -> str | None:
    for key, value in echoed["headers"]:  # type: ignore[attr-defined]
        if key.lower() == name:
            return value  # type: ignore[no-any-return]
    return None


# -- redirects ------------------------------------------------------------------------------


async def test_redirects_are_off_by_default(hypercorn: HypercornServer) -> None:
    async with hyperhttp.Client(base_url=hypercorn.url) as client:
        response = await client.get(redirect(hypercorn.url, 302, "/echo"))
        assert response.status_code == 302 and response.is_redirect
        assert response.headers["location"] == "/echo"
        assert response.history == ()


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
async def test_chains_of_each_code_end_at_the_final_url(
    hypercorn: HypercornServer, code: int
) -> None:
    async with hyperhttp.Client(base_url=hypercorn.url, follow_redirects=True) as client:
        response = await client.get(f"/chain/{code}/3")
        echoed = await echo(response)
    assert response.status_code == 200
    assert str(response.url) == f"{hypercorn.url}/echo"
    assert [r.status_code for r in response.history] == [code] * 4
    assert [str(r.url) for r in response.history] == [
        f"{hypercorn.url}/chain/{code}/{n}" for n in (3, 2, 1, 0)
    ]
    assert echoed["method"] == "GET"


@pytest.mark.parametrize(
    ("code", "method", "body"),
    [
        (301, "GET", ""),
        (302, "GET", ""),
        (303, "GET", ""),
        (307, "POST", "payload"),
        (308, "POST", "payload"),
    ],
)
async def test_post_is_switched_to_get_or_kept_with_its_body(
    hypercorn: HypercornServer, code: int, method: str, body: str
) -> None:
    async with hyperhttp.Client(follow_redirects=True) as client:
        response = await client.post(redirect(hypercorn.url, code, "/echo"), content=b"payload")
        echoed = await echo(response)
    assert echoed["method"] == method and echoed["body"] == body
    if method == "GET":
        assert header(echoed, "content-length") is None
        assert header(echoed, "content-type") is None


async def test_307_with_a_one_shot_stream_is_refused_not_sent_empty(
    hypercorn: HypercornServer,
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"once"

    async with hyperhttp.Client(follow_redirects=True) as client:
        with pytest.raises(hyperhttp.StreamConsumed, match="cannot be sent again"):
            await client.post(redirect(hypercorn.url, 307, "/echo"), content=body())
        # A multipart body of bytes can be sent again, so it follows.
        response = await client.post(
            redirect(hypercorn.url, 307, "/multipart"), files={"f": ("a.txt", b"again")}
        )
        await response.aread()
        assert response.json()["parts"][0]["text"] == "again"


async def test_relative_and_absolute_locations(hypercorn: HypercornServer) -> None:
    async with hyperhttp.Client(follow_redirects=True) as client:
        relative = await client.get(redirect(hypercorn.url, 302, "../echo?from=relative"))
        assert (await echo(relative))["query"] == "from=relative"
        absolute = await client.get(redirect(hypercorn.url, 302, f"{hypercorn.url}/echo?x=1"))
        assert (await echo(absolute))["query"] == "x=1"


async def test_credentials_stay_with_their_origin(hypercorn: HypercornServer) -> None:
    here = f"http://127.0.0.1:{hypercorn.port}"
    there = f"http://localhost:{hypercorn.port}"  # same server, another origin
    secret = {"Authorization": "Bearer secret", "Cookie": "session=1"}
    async with hyperhttp.Client(follow_redirects=True) as client:
        same = await echo(await client.get(redirect(here, 302, f"{here}/echo"), headers=secret))
        assert header(same, "authorization") == "Bearer secret"
        assert header(same, "cookie") == "session=1"
        other = await echo(await client.get(redirect(here, 302, f"{there}/echo"), headers=secret))
        assert header(other, "authorization") is None
        assert header(other, "cookie") is None
        assert header(other, "host") == f"localhost:{hypercorn.port}"


async def test_a_redirect_loop_stops_at_max_redirects(hypercorn: HypercornServer) -> None:
    loop = f"{hypercorn.url}/chain/302/loop"  # redirects to itself
    async with hyperhttp.Client(follow_redirects=True, max_redirects=5) as client:
        with pytest.raises(hyperhttp.TooManyRedirects, match="more than 5"):
            await client.get(loop)
        stats = client.get_pool_stats()[hypercorn.url]
        assert stats["requests"] == 6 and stats["connections"] == 1  # bodies read, one connection


async def test_follow_redirects_per_request(hypercorn: HypercornServer) -> None:
    async with hyperhttp.Client() as client:
        response = await client.get(redirect(hypercorn.url, 301, "/echo"), follow_redirects=True)
        assert response.status_code == 200 and len(response.history) == 1
    async with hyperhttp.Client(follow_redirects=True) as client:
        response = await client.get(redirect(hypercorn.url, 301, "/echo"), follow_redirects=False)
        assert response.status_code == 301


# -- cookies --------------------------------------------------------------------------------


def set_cookie(base: str, *values: str, path: str = "/set-cookie") -> str:
    query = "&".join(f"c={quote(v, safe='')}" for v in values)
    return f"{base}{path}?{query}"


async def test_cookies_set_on_one_path_are_sent_by_path(hypercorn: HypercornServer) -> None:
    base = hypercorn.url
    async with hyperhttp.Client() as client:
        await client.get(set_cookie(base, "site=1; Path=/", "deep=2; Path=/echo/deep"))
        assert client.cookies["site"] == "1" and client.cookies["deep"] == "2"
        top = await echo(await client.get(f"{base}/echo"))
        assert header(top, "cookie") == "site=1"
        deep = await echo(await client.get(f"{base}/echo/deep/x"))
        assert sorted(header(deep, "cookie").split("; ")) == ["deep=2", "site=1"]  # type: ignore[union-attr]


async def test_max_age_zero_deletes_and_expiry_is_honoured(hypercorn: HypercornServer) -> None:
    base = hypercorn.url
    async with hyperhttp.Client() as client:
        await client.get(set_cookie(base, "a=1; Path=/", "b=2; Path=/"))
        await client.get(set_cookie(base, "a=gone; Max-Age=0; Path=/"))
        await client.get(set_cookie(base, "c=3; Path=/; Expires=Wed, 21 Oct 2015 07:28:00 GMT"))
        echoed = await echo(await client.get(f"{base}/echo"))
        assert header(echoed, "cookie") == "b=2"
        assert "a" not in client.cookies and "c" not in client.cookies


async def test_secure_cookies_are_withheld_on_http(hypercorn: HypercornServer) -> None:
    async with hyperhttp.Client() as client:
        await client.get(set_cookie(hypercorn.url, "plain=1; Path=/", "safe=2; Secure; Path=/"))
        assert "safe" not in client.cookies  # set over http: refused (RFC 6265bis 5.7)
        client.cookies.jar.set_cookie(
            Cookie("kept", "3", "127.0.0.1", "/", secure=True, host_only=True)
        )
        echoed = await echo(await client.get(f"{hypercorn.url}/echo"))
        assert header(echoed, "cookie") == "plain=1"  # a Secure one in the jar is not sent


async def test_host_only_and_bare_tld_domains(hypercorn: HypercornServer) -> None:
    here = f"http://127.0.0.1:{hypercorn.port}"
    there = f"http://localhost:{hypercorn.port}"
    async with hyperhttp.Client() as client:
        await client.get(set_cookie(here, "hostonly=1; Path=/"))
        await client.get(set_cookie(here, "tld=1; Domain=com; Path=/"))  # refused
        assert "tld" not in client.cookies
        at_here = await echo(await client.get(f"{here}/echo"))
        at_there = await echo(await client.get(f"{there}/echo"))
    assert header(at_here, "cookie") == "hostonly=1"
    assert header(at_there, "cookie") is None


async def test_client_and_request_cookies_and_clearing(hypercorn: HypercornServer) -> None:
    async with hyperhttp.Client(cookies={"default": "d"}) as client:
        echoed = await echo(await client.get(f"{hypercorn.url}/echo", cookies={"extra": "e"}))
        assert sorted(header(echoed, "cookie").split("; ")) == ["default=d", "extra=e"]  # type: ignore[union-attr]
        client.cookies.clear()
        echoed = await echo(await client.get(f"{hypercorn.url}/echo"))
        assert header(echoed, "cookie") is None


async def test_cookies_set_during_a_redirect_reach_the_next_hop(hypercorn: HypercornServer) -> None:
    async with hyperhttp.Client(follow_redirects=True) as client:
        hop = f"{hypercorn.url}/redirect/302?to=%2Fecho"
        await client.get(set_cookie(hypercorn.url, "flow=1; Path=/"))
        echoed = await echo(await client.get(hop))
        assert header(echoed, "cookie") == "flow=1"


# -- event hooks ----------------------------------------------------------------------------


async def test_hooks_observe_and_mutate_each_attempt(hypercorn: HypercornServer) -> None:
    seen: list[str] = []
    statuses: list[int] = []

    def sign(request: Request) -> None:
        seen.append(str(request.url))
        request.headers["X-Signature"] = f"signed-{len(seen)}"

    async def record(response: Response) -> None:
        await asyncio.sleep(0)  # an async hook is awaited
        assert not response.is_closed  # before the body is read
        statuses.append(response.status_code)

    async with hyperhttp.Client(
        follow_redirects=True, event_hooks={"request": [sign], "response": [record]}
    ) as client:
        echoed = await echo(await client.get(redirect(hypercorn.url, 302, "/echo")))
    assert seen == [redirect(hypercorn.url, 302, "/echo"), f"{hypercorn.url}/echo"]
    assert statuses == [302, 200]
    assert header(echoed, "x-signature") == "signed-2"  # the mutation was sent


async def test_a_hook_exception_propagates(hypercorn: HypercornServer) -> None:
    def refuse(response: Response) -> None:
        response.raise_for_status()

    async with hyperhttp.Client(event_hooks={"response": [refuse]}) as client:
        with pytest.raises(hyperhttp.HTTPStatusError):
            await client.get(f"{hypercorn.url}/status/500")
        client.event_hooks = {"response": []}
        assert (await client.get(f"{hypercorn.url}/status/500")).status_code == 500
    with pytest.raises(ValueError):
        hyperhttp.Client(event_hooks={"requests": []})


async def test_settings_changed_after_construction_take_effect(hypercorn: HypercornServer) -> None:
    calls: list[str] = []
    async with hyperhttp.Client() as client:
        client.event_hooks["request"].append(lambda request: calls.append(request.method))
        client.follow_redirects = True
        response = await client.get(redirect(hypercorn.url, 302, "/echo"))
        assert response.status_code == 200 and calls == ["GET", "GET"]
        client.follow_redirects = False
        client.auth = ("user", "pass")
        echoed = await echo(await client.get(f"{hypercorn.url}/echo"))
        assert header(echoed, "authorization") == "Basic dXNlcjpwYXNz"


async def test_a_downgrade_to_http_drops_credentials(
    hypercorn_tls: HypercornServer, hypercorn: HypercornServer, certs: object
) -> None:
    secure = f"https://localhost:{hypercorn_tls.port}"
    plain = f"http://localhost:{hypercorn.port}/echo"
    secret = {"Authorization": "Bearer secret", "Proxy-Authorization": "Basic eDp5"}
    async with hyperhttp.Client(verify=certs.ca_path, follow_redirects=True) as client:  # type: ignore[attr-defined]
        response = await client.get(redirect(secure, 302, plain), headers=secret)
        echoed = await echo(response)
    assert str(response.history[0].url).startswith("https://")
    assert header(echoed, "authorization") is None
    assert header(echoed, "proxy-authorization") is None
