"""multipart/form-data bodies (RFC 7578), streamed: files are read from disk chunk by chunk.

``MultipartEncoder(fields, files=None, *, boundary=None, chunk_size=1 MiB)`` turns named values
into one body. ``fields`` (a mapping, or ``(name, value)`` pairs to repeat a name) takes the 2.x
shapes, each decided by the value's type:

- ``str``, a number or a bool: a text field; ``bytes`` (bytearray, memoryview): a part without a
  filename; a ``list``: the name repeated for each item;
- ``(filename, content)`` or ``(filename, content, content_type)``: a file part (``filename``
  None: none is sent; ``content`` may be bytes, str text, a path, an open file or an async
  iterable); a ``pathlib.Path`` (any ``os.PathLike``): a file part streamed from disk; an open
  binary file: a file part read from its position; a ``MultipartFile``: a file part spelled out;
- an async iterable of bytes: a part without a filename, of unknown size.

``files`` is the shape the Client's ``files=`` builds on: every value there is a file part, a
bare ``str`` is a path and bare ``bytes`` are named "upload". A file part's filename defaults to
the path's or open file's base name ("upload" otherwise); its content type is guessed from the
filename (``application/octet-stream`` when nothing fits).

The body's size is known up front whenever every part's is (bytes, paths, regular files, a
``MultipartFile`` with ``size=``), so the request carries a Content-Length and no chunked framing;
otherwise it is sent chunked. ``async for`` yields the body: part heads (small ``bytes``), file
contents in chunks of ``chunk_size`` (read in a worker thread one chunk ahead), async contents as
they come, and the closing boundary. Sync iteration and ``to_bytes()`` work unless a part is an
async iterable, which can also be sent only once (the encoder is then not ``replayable``).

Field names and filenames are written as UTF-8 in quoted strings, with ``"``, CR, LF and the other
control characters percent-encoded (RFC 7578 section 4.2, as browsers do), so no value can break
out of its header.
"""

from __future__ import annotations

import mimetypes
import os
import secrets
from collections.abc import AsyncIterable, Iterable, Iterator, Mapping
from contextlib import aclosing
from typing import IO, Any, AsyncGenerator, AsyncIterator, Union

from ._files import (
    DEFAULT_CHUNK,
    file_body,
    file_size,
    read_ahead,
    read_chunks,
    seekable,
)
from .exceptions import StreamConsumed

__all__ = ["MultipartEncoder", "MultipartFile"]

_BCHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ")
_BYTES = (bytes, bytearray, memoryview)
Piece = Union[bytes, bytearray, memoryview]  # what iterating a body yields


class MultipartFile:
    """One file part, spelled out: exactly one of ``content``, ``path`` or ``file``.

    ``content`` is bytes, str (sent as UTF-8) or an async iterable of bytes; an async iterable's
    size is unknown (the body goes chunked) unless ``size`` gives it, and it can be sent once.
    ``filename`` defaults to the path's or file's base name ("upload" otherwise);
    ``content_type`` is guessed from the filename (``application/octet-stream`` when nothing
    fits); ``size`` may also be given for a file object whose size cannot be found, so the body
    can still carry a Content-Length.

    :param content: the part's content: bytes, str or an async iterable of bytes.
    :param path: a file to stream the content from.
    :param file: an open binary file to read the content from, from its current position.
    :param filename: the filename sent; None for the default.
    :param content_type: the part's Content-Type; None to guess it from the filename.
    :param size: the content's size in bytes, when it cannot be found otherwise.
    :raises ValueError: unless exactly one of ``content``, ``path`` and ``file`` is given.
    """

    __slots__ = ("content", "path", "file", "filename", "content_type", "size")

    def __init__(
        self,
        content: bytes | bytearray | memoryview | str | AsyncIterable[Piece] | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        file: IO[bytes] | None = None,
        filename: str | None = None,
        content_type: str | None = None,
        size: int | None = None,
    ) -> None:
        if sum(x is not None for x in (content, path, file)) != 1:
            raise ValueError("MultipartFile takes exactly one of content=, path= and file=")
        self.content = content
        self.path = path
        self.file = file
        self.filename = filename
        self.content_type = content_type
        self.size = size


FileSpec = Union[
    bytes,
    bytearray,
    memoryview,
    str,
    os.PathLike[str],
    IO[bytes],
    MultipartFile,
    AsyncIterable[Piece],
    tuple[Any, ...],
]
# Values are Any: a dict literal mixing shapes would not match a union of the shapes, and each
# value is checked when the encoder is built (ValueError, TypeError).
Fields = Union[Mapping[str, Any], Iterable[tuple[str, Any]]]


def _escape(value: str) -> bytes:
    """A quoted-string body for a name or filename: UTF-8, with what would end it escaped."""
    out = []
    for char in value:
        code = ord(char)
        if char == '"' or code < 0x20 or code == 0x7F:
            out.append(f"%{code:02X}")
        else:
            out.append(char)
    return "".join(out).encode("utf-8")


def _check_boundary(boundary: str) -> None:
    if not 1 <= len(boundary) <= 70 or boundary.endswith(" ") or set(boundary) - _BCHARS:
        raise ValueError(f"invalid multipart boundary {boundary!r} (RFC 2046 section 5.1.1)")


class _Part:
    """A part: its head (boundary line and fields), then its content from one source: bytes in
    memory, a path, an open file or an async iterable (``stream``, which can be read once)."""

    __slots__ = ("name", "head", "data", "path", "file", "stream", "size", "start", "consumed")

    def __init__(
        self,
        name: str,
        head: bytes,
        *,
        data: bytes | memoryview | None = None,
        path: str | None = None,
        file: IO[bytes] | None = None,
        stream: AsyncIterable[Any] | None = None,
        size: int | None = None,
    ) -> None:
        self.name = name
        self.head = head
        self.data = data
        self.path = path
        self.file = file
        self.stream = stream
        self.size = size
        self.start = 0
        self.consumed = False
        if file is not None:
            try:
                self.start = file.tell()
            except (OSError, AttributeError, ValueError):
                self.start = -1  # not seekable: can be sent once

    def _rewound(self) -> IO[bytes]:
        """The part's open file, at the position it had when the part was made (if it can seek)."""
        file = self.file
        assert file is not None
        if self.start > 0 or (self.start == 0 and seekable(file)):
            file.seek(self.start)
        return file

    def chunks(self, chunk_size: int) -> Iterator[bytes | memoryview]:
        if self.data is not None:
            yield self.data
            return
        if self.path is not None:
            with open(self.path, "rb") as handle:
                yield from read_chunks(handle, chunk_size)
            return
        yield from read_chunks(self._rewound(), chunk_size)

    async def achunks(self, chunk_size: int) -> AsyncGenerator[Piece, None]:
        """Like ``chunks``, but a file larger than one chunk is read in a worker thread, one chunk
        ahead (see ``read_ahead``), and an async iterable is streamed (once)."""
        if self.stream is None and (
            self.data is not None or (self.size is not None and self.size <= chunk_size)
        ):
            for held in self.chunks(chunk_size):
                yield held
            return
        source: AsyncGenerator[Piece, None]
        if self.stream is not None:
            source = self._streamed()
        elif self.path is not None:
            source = read_ahead(open(self.path, "rb"), chunk_size, owned=True)
        else:
            source = read_ahead(self._rewound(), chunk_size, owned=False)
        async with aclosing(source) as pieces:  # closed now if the body stops early
            async for piece in pieces:
                yield piece

    async def _streamed(self) -> AsyncGenerator[Piece, None]:
        """The async iterable's pieces (empty ones dropped); its iterator is closed at the end, so
        a generator's ``finally`` runs now even when the send stops early."""
        if self.consumed:
            raise _consumed(self.name)
        self.consumed = True
        assert self.stream is not None
        iterator = self.stream.__aiter__()
        if getattr(iterator, "ag_frame", True) is None:  # an async generator that has finished
            raise _consumed(self.name)
        try:
            async for piece in iterator:
                if not isinstance(piece, _BYTES):
                    raise TypeError(
                        f"multipart part {self.name!r}: an async iterable must yield bytes, "
                        f"not {type(piece).__name__}"
                    )
                if piece:
                    yield piece
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()


def _consumed(name: str) -> StreamConsumed:
    return StreamConsumed(
        f"multipart part {name!r} comes from an async iterable that was already read: it cannot "
        "be sent again (build a new MultipartEncoder with a fresh iterable)"
    )


class MultipartEncoder:
    """A multipart/form-data body built from named fields and files.

    ``fields`` takes the 2.x shapes (see the module) and ``files`` file parts only, as the
    Client's ``files=`` takes them. Both are a mapping or ``(name, value)`` pairs (to repeat a
    name); a name is a non-empty ``str``. Pass the encoder as ``content=`` and the Client sets
    Content-Type (with the boundary) and Content-Length itself; ``files=`` and ``data=`` on a
    request build one for you.

    :param fields: the fields, each a text field, a part without a filename or a file part,
        decided by its value's type.
    :param files: the file parts; a bare ``str`` is a path.
    :param boundary: the boundary (1 to 70 characters of RFC 2046); None for a random one.
    :param chunk_size: the size in bytes of the pieces file contents are read and sent in.
    :raises ValueError: for an empty name, a file tuple of the wrong length, an invalid
        boundary or content type, or a ``chunk_size`` that is not positive.
    :raises TypeError: for a value of a type it cannot send, or ``fields`` or ``files`` that
        are not a mapping or pairs.
    :raises FileNotFoundError: when a file part's path cannot be read.
    """

    def __init__(
        self,
        fields: Fields | None = None,
        files: Fields | None = None,
        *,
        boundary: str | None = None,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        if boundary is None:
            boundary = secrets.token_hex(16)
        else:
            _check_boundary(boundary)
        self.boundary = boundary
        self.chunk_size = chunk_size
        self._delimiter = b"--" + boundary.encode("ascii")
        self._parts: list[_Part] = []
        for name, value in _pairs(fields, "fields"):
            for item in value if isinstance(value, list) else (value,):
                self._add_value(name, item)
        for name, spec in _pairs(files, "files"):
            self._add_file(name, spec)
        self._closing = self._delimiter + b"--\r\n"
        total = len(self._closing)
        for part in self._parts:
            if part.size is None:
                self.content_length: int | None = None
                break
            total += len(part.head) + part.size + 2
        else:
            self.content_length = total

    @property
    def content_type(self) -> str:
        """The Content-Type value: ``multipart/form-data`` with the boundary."""
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        if self.content_length is None:
            raise TypeError("the size of this multipart body is not known in advance")
        return self.content_length

    @property
    def replayable(self) -> bool:
        """Whether the body can be produced again.

        Not when a part is an unseekable file or an async iterable: both can be read once.
        """
        return all(
            part.stream is None and (part.file is None or part.start >= 0) for part in self._parts
        )

    def _head(self, name: str, filename: str | None, content_type: str | None) -> bytes:
        disposition = b'Content-Disposition: form-data; name="' + _escape(name) + b'"'
        if filename is not None:
            disposition += b'; filename="' + _escape(filename) + b'"'
        lines = [self._delimiter, disposition]
        if content_type is not None:
            if not isinstance(content_type, str):
                kind = type(content_type).__name__
                raise TypeError(f"part {name!r}: the content type must be a str, not {kind}")
            if any(c in content_type for c in "\r\n\0"):
                raise ValueError(f"invalid content type {content_type!r}")
            lines.append(b"Content-Type: " + content_type.encode("latin-1"))
        return b"\r\n".join(lines) + b"\r\n\r\n"

    def _file_head(self, name: str, filename: str | None, content_type: str | None) -> bytes:
        """A file part's head: without a type given, one guessed from the filename, if any."""
        if not content_type:
            content_type = _guess(filename) if filename is not None else None
        return self._head(name, filename, content_type)

    def _add_value(self, name: str, value: Any) -> None:
        """One value of ``fields``: its type decides the part (see the module docstring)."""
        if isinstance(value, str):
            data: bytes | memoryview = value.encode("utf-8")
        elif isinstance(value, _BYTES):
            data = _as_data(value)
        elif isinstance(value, bool):
            data = b"true" if value else b"false"
        elif isinstance(value, (int, float)):
            data = str(value).encode("ascii")
        elif isinstance(value, (tuple, MultipartFile, os.PathLike)) or hasattr(value, "read"):
            self._add_file(name, value)
            return
        elif hasattr(value, "__aiter__"):
            self._parts.append(_Part(name, self._head(name, None, None), stream=value))
            return
        else:
            raise TypeError(
                f"multipart field {name!r}: unsupported value of type {type(value).__name__} "
                "(str, bytes, a number, a list of values, a (filename, content[, content_type]) "
                "tuple, a path, an open binary file, an async iterable or a MultipartFile)"
            )
        self._parts.append(_Part(name, self._head(name, None, None), data=data, size=len(data)))

    def _add_file(self, name: str, spec: Any) -> None:
        """A file part from a tuple, a MultipartFile, a bare ``str`` path or bare content."""
        if isinstance(spec, tuple):
            if len(spec) not in (2, 3):
                raise ValueError(
                    f"file part {name!r}: a tuple is (filename, content) or "
                    f"(filename, content, content_type), not {len(spec)} items"
                )
            filename = spec[0]
            if filename is not None and not isinstance(filename, str):
                raise TypeError(
                    f"file part {name!r}: the filename must be a str or None, "
                    f"not {type(filename).__name__}"
                )
            content_type = spec[2] if len(spec) == 3 else None
            self._add_content(name, spec[1], filename, content_type, None, named=True)
        elif isinstance(spec, MultipartFile):
            if spec.path is not None:
                path = os.fspath(spec.path)
                filename = spec.filename if spec.filename is not None else os.path.basename(path)
                self._add_path(name, path, filename, spec.content_type)
                return
            content = spec.content if spec.content is not None else spec.file
            named = spec.filename is not None
            self._add_content(
                name, content, spec.filename, spec.content_type, spec.size, named=named
            )
        elif isinstance(spec, str):
            # A str on its own is a path (in a tuple, or as MultipartFile(content=), it is text).
            self._add_path(name, spec, os.path.basename(spec), None)
        else:
            self._add_content(name, spec, None, None, None, named=False)

    def _add_content(
        self,
        name: str,
        content: Any,
        filename: str | None,
        content_type: str | None,
        size: int | None,
        *,
        named: bool,
    ) -> None:
        """A file part's content. Unless ``named`` (the caller gave a filename, maybe None for
        none), the filename is the path's or open file's base name, else "upload"."""
        if isinstance(content, str):
            content = content.encode("utf-8")
        if isinstance(content, _BYTES):
            data = _as_data(content)
            head = self._file_head(name, filename if named else "upload", content_type)
            self._parts.append(_Part(name, head, data=data, size=len(data)))
        elif isinstance(content, os.PathLike):
            path = os.fspath(content)
            self._add_path(name, path, filename if named else os.path.basename(path), content_type)
        elif hasattr(content, "read"):
            if not named:
                raw_name = getattr(content, "name", None)
                base = os.path.basename(raw_name) if isinstance(raw_name, str) else ""
                filename = base or "upload"
            head = self._file_head(name, filename, content_type)
            known = size if size is not None else file_size(content)
            self._parts.append(_Part(name, head, file=content, size=known))
        elif hasattr(content, "__aiter__"):
            head = self._file_head(name, filename if named else "upload", content_type)
            self._parts.append(_Part(name, head, stream=content, size=size))
        else:
            raise TypeError(f"file part {name!r}: unsupported content {type(content).__name__}")

    def _add_path(
        self, name: str, path: str, filename: str | None, content_type: str | None
    ) -> None:
        try:
            size = os.stat(path).st_size
        except OSError as exc:
            raise FileNotFoundError(f"file part {name!r}: cannot read {path!r}: {exc}") from exc
        head = self._file_head(name, filename, content_type)
        self._parts.append(_Part(name, head, path=path, size=size))

    def __iter__(self) -> Iterator[bytes | memoryview]:
        """The body, piece by piece (file contents read synchronously, ``chunk_size`` at a time).

        A TypeError at once when a part is an async iterable, which only ``async for`` reads."""
        for part in self._parts:
            if part.stream is not None:
                raise TypeError(
                    f"multipart part {part.name!r} is an async iterable: read this body with "
                    "async for (as the Client does), not with for or to_bytes()"
                )
        return self._pieces()

    def _pieces(self) -> Iterator[bytes | memoryview]:
        for part in self._parts:
            yield part.head
            yield from part.chunks(self.chunk_size)
            yield b"\r\n"
        yield self._closing

    def __aiter__(self) -> AsyncIterator[Piece]:
        """The body, piece by piece; large files are read in a worker thread, a chunk ahead.

        StreamConsumed at once when an async iterable part was already sent: sending the body
        again would leave that part empty."""
        for part in self._parts:
            if part.consumed:
                raise _consumed(part.name)
        return self._apieces()

    async def _apieces(self) -> AsyncIterator[Piece]:
        for part in self._parts:
            yield part.head
            async with aclosing(part.achunks(self.chunk_size)) as chunks:
                async for piece in chunks:
                    yield piece
            yield b"\r\n"
        yield self._closing

    def to_bytes(self) -> bytes:
        """Return the whole body in memory (for small bodies and tests).

        :raises TypeError: when a part is an async iterable, which only ``async for`` reads.
        """
        return b"".join(bytes(piece) for piece in self)


def _pairs(source: Any, what: str) -> Iterator[tuple[str, Any]]:
    """``(name, value)`` from a mapping or from pairs, each name checked."""
    if source is None:
        return
    if isinstance(source, (str, bytes, bytearray, memoryview)):
        raise TypeError(
            f"{what} must be a mapping or (name, value) pairs, not {type(source).__name__}"
        )
    for entry in source.items() if isinstance(source, Mapping) else source:
        if not isinstance(entry, (tuple, list)) or len(entry) != 2:
            raise TypeError(
                f"{what} must be a mapping or (name, value) pairs; one entry is a "
                f"{type(entry).__name__}"
                + (f" of {len(entry)} items" if isinstance(entry, (tuple, list)) else "")
            )
        name, value = entry
        if not isinstance(name, str) or not name:
            raise ValueError(f"multipart field names are non-empty strings, not {name!r}")
        yield name, value


def _as_data(content: bytes | bytearray | memoryview) -> bytes | memoryview:
    """Content held without a copy, as a byte-sized view when it is not bytes (so its length
    is its size in bytes)."""
    return content if isinstance(content, bytes) else memoryview(content).cast("B")


def _guess(filename: str | None) -> str:
    if filename:
        guessed, _ = mimetypes.guess_type(filename)
        if guessed:
            return guessed
    return "application/octet-stream"


def stream_for(content: Any) -> tuple[Any, int | None, str | None] | None:
    """For a MultipartEncoder or an open file given as ``content=``: the stream to send, its
    length when known, and the Content-Type it implies. None for anything else."""
    if isinstance(content, MultipartEncoder):
        return content, content.content_length, content.content_type
    if hasattr(content, "read") and not isinstance(content, (bytes, bytearray, memoryview, str)):
        stream, length = file_body(content)
        return stream, length, None
    return None
