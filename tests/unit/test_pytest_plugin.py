"""The pytest plugin's own rules, run in an inner pytest session: what fails a test at teardown,
what a marker changes, and that it is registered through the ``pytest11`` entry point."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]

_HEADER = """
import asyncio
import pytest
import hyperhttp
from hyperhttp.mock import MockResponse


def get(url):
    async def go():
        async with hyperhttp.Client() as client:
            return (await client.get(url)).status_code
    return asyncio.run(go())
"""


@pytest.fixture(autouse=True)
def _inner_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("hyperhttp") == "hyperhttp.pytest_plugin"


def test_a_route_never_called_fails_the_test_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        _HEADER
        + """
def test_it(hyperhttp_mock):
    hyperhttp_mock.get("http://api.test/a", 200)
    hyperhttp_mock.post("http://api.test/b", 201)
    assert get("http://api.test/a") == 200
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*routes no request reached:*", "*<Route POST http://api.test:80/b: called 0 times>*"]
    )


def test_an_unmatched_request_swallowed_by_the_code_still_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        _HEADER
        + """
def test_it(hyperhttp_mock):
    try:
        get("http://api.test/missing")
    except Exception:
        pass  # code under test that hides every error
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*requests no route matched:*", "*no route matches GET http://api.test/missing*"]
    )


def test_a_failing_test_is_not_buried_under_teardown_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        _HEADER
        + """
def test_it(hyperhttp_mock):
    hyperhttp_mock.get("http://api.test/a", 200)
    assert False, "the test's own failure"
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.no_fnmatch_line("*routes no request reached*")


def test_the_marker_turns_the_check_off_and_lets_hosts_through(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        _HEADER
        + """
import socket

@pytest.mark.hyperhttp_mock(assert_all_called=False, non_mocked_hosts=["127.0.0.1"])
def test_it(hyperhttp_mock):
    hyperhttp_mock.get("http://api.test/never", 200)
    with socket.socket() as sock:  # a port nothing listens on: the real network refuses
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(hyperhttp.ConnectError):
        get(f"http://127.0.0.1:{port}/")
    assert hyperhttp_mock.calls == []
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_without_the_fixture_clients_use_the_network(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        _HEADER
        + """
def test_it():
    assert hyperhttp.net.pool.ConnectionPool.handle_async_request.__module__ == "hyperhttp.net.pool"
"""
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
