"""Streaming decoders: content codings (RFC 9110 section 8.4.1) and incremental text and lines.

Each content decoder takes chunks as they arrive and returns what they decode to, so a body is
never held whole to be decoded. Codings are undone in the reverse of the order they were applied
(``Content-Encoding: gzip, br`` means br is undone first); decoding stops at the first coding from
the outside that is not known, and the rest passes through as it is.
"""

from __future__ import annotations

import codecs
import zlib
from typing import Any, Iterable, Iterator

from ._compat import _optional, brotli, isal_zlib, zstandard
from .exceptions import DecompressionError

# zlib-ng (the zlib-ng package) is not a dependency, but when installed and ISA-L is not, it
# inflates faster than zlib.
zlib_ng = _optional("zlib_ng.zlib_ng")

try:  # brotli >= 1.1 can bound the output of one step
    _BROTLI_BOUNDED = brotli is not None and "output_buffer_limit" in (
        brotli.Decompressor.process.__doc__ or ""
    )
except AttributeError:  # pragma: no cover - brotlicffi and the like
    _BROTLI_BOUNDED = False

__all__ = [
    "ContentDecoder",
    "GzipDecoder",
    "DeflateDecoder",
    "INFLATE_BACKEND",
    "inflate_backends",
    "use_inflate_backend",
    "BodyLimits",
    "decoder_for",
    "accept_encoding",
    "TextDecoder",
    "LineDecoder",
    "ByteChunker",
    "charset_from_content_type",
]


# What one decoding step may produce: decoders hand out their output in pieces of about this size,
# so a limit on the decoded size (or ratio) is enforced before a bomb has expanded in memory.
STEP = 1 << 20


class ContentDecoder:
    """Undo one content coding, chunk by chunk.

    ``feed(data)`` and ``finish()`` yield the output in pieces of about ``STEP`` bytes at most
    (zlib and brotli exactly; zstd, which cannot bound its output, is fed small slices of input
    once its output grows large). ``decode`` and ``flush`` are the joined forms.
    """

    def feed(self, data: bytes) -> Iterator[bytes]:
        raise NotImplementedError

    def finish(self) -> Iterator[bytes]:
        return iter(())

    def decode(self, data: bytes) -> bytes:
        return b"".join(self.feed(data))

    def flush(self) -> bytes:
        return b"".join(self.finish())


class InflateBackend:
    """One implementation of inflate with zlib's ``decompressobj`` API.

    ISA-L (the ``isal`` package) and zlib-ng inflate the same formats as zlib, about 2.1 and 1.6
    times as fast on gzipped web pages (``perf/inflate.py``), and both bound the output of one
    step (``decompress(data, max_length)``, then ``unconsumed_tail``) as the bomb protection needs.
    """

    __slots__ = ("name", "decompressobj", "errors", "needs_whole_headers")

    def __init__(self, name: str, module: Any, *, needs_whole_headers: bool = False) -> None:
        self.name = name
        self.decompressobj: Any = module.decompressobj
        # What a corrupt body raises: the module's own error, and zlib's for the streams that
        # go to zlib (below).
        self.errors: tuple[type[Exception], ...] = (module.error, zlib.error)
        # ISA-L (isal 1.9) misreads a gzip header split across calls when it has a header CRC
        # or two of the extra field, name and comment (valid bodies fail as corrupt), and takes
        # headers zlib refuses (reserved gzip flags; a zlib window over 32 KiB or preset
        # dictionary). So the decoders hand it only whole headers they have checked, and give
        # the rest to zlib, which decodes or refuses them as it always did.
        self.needs_whole_headers = needs_whole_headers


_ZLIB = InflateBackend("zlib", zlib)
_INFLATE_BACKENDS: dict[str, InflateBackend] = {}  # fastest first
if isal_zlib is not None:
    _INFLATE_BACKENDS["isal"] = InflateBackend("isal", isal_zlib, needs_whole_headers=True)
if zlib_ng is not None:
    _INFLATE_BACKENDS["zlib-ng"] = InflateBackend("zlib-ng", zlib_ng)
_INFLATE_BACKENDS["zlib"] = _ZLIB

#: The inflate behind gzip and deflate: the fastest installed, chosen at import.
INFLATE_BACKEND = next(iter(_INFLATE_BACKENDS))
_inflate = _INFLATE_BACKENDS[INFLATE_BACKEND]


def inflate_backends() -> list[str]:
    """The names of the installed inflate backends, fastest first (``zlib`` is always there)."""
    return list(_INFLATE_BACKENDS)


def use_inflate_backend(name: str) -> str:
    """Make decoders created from now on inflate with ``name``; return the name used before.

    For tests and benchmarks, which compare the backends: the import already chose the fastest.
    """
    global INFLATE_BACKEND, _inflate
    backend = _INFLATE_BACKENDS.get(name)
    if backend is None:
        raise ValueError(f"no inflate backend {name!r} here; installed: {inflate_backends()}")
    previous = INFLATE_BACKEND
    INFLATE_BACKEND, _inflate = name, backend
    return previous


class _ZlibDecoder(ContentDecoder):
    """zlib-based formats: gzip (several members may follow each other) and deflate.

    A stream's first bytes may be held until they tell how to inflate it (``_new``).
    """

    name = ""
    multi_member = False

    def __init__(self) -> None:
        self._inflate = _inflate
        self._decompressor: Any = None
        self._head = b""  # the start of a stream, held until _new can tell how to inflate it
        self._started = False
        self._done = False  # the (last) stream ended; what follows is ignored

    def _new(self, head: bytes) -> Any:
        """A decompressor for the stream that starts with ``head``, or None to wait for more."""
        raise NotImplementedError

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not data or self._done:
            return
        self._started = True
        try:
            while True:
                decompressor = self._decompressor
                if decompressor is None:
                    if self._head:
                        data = self._head + data
                    decompressor = self._new(data)
                    if decompressor is None:
                        self._head = bytes(data)
                        return
                    self._head = b""
                    self._decompressor = decompressor
                out = decompressor.decompress(data, STEP)
                data = decompressor.unconsumed_tail
                if out:
                    yield out
                if decompressor.eof:
                    if not self.multi_member:
                        self._done = True  # anything after the end is ignored
                        return
                    self._decompressor = None  # between members: another may follow
                    data = decompressor.unused_data
                    if not data:
                        return
                    continue
                if not data and len(out) < STEP:
                    return
        except self._inflate.errors as exc:
            raise DecompressionError(f"corrupt {self.name} body: {exc}") from None

    def finish(self) -> Iterator[bytes]:
        decompressor = self._decompressor
        if self._started and not self._done and (decompressor is None or not decompressor.eof):
            if decompressor is not None or self._head:
                raise DecompressionError(f"truncated {self.name} body")
        return iter(())


_GZIP_MAGIC = b"\x1f\x8b\x08"  # ID1, ID2, CM = deflate
_FHCRC, _FEXTRA, _FNAME, _FCOMMENT, _FRESERVED = 0x02, 0x04, 0x08, 0x10, 0xE0
# A longer gzip header (a long name or comment) is not held: zlib reads it as it comes.
_MAX_HELD_HEADER = 4096


def _gzip_header_size(head: bytes) -> int:
    """The size of the gzip header (RFC 1952 section 2.3) that ``head`` starts with, or 0 while
    it is incomplete. ``head`` has at least the 4 bytes up to the flags."""
    flags = head[3]
    size = 10
    if flags & _FEXTRA:
        if len(head) < 12:
            return 0
        size = 12 + int.from_bytes(head[10:12], "little")
    for field in (_FNAME, _FCOMMENT):
        if flags & field:
            size = head.find(b"\0", size) + 1  # zero-terminated
            if not size:
                return 0
    if flags & _FHCRC:
        size += 2
    return size if len(head) >= size else 0


class GzipDecoder(_ZlibDecoder):
    """gzip (RFC 1952), including bodies made of several concatenated members."""

    name = "gzip"
    multi_member = True

    def _new(self, head: bytes) -> Any:
        inflate = self._inflate
        if inflate.needs_whole_headers:
            if len(head) < 4 and _GZIP_MAGIC.startswith(head):
                return None
            if len(head) < 4 or head[:3] != _GZIP_MAGIC or head[3] & _FRESERVED:
                inflate = _ZLIB
            elif not _gzip_header_size(head):
                if len(head) <= _MAX_HELD_HEADER:
                    return None
                inflate = _ZLIB
        return inflate.decompressobj(zlib.MAX_WBITS | 16)


class DeflateDecoder(_ZlibDecoder):
    """deflate: the zlib format (RFC 1950) as specified, or raw deflate as some servers send it.

    Which one it is shows in the first two bytes (a zlib header is a multiple of 31 with
    compression method 8), so those are held until both have arrived.
    """

    name = "deflate"

    def _new(self, head: bytes) -> Any:
        if len(head) < 2:
            return None
        cmf, flg = head[0], head[1]
        if cmf & 0x0F != 8 or (cmf << 8 | flg) % 31:
            return self._inflate.decompressobj(-zlib.MAX_WBITS)
        inflate = self._inflate
        if inflate.needs_whole_headers and (cmf >> 4 > 7 or flg & 0x20):
            inflate = _ZLIB  # a window over 32 KiB or a preset dictionary: zlib refuses them
        return inflate.decompressobj(zlib.MAX_WBITS)


class BrotliDecoder(ContentDecoder):
    def __init__(self) -> None:
        assert brotli is not None
        self._decompressor = brotli.Decompressor()
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        self._started = True
        decompressor = self._decompressor
        try:
            if not _BROTLI_BOUNDED:
                yield from _sliced(decompressor.process, data)
                return
            out = decompressor.process(data, output_buffer_limit=STEP)
            while True:
                if out:
                    yield out
                if decompressor.can_accept_more_data():
                    return
                out = decompressor.process(b"", output_buffer_limit=STEP)
        except brotli.error as exc:
            raise DecompressionError(f"corrupt brotli body: {exc}") from None

    def finish(self) -> Iterator[bytes]:
        if self._started and not self._decompressor.is_finished():
            raise DecompressionError("truncated brotli body")
        return iter(())


def _sliced(process: Any, data: bytes) -> Iterator[bytes]:
    """Feed ``data`` to a decompressor that cannot bound its output, in slices small enough that
    none expands much past STEP: they start at 64 bytes (zstd's worst case is about 32768:1) and
    double, up to 64 KiB, while the output stays small, as it does for ordinary data."""
    view = memoryview(data)
    size = 64
    start = 0
    end = len(view)
    while start < end:
        out = process(view[start : start + size])
        start += size
        produced = len(out)
        if produced:
            yield out
        if produced > STEP // 2:
            size = max(16, size * STEP // produced // 2)
        elif produced < STEP // 8 and size < 65536:
            size *= 2


class ZstdDecoder(ContentDecoder):
    """zstd (RFC 8878), including bodies made of several frames."""

    def __init__(self) -> None:
        self._decompressor = self._new()
        self._in_frame = False

    @staticmethod
    def _new() -> Any:
        return zstandard.ZstdDecompressor().decompressobj()

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        try:
            yield from _sliced(self._process, data)
        except zstandard.ZstdError as exc:
            raise DecompressionError(f"corrupt zstd body: {exc}") from None

    def _process(self, data: memoryview) -> bytes:
        output = []
        chunk = bytes(data)
        while chunk:
            decompressor = self._decompressor
            output.append(decompressor.decompress(chunk))
            if not decompressor.eof:
                self._in_frame = True
                break
            chunk = decompressor.unused_data
            self._decompressor = self._new()
            self._in_frame = False
        return b"".join(output)

    def finish(self) -> Iterator[bytes]:
        if self._in_frame:
            raise DecompressionError("truncated zstd body")
        return iter(())


class MultiDecoder(ContentDecoder):
    """Several codings: ``decoders`` are in the order they are undone (outermost first)."""

    def __init__(self, decoders: list[ContentDecoder]) -> None:
        self._decoders = decoders

    def feed(self, data: bytes) -> Iterator[bytes]:
        return self._chain(0, self._decoders[0].feed(data))

    def _chain(self, index: int, pieces: Iterator[bytes]) -> Iterator[bytes]:
        if index == len(self._decoders) - 1:
            yield from pieces
            return
        following = self._decoders[index + 1]
        for piece in pieces:
            yield from self._chain(index + 1, following.feed(piece))

    def finish(self) -> Iterator[bytes]:
        for index, decoder in enumerate(self._decoders):
            yield from self._chain(index, decoder.finish())


_DECODERS: dict[str, type[ContentDecoder]] = {
    "gzip": GzipDecoder,
    "x-gzip": GzipDecoder,
    "deflate": DeflateDecoder,
}
if brotli is not None:
    _DECODERS["br"] = BrotliDecoder
if zstandard is not None:
    _DECODERS["zstd"] = ZstdDecoder


class BodyLimits:
    """Caps on a response body, enforced as it is read (the Client's ``max_*`` options).

    ``max_response_size``: bytes on the wire (ResponseTooLarge; a Content-Length over it fails
    before any byte is read). ``max_decompressed_size``: bytes after content decoding, and
    ``max_decompression_ratio``: decoded bytes per wire byte once more than
    ``ratio_floor`` bytes were decoded (both DecompressionError, before a bomb has expanded).
    """

    __slots__ = (
        "max_response_size",
        "max_decompressed_size",
        "max_decompression_ratio",
        "ratio_floor",
        "checks_decoding",
    )

    def __init__(
        self,
        max_response_size: int | None = None,
        max_decompressed_size: int | None = None,
        max_decompression_ratio: float | None = None,
        ratio_floor: int = 10 * 1024 * 1024,
    ) -> None:
        for name, value in (
            ("max_response_size", max_response_size),
            ("max_decompressed_size", max_decompressed_size),
            ("max_decompression_ratio", max_decompression_ratio),
        ):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None")
        self.max_response_size = max_response_size
        self.max_decompressed_size = max_decompressed_size
        self.max_decompression_ratio = max_decompression_ratio
        self.ratio_floor = ratio_floor
        self.checks_decoding = max_decompressed_size is not None or (
            max_decompression_ratio is not None
        )

    @property
    def active(self) -> bool:
        return self.max_response_size is not None or self.checks_decoding

    def check(self, decoded: int, raw: int) -> None:
        limit = self.max_decompressed_size
        if limit is not None and decoded > limit:
            raise DecompressionError(
                f"the decoded body is larger than max_decompressed_size ({limit} bytes): "
                "a decompression bomb?"
            )
        ratio = self.max_decompression_ratio
        if ratio is not None and decoded > self.ratio_floor and decoded > ratio * max(raw, 1):
            raise DecompressionError(
                f"the body decodes to more than {ratio:g} times its size on the wire "
                f"({decoded} bytes from {raw}): a decompression bomb? (max_decompression_ratio)"
            )


def accept_encoding() -> str:
    """The Accept-Encoding value for what this installation can decode."""
    codings = ["gzip", "deflate"]
    if brotli is not None:
        codings.append("br")
    if zstandard is not None:
        codings.append("zstd")
    return ", ".join(codings)


def decoder_for(content_encodings: Iterable[str]) -> ContentDecoder | None:
    """The decoder for a Content-Encoding field's values, or None for identity/unknown."""
    codings = [c.strip().lower() for value in content_encodings for c in value.split(",")]
    decoders: list[ContentDecoder] = []
    for coding in reversed(codings):
        if coding in ("", "identity"):
            continue
        factory = _DECODERS.get(coding)
        if factory is None:
            break
        decoders.append(factory())
    if not decoders:
        return None
    return decoders[0] if len(decoders) == 1 else MultiDecoder(decoders)


def charset_from_content_type(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type value, lower-cased, if it names a codec Python knows.

    It is given as the server named it (``iso-8859-1``), not as Python's codec name (``iso8859-1``);
    Python's codecs take either."""
    if not content_type:
        return None
    for parameter in content_type.split(";")[1:]:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'").strip()
            try:
                codecs.lookup(charset)
            except LookupError:
                return None
            return charset.lower()
    return None


class TextDecoder:
    """Bytes to str across chunk boundaries (a multi-byte character may be split)."""

    def __init__(self, encoding: str) -> None:
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")

    def decode(self, data: bytes) -> str:
        return self._decoder.decode(data)

    def flush(self) -> str:
        return self._decoder.decode(b"", True)


class LineDecoder:
    """Text to lines, splitting on ``\\n``, ``\\r\\n`` and ``\\r``; line endings are not kept.

    A ``\\r`` at the end of a chunk is held back until the next chunk shows whether a ``\\n``
    follows, so ``\\r\\n`` split across chunks is one line ending, not two.
    """

    def __init__(self) -> None:
        self._pending = ""

    def decode(self, text: str) -> list[str]:
        text = self._pending + text
        hold = ""
        if text.endswith("\r"):
            hold, text = "\r", text[:-1]
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._pending = lines.pop() + hold
        return lines

    def flush(self) -> list[str]:
        text, self._pending = self._pending, ""
        if not text:
            return []
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if lines[-1] == "":
            lines.pop()
        return lines


class ByteChunker:
    """Re-cut a stream into pieces of exactly ``size`` (the last may be shorter); None passes through."""

    def __init__(self, size: int | None) -> None:
        if size is not None and size <= 0:
            raise ValueError("chunk_size must be a positive number of bytes")
        self._size = size
        self._buffer = bytearray()

    def decode(self, data: bytes) -> list[bytes]:
        size = self._size
        if size is None:
            return [data] if data else []
        buffer = self._buffer
        if not buffer and len(data) == size:
            return [data]
        buffer += data
        if len(buffer) < size:
            return []
        cut = len(buffer) - len(buffer) % size
        view = memoryview(buffer)
        pieces = [bytes(view[i : i + size]) for i in range(0, cut, size)]
        view.release()
        del buffer[:cut]
        return pieces

    def flush(self) -> list[bytes]:
        if not self._buffer:
            return []
        data = bytes(self._buffer)
        self._buffer.clear()
        return [data]
