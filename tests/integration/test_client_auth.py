"""Authentication through the Client's own pipeline (the flows themselves: test_auth_server.py)."""

from __future__ import annotations

from urllib.parse import quote

import hyperhttp
from hyperhttp import BearerAuth, DigestAuth
from tests.servers.auth_app import AuthApp
from tests.servers.hypercorn_app import HypercornServer


async def test_client_auth_request_override_and_none(
    auth_server: HypercornServer, app: AuthApp
) -> None:
    async with hyperhttp.Client(base_url=auth_server.url, auth=("user", "pass")) as client:
        assert (await client.get("/basic")).status_code == 200
        assert (await client.get("/bearer", auth=BearerAuth("tok"))).status_code == 200
        assert (await client.get("/basic", auth=None)).status_code == 401
        assert (await client.get("/basic", auth=("user", "wrong"))).status_code == 401


async def test_credentials_in_the_url(auth_server: HypercornServer, app: AuthApp) -> None:
    async with hyperhttp.Client() as client:
        response = await client.get(f"http://user:pass@127.0.0.1:{auth_server.port}/basic")
        assert response.status_code == 200
        await response.aread()
        assert response.json()["user"] == "user"
        wrong = await client.get(f"http://user:nope@127.0.0.1:{auth_server.port}/basic")
        assert wrong.status_code == 401


async def test_digest_counts_nonces_across_requests_through_the_client(
    auth_server: HypercornServer, app: AuthApp
) -> None:
    async with hyperhttp.Client(
        base_url=auth_server.url, auth=DigestAuth("user", "pass")
    ) as client:
        counts = []
        for _ in range(3):
            response = await client.get("/digest/SHA-256/auth")
            await response.aread()
            assert response.status_code == 200
            counts.append(response.json()["nc"])
        response = await client.post("/digest/MD5-sess/auth-int", content=b"signed body")
        assert response.status_code == 200
        stats = client.get_pool_stats()[auth_server.url]
    assert counts == [1, 2, 3]
    assert [status for _, status, _ in app.log[:4]] == [401, 200, 200, 200]  # one challenge
    assert stats["connections"] == 1  # the 401 bodies were read: one connection throughout


async def test_auth_does_not_follow_a_redirect_to_another_origin(
    hypercorn: HypercornServer,
) -> None:
    here = f"http://127.0.0.1:{hypercorn.port}"
    there = f"http://localhost:{hypercorn.port}"

    async def authorization(url: str) -> str | None:
        async with hyperhttp.Client(auth=BearerAuth("secret"), follow_redirects=True) as client:
            response = await client.get(f"{here}/redirect/302?to={quote(url, safe='')}")
            await response.aread()
            for name, value in response.json()["headers"]:
                if name.lower() == "authorization":
                    return value  # type: ignore[no-any-return]
        return None

    assert await authorization(f"{here}/echo") == "Bearer secret"
    assert await authorization(f"{there}/echo") is None
