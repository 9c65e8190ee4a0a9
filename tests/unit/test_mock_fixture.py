"""The ``hyperhttp_mock`` fixture used the way a user would: the code under test builds its own
Client, as application code does, and the fixture answers for the network."""

from __future__ import annotations

from typing import Any

import pytest

import hyperhttp
from hyperhttp.mock import MockResponse
from hyperhttp.pytest_plugin import HyperhttpMock

# -- the "application" under test --------------------------------------------------------------


async def fetch_user(user_id: int) -> Any:
    async with hyperhttp.Client(base_url="https://api.example.com/v1") as client:
        response = await client.get(f"/users/{user_id}", params={"fields": "name"})
        response.raise_for_status()
        await response.aread()
        return response.json()


async def rename_user(user_id: int, name: str) -> int:
    async with hyperhttp.Client() as client:
        response = await client.patch(
            f"https://api.example.com/v1/users/{user_id}", json={"name": name}
        )
        return response.status_code


# -- the tests ------------------------------------------------------------------------------------


async def test_the_code_under_test_gets_the_mocked_answer(hyperhttp_mock: HyperhttpMock) -> None:
    hyperhttp_mock.get(
        "https://api.example.com/v1/users/7", MockResponse(json={"id": 7, "name": "Ann"})
    )
    assert await fetch_user(7) == {"id": 7, "name": "Ann"}
    (request,) = hyperhttp_mock.calls
    assert request.url.query == "fields=name"
    assert request.headers["user-agent"].startswith("hyperhttp/")


async def test_a_handler_sees_the_body_the_code_sent(hyperhttp_mock: HyperhttpMock) -> None:
    hyperhttp_mock.patch(
        "/v1/users/7", lambda request: 200 if request.json() == {"name": "Bo"} else 400
    )
    assert await rename_user(7, "Bo") == 200
    assert await rename_user(7, "Cy") == 400
    assert hyperhttp_mock.routes[0].call_count == 2


async def test_errors_reach_the_code_under_test(hyperhttp_mock: HyperhttpMock) -> None:
    hyperhttp_mock.get("/v1/users/1", MockResponse(404, json={"error": "no such user"}))
    hyperhttp_mock.get("/v1/users/2", hyperhttp.ConnectError("connection refused"))
    with pytest.raises(hyperhttp.HTTPStatusError, match="404"):
        await fetch_user(1)
    with pytest.raises(hyperhttp.ConnectError):
        await fetch_user(2)


async def test_an_unmatched_request_fails_with_the_routes(hyperhttp_mock: HyperhttpMock) -> None:
    hyperhttp_mock.get("/v1/users/1", MockResponse(json={}))
    with pytest.raises(
        hyperhttp.mock.UnmatchedRequest, match="GET https://api.example.com/v1/users/9"
    ):
        await fetch_user(9)
    await fetch_user(1)
    hyperhttp_mock.unmatched.clear()  # handled here, so teardown need not fail the test


@pytest.mark.hyperhttp_mock(assert_all_called=False)
async def test_routes_left_uncalled_are_allowed_by_the_marker(
    hyperhttp_mock: HyperhttpMock,
) -> None:
    hyperhttp_mock.get("/v1/users/1", MockResponse(json={"id": 1}))
    hyperhttp_mock.delete("/v1/users/1", 204)  # not called: fine under this marker
    assert await fetch_user(1) == {"id": 1}


async def test_a_client_on_the_fixture_transport(hyperhttp_mock: HyperhttpMock) -> None:
    hyperhttp_mock.get("/ping", 204)
    async with hyperhttp_mock.client(base_url="http://svc.test") as client:
        assert (await client.get("/ping")).status_code == 204
    assert hyperhttp_mock.transport.call_count == 1
