"""Auth flows against a server that checks the credentials itself (tests/servers/auth_app.py).

The flows run through the Client's own pipeline (``client.send(request, auth=...)``).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

import hyperhttp
from hyperhttp._auth import Auth, BasicAuth, BearerAuth, FunctionAuth, url_auth
from hyperhttp._digest import DigestAuth
from tests.servers.auth_app import AuthApp
from tests.servers.hypercorn_app import HypercornServer

ALGORITHMS = ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess"]
if "sha512_256" in hashlib.algorithms_available:
    ALGORITHMS += ["SHA-512-256", "SHA-512-256-sess"]


async def send_with_auth(
    client: hyperhttp.Client, request: hyperhttp.Request, auth: Auth
) -> hyperhttp.Response:
    """Through the Client's own auth pipeline."""
    return await client.send(request, auth=auth)


async def fetch(
    server: HypercornServer,
    path: str,
    auth: Auth,
    method: str = "GET",
    content: object = None,
) -> tuple[int, dict[str, object]]:
    async with hyperhttp.Client() as client:
        request = hyperhttp.Request(method, server.url + path, content=content)  # type: ignore[arg-type]
        response = await send_with_auth(client, request, auth)
        await response.aread()
        return response.status_code, response.json()


@pytest.mark.parametrize("qop", ["auth", "auth-int", "none"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_digest_answers_each_algorithm_and_qop(
    auth_server: HypercornServer, app: AuthApp, algorithm: str, qop: str
) -> None:
    auth = DigestAuth("user", "pass")
    status, body = await fetch(
        auth_server, f"/digest/{algorithm}/{qop}", auth, "POST", b"a body, hashed for auth-int"
    )
    assert (status, app.statuses()) == (200, [401, 200]), app.log
    assert body["user"] == "user" and body["nc"] == 1 and body["body_length"] == 27
    assert body["qop"] == (None if qop == "none" else qop)


async def test_digest_prefers_auth_when_auth_int_is_offered_first(
    auth_server: HypercornServer, app: AuthApp
) -> None:
    status, body = await fetch(
        auth_server, "/digest/SHA-256/auth-int,auth", DigestAuth("user", "pass")
    )
    assert (status, body["qop"]) == (200, "auth")


async def test_digest_counts_nc_across_requests_and_authorizes_up_front(
    auth_server: HypercornServer, app: AuthApp
) -> None:
    auth = DigestAuth("user", "pass")
    counts = []
    for _ in range(3):
        status, body = await fetch(auth_server, "/digest/SHA-256/auth", auth)
        assert status == 200
        counts.append(body["nc"])
    assert counts == [1, 2, 3]
    assert app.statuses() == [401, 200, 200, 200]  # one challenge, then no 401 round trips


async def test_digest_renews_a_stale_nonce_and_starts_counting_again(
    auth_server: HypercornServer, app: AuthApp
) -> None:
    auth = DigestAuth("user", "pass")
    counts = []
    for _ in range(4):
        status, body = await fetch(auth_server, "/digest/MD5/auth?stale_after=2", auth)
        assert status == 200
        counts.append(body["nc"])
    assert counts == [1, 2, 1, 2]
    assert app.statuses() == [401, 200, 200, 401, 200, 200]
    assert app.log[3][2] == "stale nonce"


async def test_digest_wrong_password_returns_the_second_401(
    auth_server: HypercornServer, app: AuthApp
) -> None:
    status, _ = await fetch(auth_server, "/digest/SHA-256/auth", DigestAuth("user", "wrong"))
    assert status == 401
    assert app.statuses() == [401, 401]
    assert app.log[1][2] == "wrong response hash"


async def test_digest_wrong_password_up_front_is_retried_once_only(
    auth_server: HypercornServer, app: AuthApp
) -> None:
    auth = DigestAuth("user", "wrong")
    await fetch(auth_server, "/digest/MD5/auth", auth)
    status, _ = await fetch(auth_server, "/digest/MD5/auth", auth)
    assert status == 401
    assert app.statuses() == [401, 401, 401, 401]


async def test_digest_non_ascii_username_goes_as_username_star(
    auth_server: HypercornServer, app: AuthApp
) -> None:
    status, body = await fetch(
        auth_server, "/digest/SHA-256/auth", DigestAuth("Jäsøn Doe", "Secret, or not?")
    )
    assert (status, body["user"]) == (200, "Jäsøn Doe")


@pytest.mark.parametrize("user", ["user", "Jäsøn Doe"])
async def test_digest_hashes_the_username_when_the_server_asks(
    auth_server: HypercornServer, app: AuthApp, user: str
) -> None:
    from tests.servers.auth_app import USERS

    status, body = await fetch(
        auth_server, "/digest/SHA-256/auth?userhash=true", DigestAuth(user, USERS[user])
    )
    assert (status, body["user"]) == (200, user)


async def test_digest_is_picked_among_other_challenges(
    auth_server: HypercornServer, app: AuthApp
) -> None:
    status, body = await fetch(
        auth_server, "/digest/SHA-256-sess/auth?noise=1", DigestAuth("user", "pass")
    )
    assert (status, body["nc"]) == (200, 1)


async def test_digest_auth_int_refuses_a_streamed_body(
    auth_server: HypercornServer, app: AuthApp
) -> None:
    async def pieces() -> AsyncIterator[bytes]:
        yield b"streamed"

    with pytest.raises(hyperhttp.LocalProtocolError, match="auth-int"):
        await fetch(
            auth_server, "/digest/MD5/auth-int", DigestAuth("user", "pass"), "POST", pieces()
        )
    assert app.statuses() == [401]


async def test_basic_auth(auth_server: HypercornServer, app: AuthApp) -> None:
    assert await fetch(auth_server, "/basic", BasicAuth("user", "pass")) == (200, {"user": "user"})
    status, _ = await fetch(auth_server, "/basic", BasicAuth("user", "nope"))
    assert status == 401
    assert app.statuses() == [200, 401]  # Basic never retries


async def test_basic_auth_from_the_url_userinfo(auth_server: HypercornServer, app: AuthApp) -> None:
    url = hyperhttp.URL(auth_server.url.replace("://", "://us%65r:pa%73s@") + "/basic")
    auth = url_auth(url)
    assert auth is not None
    async with hyperhttp.Client() as client:
        response = await send_with_auth(client, hyperhttp.Request("GET", url), auth)
        await response.aread()
    assert response.status_code == 200


async def test_bearer_auth(auth_server: HypercornServer, app: AuthApp) -> None:
    assert await fetch(auth_server, "/bearer", BearerAuth("tok")) == (200, {"token": "tok"})
    status, _ = await fetch(auth_server, "/bearer", BearerAuth("other"))
    assert status == 401


async def test_function_auth(auth_server: HypercornServer, app: AuthApp) -> None:
    def sign(request: hyperhttp.Request) -> hyperhttp.Request:
        request.headers["Authorization"] = "Bearer tok"
        return request

    assert await fetch(auth_server, "/bearer", FunctionAuth(sign)) == (200, {"token": "tok"})
