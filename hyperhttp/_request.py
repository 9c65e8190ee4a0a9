"""Request: method, URL, fields and body, ready to be sent, and how its body is framed.

A request's content is classified (``classify``) and its framing decided (``frame_body``) here
and nowhere else. What is sent is ``request.fields``: the authority, a block of fields shared by
many requests (a Client's defaults, checked once per Client) and the request's own fields, as
``(bytes, bytes)`` pairs; each connection encodes them in its own wire form. ``request.headers``
turns them into a Headers object only when someone asks, and from then on that object is what is
sent, so changes to it are live, and checked again (fields and framing) when the request is sent.
"""

from __future__ import annotations

from typing import IO, Any, AsyncIterable, Iterable, Union

from ._compat import json_loads
from ._headers import Headers, HeadersInput, check_header_name, check_header_value
from ._multipart import MultipartEncoder, stream_for
from ._timeout import Timeout
from ._url import URL
from .exceptions import LocalProtocolError, RequestNotRead
from .proto.base import EMPTY_BLOCK, FieldBlock, Header

__all__ = [
    "METHODS_WITH_BODY",
    "Request",
    "RequestContent",
    "classify",
    "frame_body",
    "method_bytes",
]

RequestContent = Union[
    bytes,
    bytearray,
    memoryview,
    str,
    "MultipartEncoder",
    IO[bytes],
    Iterable[bytes],
    AsyncIterable[bytes],
]
Body = Union[bytes, bytearray, memoryview]
Stream = Union[Iterable[bytes], AsyncIterable[bytes]]

_DEFAULT_TIMEOUT = Timeout(30.0)
# RFC 9110 section 9.3: methods whose requests carry content (so an empty one says Content-Length: 0).
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
_METHOD_BYTES: dict[str, bytes] = {}
_CHUNKED: Header = (b"Transfer-Encoding", b"chunked")
_EMPTY: Header = (b"Content-Length", b"0")


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


def classify(content: Any) -> tuple[Body | None, Stream | None, int | None, str | None]:
    """What ``content=`` is: ``(body, stream, stream_size, implied_type)``. A str is UTF-8
    bytes; a MultipartEncoder or an open file is a stream of known size (and a file's stream
    can be sent again); any other iterable of bytes a stream of unknown size."""
    if content is None:
        return None, None, None, None
    if isinstance(content, (bytes, bytearray, memoryview)):
        return content, None, None, None
    if isinstance(content, str):
        return content.encode("utf-8"), None, None, None
    special = stream_for(content)
    if special is not None:
        stream, size, implied_type = special
        return None, stream, size, implied_type
    if hasattr(content, "__aiter__") or hasattr(content, "__iter__"):
        return None, content, None, None
    raise TypeError(
        f"content must be bytes, a file or an iterable of bytes, not {type(content).__name__}"
    )


def _size(content: Body) -> int:
    return content.nbytes if isinstance(content, memoryview) else len(content)


def frame_body(
    method: str,
    content: Body | None,
    stream: object,
    stream_size: int | None,
    headers: Headers | None = None,
) -> tuple[bool, int | None, Header | None]:
    """How the body goes on the wire (RFC 9112 section 6): ``(chunked, stream_length, field)``,
    ``field`` being the framing field to add (None: the caller's fields frame it, or it needs
    none).

    The client owns framing. Without fields of the caller's (``headers`` None, or holding
    neither) the size decides: Content-Length when it is known (``stream_size`` for a stream: a
    file, a multipart body), else chunked. A caller's Content-Length must agree with a body of
    known size (a disagreement would send the rest of the body as a second request: request
    smuggling), a caller's Transfer-Encoding must end in chunked, which is then applied, and
    the two never go together; any of these is a LocalProtocolError before anything is sent.
    ``stream_length`` is the length a stream must then have.
    """
    if headers is not None:
        codings = headers.get_list("transfer-encoding")
        lengths = headers.get_list("content-length")
        if codings and lengths:
            raise LocalProtocolError(
                "a request cannot have both Content-Length and Transfer-Encoding"
            )
        if codings:
            names = [c.strip().lower() for value in codings for c in value.split(",") if c.strip()]
            if not names or names[-1] != "chunked" or names.count("chunked") > 1:
                raise LocalProtocolError(
                    f"Transfer-Encoding {', '.join(codings)!r}: a request's transfer codings "
                    "must end with chunked, once (RFC 9112 section 6.1)"
                )
            return True, None, None
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
            return False, size if stream is not None else None, None
    if content is not None:
        return False, None, (b"Content-Length", b"%d" % _size(content))
    if stream is not None:
        if stream_size is not None:
            return False, stream_size, (b"Content-Length", b"%d" % stream_size)
        return True, None, _CHUNKED
    if method in METHODS_WITH_BODY:
        return False, None, _EMPTY
    return False, None, None


class Request:
    """One HTTP request: method, URL, headers and body, ready to be sent.

    The Client builds them (``Client.build_request``); one made by hand is checked at once.
    A Host field is added from the URL unless ``headers`` has one.

    :param method: the request method; upper-cased.
    :param url: the absolute URL.
    :param headers: the fields, in any form ``Headers`` takes.
    :param content: the body: bytes, str (sent as UTF-8), a file, an iterable of bytes or a
        ``MultipartEncoder``.
    :param timeout: the timeouts; None for 30 seconds per phase.
    :raises LocalProtocolError: when the method or a field is invalid, or the fields frame the
        body wrongly.
    :raises InvalidURL: when ``url`` is a str that is not a valid URL.
    :raises TypeError: when ``content`` is of a type that cannot be sent.
    """

    __slots__ = (
        "method",
        "method_bytes",
        "url",
        "fields",
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
    fields: tuple[bytes, FieldBlock, list[Header]]
    _headers: Headers | None
    content: Body | None
    stream: Stream | None
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
        self.content, self.stream, self.stream_size, implied_type = classify(content)
        self.timeout = timeout if timeout is not None else _DEFAULT_TIMEOUT
        self.extensions = None
        merged = Headers(headers)
        if implied_type is not None and "content-type" not in merged:
            merged["Content-Type"] = implied_type
        if "host" not in merged:
            merged._items.insert(0, ("host", "Host", self.url.host_header.decode("ascii")))
        self._headers = merged
        self.check()

    @classmethod
    def prepared(
        cls,
        method: str,
        method_b: bytes,
        url: URL,
        block: FieldBlock,
        own: list[Header],
        content: Body | None,
        stream: Stream | None,
        timeout: Timeout,
        chunked: bool = False,
        stream_length: int | None = None,
        stream_size: int | None = None,
    ) -> Request:
        """Build a request whose fields the Client has already checked, without checking them.

        For the Client's use: ``block`` holds its defaults and ``own`` the framing and
        Content-Type it added; the body is framed by ``frame_body``.

        :param method: the request method, upper case.
        :param method_b: the method as bytes.
        :param url: the absolute URL.
        :param block: the Client's default fields, checked once.
        :param own: the fields of this request, checked.
        :param content: the body in memory, or None.
        :param stream: the body as a stream, or None.
        :param timeout: the timeouts.
        :param chunked: whether the body is sent chunked.
        :param stream_length: the length the stream must have, when it is framed by one.
        :param stream_size: the size of the stream, when known.
        """
        request = cls.__new__(cls)
        request.method = method
        request.method_bytes = method_b
        request.url = url
        request.fields = (url.host_header, block, own)
        request._headers = None
        request.content = content
        request.stream = stream
        request.chunked = chunked
        request.stream_length = stream_length
        request.stream_size = stream_size
        request.timeout = timeout
        request.extensions = None
        return request

    @property
    def headers(self) -> Headers:
        """The fields to be sent (Host and framing included); changes to it are what is sent."""
        headers = self._headers
        if headers is None:
            host, block, own = self.fields
            headers = self._headers = Headers.from_raw([(b"Host", host), *block.pairs, *own])
        return headers

    def check(self) -> None:
        """Check what ``headers`` holds now and make it the fields to be sent, framing included.

        Needed once ``headers`` has been handed out (to a hook, an auth flow, the cookie jar); the
        transports call it before sending. Without ``headers`` handed out it does nothing.

        :raises LocalProtocolError: when a field is invalid, or the fields frame the body wrongly
            (see ``frame_body``).
        """
        headers = self._headers
        if headers is None:
            return
        self.chunked, self.stream_length, field = frame_body(
            self.method, self.content, self.stream, self.stream_size, headers
        )
        if field is not None:
            headers.add(field[0].decode("ascii"), field[1].decode("ascii"))
        host: bytes | None = None
        own: list[Header] = []
        for name, value in headers.raw:
            check_header_name(name)
            check_header_value(name, value)
            value = value.strip(b" \t")
            if host is None and name.lower() == b"host":
                host = value
            else:
                own.append((name, value))
        self.fields = (host if host is not None else self.url.host_header, EMPTY_BLOCK, own)

    def read(self) -> bytes:
        """Return the body, when it is in memory (``b""`` for none).

        A mock handler's request always has it in memory: see ``hyperhttp.mock``.

        :raises RequestNotRead: when the body is a stream, which only sending it reads.
        """
        content = self.content
        if content is not None:
            return bytes(content)
        if self.stream is None:
            return b""
        raise RequestNotRead("the body is a stream, read only by sending it")

    def as_received(self, body: bytes) -> Request:
        """Return a copy of this request as a server received it.

        The copy has the fields as sent and ``body`` as its content; later changes to either
        request do not show in the other.

        :param body: the body as received.
        """
        host, block, own = self.fields
        copy = Request.prepared(
            self.method,
            self.method_bytes,
            self.url,
            block,
            list(own),
            body,
            None,
            self.timeout,
            self.chunked,
            self.stream_length,
            self.stream_size,
        )
        copy.fields = (host, block, copy.fields[2])
        if self.extensions:
            copy.extensions = dict(self.extensions)
        return copy

    def json(self) -> Any:
        """Return the body parsed as JSON (see ``read``).

        :raises RequestNotRead: when the body is a stream, which only sending it reads.
        :raises ValueError: when the body is not valid JSON.
        """
        return json_loads(self.read())

    @property
    def replayable(self) -> bool:
        """Whether the body can be sent again (a consumed iterator cannot)."""
        stream = self.stream
        return stream is None or bool(getattr(stream, "replayable", False))

    def __repr__(self) -> str:
        return f"<Request({self.method!r}, {str(self.url)!r})>"
