"""The pytest plugin (registered through the ``pytest11`` entry point): ``hyperhttp_mock``.

The fixture puts a strict Router in front of every Client of the test, however and wherever it is
built, as pytest-httpx does for httpx: code under test needs no ``transport=`` of its own. A
request no route matches fails the test (at once with UnmatchedRequest, and again at teardown in
case the code under test swallowed that); a route no request reached fails it at teardown. A
marker changes both: ``@pytest.mark.hyperhttp_mock(assert_all_called=False,
non_mocked_hosts=["127.0.0.1"])`` (requests to those hosts go to the network).
"""

from __future__ import annotations

from typing import Any, Generator, Iterable, Iterator

import pytest

from ._client import Client
from ._mock import MockTransport
from ._models import Response
from ._request import Request
from ._router import Router
from .net.pool import ConnectionPool

__all__ = ["HyperhttpMock", "hyperhttp_mock"]

_PASSED = pytest.StashKey[bool]()


class HyperhttpMock(Router):
    """The ``hyperhttp_mock`` fixture: a strict Router serving every Client of a test.

    Add routes as on any Router (``hyperhttp_mock.get("https://api.test/users", MockResponse(
    json=[...]))``); ``calls``, ``unmatched`` and each route's ``calls`` record what happened;
    ``transport`` is the MockTransport (``client()`` builds a Client on it).
    """

    def __init__(
        self, *, assert_all_called: bool = True, non_mocked_hosts: Iterable[str] = ()
    ) -> None:
        super().__init__(strict=True)
        self.transport = MockTransport(self)
        self.check_all_called = assert_all_called
        self.non_mocked_hosts = frozenset(host.lower() for host in non_mocked_hosts)

    def client(self, **options: Any) -> Client:
        """A Client whose transport is this mock (any Client of the test is served anyway)."""
        return Client(transport=self.transport, **options)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "hyperhttp_mock(assert_all_called=True, non_mocked_hosts=()): options of the "
        "hyperhttp_mock fixture",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_PASSED] = report.passed


@pytest.fixture
def hyperhttp_mock(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HyperhttpMock]:
    """A strict Router in front of every hyperhttp Client of the test: see ``HyperhttpMock``."""
    marker = request.node.get_closest_marker("hyperhttp_mock")
    mock = HyperhttpMock(**(marker.kwargs if marker is not None else {}))
    network = ConnectionPool.handle_async_request
    mocked = mock.transport.handle_async_request

    async def handle_async_request(pool: ConnectionPool, outgoing: Request) -> Response:
        if outgoing.url.host in mock.non_mocked_hosts:
            return await network(pool, outgoing)
        return await mocked(outgoing)

    monkeypatch.setattr(ConnectionPool, "handle_async_request", handle_async_request)
    yield mock
    if not request.node.stash.get(_PASSED, False):
        return  # the test's own failure says more than these would
    if mock.unmatched:
        listed = "\n".join(mock.describe_unmatched(r) for r in mock.unmatched)
        pytest.fail(f"hyperhttp_mock: requests no route matched:\n{listed}", pytrace=False)
    if mock.check_all_called:
        idle = [route for route in mock.routes if not route.calls]
        if idle:
            listed = "\n".join(f"  {route!r}" for route in idle)
            pytest.fail(
                f"hyperhttp_mock: routes no request reached:\n{listed}\n(mark the test with "
                "@pytest.mark.hyperhttp_mock(assert_all_called=False) if that is expected)",
                pytrace=False,
            )
