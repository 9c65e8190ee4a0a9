"""Request: method, URL, fields and body, ready to be sent, and how its body is framed.

A Request built by the Client carries its header block already encoded (the Client's defaults are
encoded once, per Client); ``request.headers`` turns it into a Headers object only when someone
asks, and from then on that object is what is sent, so changes to it are live, and checked again
(fields and framing) when the request is sent.
"""

from __future__ import annotations

from typing import Any, AsyncIterable, Iterable, Union

from ._headers import Headers, HeadersInput, encode_header_lines
from ._multipart import stream_for
from ._timeout import Timeout
from ._url import URL
from .exceptions import LocalProtocolError

__all__ = [
    "METHODS_WITH_BODY",
    "Request",
    "RequestContent",
    "body_framing",
    "frame_body",
    "method_bytes",
]

RequestContent = Union[bytes, bytearray, memoryview, str, Iterable[bytes], AsyncIterable[bytes]]

_DEFAULT_TIMEOUT = Timeout(30.0)
# RFC 9110 section 9.3: methods whose requests carry content (so an empty one says Content-Length: 0).
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
_METHOD_BYTES: dict[str, bytes] = {}


def method_bytes(method: str) -> bytes:
    """The method as sent, validated as a token (RFC 9110 section 9.1) once per distinct method."""
    encoded = _METHOD_BYTES.get(method)
    if encoded is None:
        if not method or not all(c in _TOKEN_CHARS for c in method):
            raise LocalProtocolError(f"invalid HTTP method {method!r}")
        encoded = method.encode("ascii")
        if len(_METHOD_BYTES) < 256:
            _METHOD_BYTES[method] = encoded
    return encoded


def body_framing(
    method: str,
    content: bytes | bytearray | memoryview | None,
    stream: object,
    length: int | None = None,
) -> bytes:
    """The framing field for a body (RFC 9112 section 6): Content-Length when the size is known
    (``length`` for a stream), else chunked."""
    if content is not None:
        return b"Content-Length: %d\r\n" % _size(content)
    if stream is not None:
        if length is not None:
            return b"Content-Length: %d\r\n" % length
        return b"Transfer-Encoding: chunked\r\n"
    if method in METHODS_WITH_BODY:
        return b"Content-Length: 0\r\n"
    return b""


def _size(content: bytes | bytearray | memoryview) -> int:
    return content.nbytes if isinstance(content, memoryview) else len(content)


def frame_body(
    method: str,
    content: bytes | bytearray | memoryview | None,
    stream: object,
    stream_size: int | None,
    headers: Headers,
) -> tuple[bool, int | None]:
    """How the body goes on the wire (RFC 9112 section 6): ``(chunked, stream_length)``.

    The client owns framing. A caller's Content-Length must agree with a body of known size (a
    disagreement would send the rest of the body as a second request: request smuggling), a
    caller's Transfer-Encoding must end in chunked, which is then applied, and the two never go
    together; any of these is a LocalProtocolError before anything is sent. Without either field
    the one for the body is added to ``headers``. ``stream_size`` is a stream's own size when it
    is known (a file, a multipart body); ``stream_length`` is the length a stream must then have.
    """
    codings = headers.get_list("transfer-encoding")
    lengths = headers.get_list("content-length")
    if codings and lengths:
        raise LocalProtocolError("a request cannot have both Content-Length and Transfer-Encoding")
    if codings:
        names = [c.strip().lower() for value in codings for c in value.split(",") if c.strip()]
        if not names or names[-1] != "chunked" or names.count("chunked") > 1:
            raise LocalProtocolError(
                f"Transfer-Encoding {', '.join(codings)!r}: a request's transfer codings must "
                "end with chunked, once (RFC 9112 section 6.1)"
            )
        return True, None
    if lengths:
        values = {value.strip() for raw in lengths for value in raw.split(",")}
        declared = values.pop() if len(values) == 1 else ""
        if not declared.isdigit():
            raise LocalProtocolError(f"invalid Content-Length {', '.join(lengths)!r}")
        size = int(declared)
        if content is not None:
            known: int | None = _size(content)
        else:
            known = stream_size if stream is not None else 0
        if known is not None and known != size:
            raise LocalProtocolError(
                f"Content-Length {size} disagrees with the body's {known} bytes: the client "
                "frames the body itself (leave Content-Length out, or make it match)"
            )
        if len(lengths) > 1 or lengths[0].strip() != declared:
            headers["Content-Length"] = declared  # one field, one value
        return False, size if stream is not None else None
    framing = body_framing(method, content, stream, stream_size)
    if framing:
        name, _, value = framing.rstrip(b"\r\n").partition(b": ")
        headers.add(name.decode("ascii"), value.decode("ascii"))
    return stream is not None and stream_size is None, stream_size


class Request:
    """One HTTP request: method, URL, headers and body, ready to be sent."""

    __slots__ = (
        "method",
        "method_bytes",
        "url",
        "_lines",
        "_headers",
        "content",
        "stream",
        "chunked",
        "stream_length",
        "stream_size",
        "timeout",
        "extensions",
    )

    method: str
    method_bytes: bytes
    url: URL
    _lines: bytes
    _headers: Headers | None
    content: bytes | bytearray | memoryview | None
    stream: Iterable[bytes] | AsyncIterable[bytes] | None
    chunked: bool
    stream_length: int | None
    stream_size: int | None
    timeout: Timeout
    extensions: dict[str, Any] | None

    def __init__(
        self,
        method: str,
        url: URL | str,
        *,
        headers: HeadersInput = None,
        content: RequestContent | None = None,
        timeout: Timeout | None = None,
    ) -> None:
        self.method = method.upper()
        self.method_bytes = method_bytes(self.method)
        self.url = url if isinstance(url, URL) else URL(url)
        self.content = None
        self.stream = None
        length: int | None = None
        implied_type: str | None = None
        if isinstance(content, str):
            content = content.encode("utf-8")
        if isinstance(content, (bytes, bytearray, memoryview)):
            self.content = content
        elif content is not None:
            special = stream_for(content)
            if special is not None:
                self.stream, length, implied_type = special
            else:
                self.stream = content
        self.timeout = timeout if timeout is not None else _DEFAULT_TIMEOUT
        self.extensions = None
        merged = Headers(headers)
        if implied_type is not None and "content-type" not in merged:
            merged["Content-Type"] = implied_type
        if "host" not in merged:
            merged._items.insert(0, ("host", "Host", self.url.host_header.decode("ascii")))
        self.stream_size = length
        self.chunked, self.stream_length = frame_body(
            self.method, self.content, self.stream, length, merged
        )
        self._headers = merged
        self._lines = b""

    @classmethod
    def prepared(
        cls,
        method: str,
        method_b: bytes,
        url: URL,
        lines: bytes,
        content: bytes | bytearray | memoryview | None,
        stream: Iterable[bytes] | AsyncIterable[bytes] | None,
        timeout: Timeout,
        stream_length: int | None = None,
        chunked: bool | None = None,
        stream_size: int | None = None,
    ) -> Request:
        """A request whose header block the Client has already encoded and validated.

        A ``stream`` with a ``stream_length`` is sent with that Content-Length (which its lines
        must carry), else chunked; ``chunked`` says so for any body when the caller asked for it
        (a Transfer-Encoding of the caller's)."""
        request = cls.__new__(cls)
        request.method = method
        request.method_bytes = method_b
        request.url = url
        request._lines = lines
        request._headers = None
        request.content = content
        request.stream = stream
        if chunked is None:
            chunked = stream is not None and stream_length is None
        request.chunked = chunked
        request.stream_length = stream_length
        request.stream_size = stream_length if stream_size is None else stream_size
        request.timeout = timeout
        request.extensions = None
        return request

    @property
    def headers(self) -> Headers:
        """The fields to be sent (Host and framing included); changes to it are what is sent."""
        headers = self._headers
        if headers is None:
            raw = []
            for line in self._lines.split(b"\r\n"):
                if line:
                    name, _, value = line.partition(b": ")
                    raw.append((name, value))
            headers = self._headers = Headers.from_raw(raw)
        return headers

    def header_lines(self) -> bytes:
        """Every field as ``Name: value\\r\\n`` lines, validated (the request line not included).

        Once ``headers`` has been handed out (to a hook, an auth flow, the cookie jar), what it
        holds now is checked again, framing included: see ``frame_body``."""
        headers = self._headers
        if headers is None:
            return self._lines
        self.chunked, self.stream_length = frame_body(
            self.method, self.content, self.stream, self.stream_size, headers
        )
        return encode_header_lines(headers.raw)

    @property
    def replayable(self) -> bool:
        """Whether the body can be sent again (a consumed iterator cannot)."""
        stream = self.stream
        return stream is None or bool(getattr(stream, "replayable", False))

    def __repr__(self) -> str:
        return f"<Request({self.method!r}, {str(self.url)!r})>"
