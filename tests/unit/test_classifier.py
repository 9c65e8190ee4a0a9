"""ErrorClassifier: every hyperhttp exception, the failure statuses and retryability; pure logic."""

from __future__ import annotations

import asyncio
import inspect

import pytest

import hyperhttp
import hyperhttp.errors.classifier as classifier_module
from hyperhttp import exceptions
from hyperhttp.errors.classifier import ErrorClassifier

NINE = ("TRANSIENT", "TIMEOUT", "PROTOCOL", "CONNECTION", "TLS", "DNS", "SERVER", "CLIENT", "FATAL")

# Every exception class of hyperhttp.exceptions, with its category (HTTPStatusError: by status).
EXPECTED = {
    exceptions.HyperHTTPError: "FATAL",
    exceptions.TransportError: "FATAL",
    exceptions.ConnectError: "CONNECTION",
    exceptions.ReadError: "TRANSIENT",
    exceptions.WriteError: "TRANSIENT",
    exceptions.TLSError: "TLS",
    exceptions.ProxyError: "CONNECTION",
    exceptions.DNSError: "DNS",
    exceptions.ProtocolError: "PROTOCOL",
    exceptions.RemoteProtocolError: "PROTOCOL",
    exceptions.StreamNotProcessed: "TRANSIENT",
    exceptions.LocalProtocolError: "FATAL",
    exceptions.TimeoutException: "TIMEOUT",
    exceptions.ConnectTimeout: "TIMEOUT",
    exceptions.TLSHandshakeTimeout: "TIMEOUT",
    exceptions.ReadTimeout: "TIMEOUT",
    exceptions.WriteTimeout: "TIMEOUT",
    exceptions.PoolTimeout: "TIMEOUT",
    exceptions.InvalidURL: "FATAL",
    exceptions.HTTPStatusError: "SERVER",  # built with a 503 below
    exceptions.TooManyRedirects: "FATAL",
    exceptions.StreamError: "FATAL",
    exceptions.StreamConsumed: "FATAL",
    exceptions.ResponseClosed: "FATAL",
    exceptions.ResponseNotRead: "FATAL",
    exceptions.RequestNotRead: "FATAL",
    exceptions.ResponseTooLarge: "FATAL",
    exceptions.DecompressionError: "FATAL",
    exceptions.CircuitBreakerOpen: "FATAL",
    exceptions.PoolClosed: "FATAL",
}


def status_error(status: int) -> exceptions.HTTPStatusError:
    request = hyperhttp.Request("GET", "https://example.com/")
    response = hyperhttp.Response(status, request=request)
    return exceptions.HTTPStatusError(
        f"{status} for https://example.com/", request=request, response=response
    )


def make(error_type: type[BaseException]) -> BaseException:
    if error_type is exceptions.HTTPStatusError:
        return status_error(503)
    if error_type is exceptions.CircuitBreakerOpen:
        return exceptions.CircuitBreakerOpen("example.com", 12.5)
    return error_type("boom")


def test_the_table_covers_every_exception_class_of_hyperhttp() -> None:
    defined = {
        value
        for value in vars(exceptions).values()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and not issubclass(value, Warning)  # InsecureRequestWarning is never raised
        and value.__module__ == exceptions.__name__
    }
    assert defined == set(EXPECTED)


@pytest.mark.parametrize(
    ("error_type", "category"), list(EXPECTED.items()), ids=[t.__name__ for t in EXPECTED]
)
def test_each_exception_class_maps_to_its_category(
    error_type: type[BaseException], category: str
) -> None:
    assert ErrorClassifier.categorize(make(error_type)) == category


def test_tls_handshake_timeout_is_a_timeout_though_also_a_tls_error() -> None:
    error = exceptions.TLSHandshakeTimeout("handshake took too long")
    assert isinstance(error, exceptions.TLSError)
    assert ErrorClassifier.categorize(error) == "TIMEOUT"


def test_stream_not_processed_is_transient_though_a_remote_protocol_error() -> None:
    error = exceptions.StreamNotProcessed("REFUSED_STREAM", progress=True)
    assert isinstance(error, exceptions.RemoteProtocolError)
    assert ErrorClassifier.categorize(error) == "TRANSIENT"


def test_subclasses_are_classified_like_their_hyperhttp_base() -> None:
    class ResetByPeer(exceptions.ReadError):
        pass

    class SlowTLS(exceptions.TLSError, exceptions.ReadTimeout):
        pass

    class RefusedByProxy(exceptions.ProxyError, exceptions.ConnectError):
        pass

    assert ErrorClassifier.categorize(ResetByPeer("reset")) == "TRANSIENT"
    assert ErrorClassifier.categorize(SlowTLS("slow")) == "TIMEOUT"  # every timeout is TIMEOUT
    assert ErrorClassifier.categorize(RefusedByProxy("407")) == "CONNECTION"


@pytest.mark.parametrize(
    "error",
    [ValueError("x"), RuntimeError("x"), OSError("x"), TimeoutError(), asyncio.CancelledError()],
    ids=lambda error: type(error).__name__,
)
def test_foreign_exceptions_are_fatal(error: BaseException) -> None:
    assert ErrorClassifier.categorize(error) == "FATAL"


@pytest.mark.parametrize(
    ("status", "category"),
    [
        (400, "CLIENT"),
        (401, "CLIENT"),
        (404, "CLIENT"),
        (408, "TRANSIENT"),
        (429, "TRANSIENT"),
        (499, "CLIENT"),
        (500, "SERVER"),
        (502, "SERVER"),
        (503, "SERVER"),
        (504, "SERVER"),
        (599, "SERVER"),
        (600, "SERVER"),  # outside 100-599: treated as a 5xx (RFC 9110 section 15)
        (999, "SERVER"),
    ],
)
def test_a_response_without_error_is_classified_by_status(status: int, category: str) -> None:
    assert ErrorClassifier.categorize(None, hyperhttp.Response(status)) == category
    assert ErrorClassifier.categorize(None, response=hyperhttp.Response(status)) == category


@pytest.mark.parametrize(
    ("status", "category"),
    [(400, "CLIENT"), (404, "CLIENT"), (408, "TRANSIENT"), (429, "TRANSIENT"), (500, "SERVER")]
    + [(502, "SERVER"), (503, "SERVER"), (504, "SERVER")],
)
def test_http_status_error_is_classified_by_its_response(status: int, category: str) -> None:
    assert ErrorClassifier.categorize(status_error(status)) == category


def test_http_status_error_from_raise_for_status() -> None:
    request = hyperhttp.Request("GET", "https://example.com/")
    response = hyperhttp.Response(503, request=request)
    with pytest.raises(exceptions.HTTPStatusError) as caught:
        response.raise_for_status()
    assert caught.value.response is response
    assert ErrorClassifier.categorize(caught.value) == "SERVER"


def test_the_error_wins_over_the_response() -> None:
    ok = hyperhttp.Response(200)
    assert ErrorClassifier.categorize(exceptions.ReadTimeout("slow"), ok) == "TIMEOUT"
    assert ErrorClassifier.categorize(status_error(404), hyperhttp.Response(503)) == "CLIENT"
    assert ErrorClassifier.categorize(ValueError("x"), hyperhttp.Response(503)) == "FATAL"


@pytest.mark.parametrize("status", [100, 101, 200, 204, 301, 304, 399])
def test_a_successful_response_without_error_is_refused(status: int) -> None:
    with pytest.raises(ValueError, match=str(status)):
        ErrorClassifier.categorize(None, hyperhttp.Response(status))


def test_nothing_to_classify_is_refused() -> None:
    with pytest.raises(ValueError, match="nothing to classify"):
        ErrorClassifier.categorize(None)


@pytest.mark.parametrize(
    ("category", "retryable"),
    [
        ("TRANSIENT", True),
        ("TIMEOUT", True),
        ("SERVER", True),
        ("CONNECTION", True),
        ("DNS", True),
        ("PROTOCOL", False),
        ("TLS", False),
        ("CLIENT", False),
        ("FATAL", False),
    ],
)
def test_is_retryable(category: str, retryable: bool) -> None:
    assert ErrorClassifier.is_retryable(category) is retryable


@pytest.mark.parametrize("category", ["transient", "RETRY", "", "SERVER "])
def test_an_unknown_category_is_refused(category: str) -> None:
    with pytest.raises(ValueError, match="unknown error category"):
        ErrorClassifier.is_retryable(category)


def test_categories_are_the_nine_names_as_class_and_module_constants() -> None:
    assert ErrorClassifier.categories() == NINE
    for name in NINE:
        assert getattr(ErrorClassifier, name) == name
        assert getattr(classifier_module, name) == name
        assert name in classifier_module.__all__


def test_every_category_is_reachable() -> None:
    reached = {ErrorClassifier.categorize(make(error_type)) for error_type in EXPECTED}
    reached.add(ErrorClassifier.categorize(None, hyperhttp.Response(404)))
    assert reached == set(NINE)


def test_works_on_an_instance_too() -> None:
    classifier = ErrorClassifier()
    assert classifier.categorize(exceptions.DNSError("no such host")) == "DNS"
    assert classifier.is_retryable("DNS") is True
