"""multipart/form-data bodies (RFC 7578), streamed: files are read from disk chunk by chunk.

``MultipartEncoder(data, files)`` turns text fields and file parts into one body. Its size is known
up front whenever every part's size is (bytes, paths, regular files), so the request carries a
Content-Length and no chunked framing; otherwise it is sent chunked. Iterating it yields the body:
part heads (small ``bytes``), file contents in chunks of ``chunk_size``, and the closing boundary.

File parts accept every shape ``files=`` does: ``bytes``, a ``str`` path, a ``pathlib.Path``, an open
binary file, ``(filename, content)``, ``(filename, content, content_type)`` and ``MultipartFile``.
Field names and filenames are written as UTF-8 in quoted strings, with ``"``, CR, LF and the other
control characters percent-encoded (RFC 7578 section 4.2, as browsers do), so no value can break
out of its header.
"""

from __future__ import annotations

import asyncio
import io
import mimetypes
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any, AsyncIterator, Union

__all__ = ["MultipartEncoder", "MultipartFile"]

DEFAULT_CHUNK = 1 << 20  # file contents are read and sent in pieces of this size
_BCHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ")


class MultipartFile:
    """One file part, spelled out: exactly one of ``content``, ``path`` or ``file``.

    ``filename`` defaults to the path's or file's base name; ``content_type`` is guessed from the
    filename (``application/octet-stream`` when nothing fits); ``size`` may be given for a file
    object whose size cannot be found, so the body can still carry a Content-Length.
    """

    __slots__ = ("content", "path", "file", "filename", "content_type", "size")

    def __init__(
        self,
        content: bytes | bytearray | memoryview | str | None = None,
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
    "os.PathLike[str]",
    IO[bytes],
    MultipartFile,
    tuple[Any, ...],
]


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
    """A part: its head (boundary line and fields), then its content from a source."""

    __slots__ = ("head", "data", "path", "file", "size", "start")

    def __init__(
        self,
        head: bytes,
        *,
        data: bytes | memoryview | None = None,
        path: str | None = None,
        file: IO[bytes] | None = None,
        size: int | None = None,
    ) -> None:
        self.head = head
        self.data = data
        self.path = path
        self.file = file
        self.size = size
        self.start = 0
        if file is not None:
            try:
                self.start = file.tell()
            except (OSError, AttributeError, ValueError):
                self.start = -1  # not seekable: can be sent once

    def _rewound(self) -> IO[bytes]:
        """The part's open file, at the position it had when the part was made (if it can seek)."""
        file = self.file
        assert file is not None
        if self.start > 0 or (self.start == 0 and _seekable(file)):
            file.seek(self.start)
        return file

    def chunks(self, chunk_size: int) -> Iterator[bytes | memoryview]:
        if self.data is not None:
            yield self.data
            return
        if self.path is not None:
            with open(self.path, "rb") as handle:
                yield from _read_chunks(handle, chunk_size)
            return
        yield from _read_chunks(self._rewound(), chunk_size)

    async def achunks(self, chunk_size: int) -> AsyncIterator[bytes | memoryview]:
        """Like ``chunks``, but a file larger than one chunk is read in a worker thread, one chunk
        ahead (see ``_read_ahead``)."""
        if self.data is not None or (self.size is not None and self.size <= chunk_size):
            for piece in self.chunks(chunk_size):
                yield piece
            return
        if self.path is not None:
            handle: IO[bytes] = open(self.path, "rb")
            async for chunk in _read_ahead(handle, chunk_size, owned=True):
                yield chunk
        else:
            async for chunk in _read_ahead(self._rewound(), chunk_size, owned=False):
                yield chunk


async def _read_ahead(handle: IO[bytes], chunk_size: int, owned: bool) -> AsyncIterator[bytes]:
    """A file's chunks, read in a worker thread one chunk ahead, so reading the disk overlaps
    sending the previous chunk. An ``owned`` handle is closed at the end (after a read still in
    flight, if the consumer stopped early)."""
    loop = asyncio.get_running_loop()
    read = handle.read
    pending: asyncio.Future[bytes] | None = loop.run_in_executor(None, read, chunk_size)
    try:
        while pending is not None:
            chunk = _binary(await pending)
            if not chunk:
                pending = None
                break
            pending = loop.run_in_executor(None, read, chunk_size)
            yield chunk
    finally:
        if owned:
            if pending is not None and not pending.done():
                pending.add_done_callback(lambda _: handle.close())
            else:
                handle.close()


def _binary(chunk: Any) -> bytes:
    if isinstance(chunk, str):
        raise TypeError("files must be opened in binary mode ('rb')")
    return chunk  # type: ignore[no-any-return]


def _seekable(file: IO[bytes]) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, ValueError):
        return False


def _read_chunks(handle: IO[bytes], chunk_size: int) -> Iterator[bytes]:
    read = handle.read
    while True:
        chunk = _binary(read(chunk_size))
        if not chunk:
            return
        yield chunk


def _file_size(file: IO[bytes]) -> int | None:
    """Bytes left to read in a regular file from its position, or None when that is unknown."""
    try:
        fileno = file.fileno()
        stat = os.fstat(fileno)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        if isinstance(file, io.BytesIO):
            return len(file.getbuffer()) - file.tell()
        return None
    import stat as stat_module

    if not stat_module.S_ISREG(stat.st_mode):
        return None
    try:
        return max(stat.st_size - file.tell(), 0)
    except (OSError, ValueError):
        return None


class MultipartEncoder:
    """A multipart/form-data body built from text fields (``data``) and file parts (``files``).

    ``data`` maps names to values (``str``, ``bytes``, numbers; a list or tuple repeats the name);
    ``files`` maps names to file specs, or is a list of ``(name, spec)`` pairs. Pass the encoder as
    ``content=`` and the Client sets Content-Type (with the boundary) and Content-Length itself;
    ``files=`` and ``data=`` on a request build one for you.
    """

    def __init__(
        self,
        data: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        files: Mapping[str, FileSpec] | Iterable[tuple[str, FileSpec]] | None = None,
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
        for name, value in _items(data):
            for item in value if isinstance(value, (list, tuple)) else (value,):
                self._add_field(name, item)
        for name, spec in _items(files):
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
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        if self.content_length is None:
            raise TypeError("the size of this multipart body is not known in advance")
        return self.content_length

    @property
    def replayable(self) -> bool:
        """Whether the body can be produced again (not when a part is an unseekable file)."""
        return all(part.file is None or part.start >= 0 for part in self._parts)

    def _head(self, name: str, filename: str | None, content_type: str | None) -> bytes:
        disposition = b'Content-Disposition: form-data; name="' + _escape(name) + b'"'
        if filename is not None:
            disposition += b'; filename="' + _escape(filename) + b'"'
        lines = [self._delimiter, disposition]
        if content_type is not None:
            if any(c in content_type for c in "\r\n\0"):
                raise ValueError(f"invalid content type {content_type!r}")
            lines.append(b"Content-Type: " + content_type.encode("latin-1"))
        return b"\r\n".join(lines) + b"\r\n\r\n"

    def _add_field(self, name: str, value: Any) -> None:
        if isinstance(value, str):
            data = value.encode("utf-8")
        elif isinstance(value, (bytes, bytearray, memoryview)):
            data = bytes(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            data = str(value).encode("ascii")
        elif isinstance(value, bool):
            data = b"true" if value else b"false"
        else:
            raise TypeError(
                f"form field {name!r} must be str, bytes or a number, not {type(value).__name__}"
            )
        self._parts.append(_Part(self._head(name, None, None), data=data, size=len(data)))

    def _add_file(self, name: str, spec: FileSpec) -> None:
        filename: str | None = None
        content_type: str | None = None
        size: int | None = None
        content: Any = spec
        if isinstance(spec, tuple):
            if not 2 <= len(spec) <= 3:
                raise TypeError("a file tuple is (filename, content) or (filename, content, type)")
            filename, content = spec[0], spec[1]
            content_type = spec[2] if len(spec) == 3 else None
        elif isinstance(spec, MultipartFile):
            filename, content_type, size = spec.filename, spec.content_type, spec.size
            content = spec.content if spec.content is not None else spec.path or spec.file
            if spec.path is not None:
                content = os.fspath(spec.path)
                if filename is None:
                    filename = os.path.basename(content)
                self._add_path(name, content, filename, content_type)
                return
        if isinstance(spec, str):
            # A str on its own is a path (in a tuple, or as MultipartFile(content=), it is text).
            self._add_path(name, spec, os.path.basename(spec), None)
            return
        if isinstance(content, os.PathLike):
            path = os.fspath(content)
            self._add_path(name, path, filename or os.path.basename(path), content_type)
            return
        if isinstance(content, str):
            content = content.encode("utf-8")
        if isinstance(content, (bytes, bytearray, memoryview)):
            data = memoryview(content).cast("B") if not isinstance(content, bytes) else content
            filename = filename if filename is not None else "upload"
            head = self._head(name, filename, content_type or _guess(filename))
            self._parts.append(_Part(head, data=data, size=len(data)))
            return
        if hasattr(content, "read"):
            if filename is None:
                raw_name = getattr(content, "name", None)
                filename = os.path.basename(raw_name) if isinstance(raw_name, str) else "upload"
            head = self._head(name, filename, content_type or _guess(filename))
            known = size if size is not None else _file_size(content)
            self._parts.append(_Part(head, file=content, size=known))
            return
        raise TypeError(f"file part {name!r}: unsupported content {type(content).__name__}")

    def _add_path(
        self, name: str, path: str, filename: str | None, content_type: str | None
    ) -> None:
        try:
            size = os.stat(path).st_size
        except OSError as exc:
            raise FileNotFoundError(f"file part {name!r}: cannot read {path!r}: {exc}") from exc
        head = self._head(name, filename, content_type or _guess(filename))
        self._parts.append(_Part(head, path=path, size=size))

    def __iter__(self) -> Iterator[bytes | memoryview]:
        """The body, piece by piece (file contents read synchronously, ``chunk_size`` at a time)."""
        for part in self._parts:
            yield part.head
            yield from part.chunks(self.chunk_size)
            yield b"\r\n"
        yield self._closing

    async def __aiter__(self) -> AsyncIterator[bytes | memoryview]:
        """The body, piece by piece; large files are read in a worker thread, a chunk ahead."""
        for part in self._parts:
            yield part.head
            async for piece in part.achunks(self.chunk_size):
                yield piece
            yield b"\r\n"
        yield self._closing

    def to_bytes(self) -> bytes:
        """The whole body in memory (for small bodies and tests)."""
        return b"".join(bytes(piece) for piece in self)


def _items(source: Any) -> Iterable[tuple[str, Any]]:
    if source is None:
        return ()
    if isinstance(source, Mapping):
        return source.items()
    return source  # type: ignore[no-any-return]


def _guess(filename: str | None) -> str:
    if filename:
        guessed, _ = mimetypes.guess_type(filename)
        if guessed:
            return guessed
    return "application/octet-stream"


def file_body(
    file: Any, chunk_size: int = DEFAULT_CHUNK
) -> tuple[Iterable[bytes] | AsyncIterator[bytes], int | None]:
    """A request body read from an open binary file (sync, or async like aiofiles), and its
    length from the current position when that can be known (a regular file, BytesIO). A sync
    file larger than one chunk is read like a multipart file part: in a worker thread, one chunk
    ahead."""
    import inspect

    read = file.read
    size = _file_size(file)
    if inspect.iscoroutinefunction(read):

        async def read_async() -> AsyncIterator[bytes]:
            while True:
                chunk = _binary(await read(chunk_size))
                if not chunk:
                    return
                yield chunk

        return read_async(), size
    if size is not None and size <= chunk_size:
        return _read_chunks(file, chunk_size), size
    return _read_ahead(file, chunk_size, owned=False), size


def stream_for(content: Any) -> tuple[Any, int | None, str | None] | None:
    """For a MultipartEncoder or an open file given as ``content=``: the stream to send, its
    length when known, and the Content-Type it implies. None for anything else."""
    if isinstance(content, MultipartEncoder):
        return content, content.content_length, content.content_type
    if hasattr(content, "read") and not isinstance(content, (bytes, bytearray, memoryview, str)):
        stream, length = file_body(content)
        return stream, length, None
    return None
