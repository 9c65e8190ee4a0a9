"""Streaming decoders: content codings (RFC 9110 section 8.4.1) and incremental text and lines.

Each content decoder takes chunks as they arrive and returns what they decode to, so a body is
never held whole to be decoded. Codings are undone in the reverse of the order they were applied
(``Content-Encoding: gzip, br`` means br is undone first); decoding stops at the first coding from
the outside that is not known, and the rest passes through as it is.
"""

from __future__ import annotations

import codecs
import zlib
from typing import Any, Iterable

from ._compat import brotli, zstandard
from .exceptions import DecompressionError

__all__ = [
    "ContentDecoder",
    "decoder_for",
    "accept_encoding",
    "TextDecoder",
    "LineDecoder",
    "ByteChunker",
    "charset_from_content_type",
]


class ContentDecoder:
    def decode(self, data: bytes) -> bytes:
        raise NotImplementedError

    def flush(self) -> bytes:
        return b""


class _MemberDecoder(ContentDecoder):
    """A format whose body may be several members (gzip) or frames (zstd) back to back."""

    name = ""
    errors: tuple[type[Exception], ...] = ()

    def __init__(self) -> None:
        self._decompressor = self._new()
        self._started = False

    def _new(self) -> Any:
        raise NotImplementedError

    def decode(self, data: bytes) -> bytes:
        output = []
        try:
            while data:
                self._started = True
                output.append(self._decompressor.decompress(data))
                if not self._decompressor.eof:
                    break
                data = self._decompressor.unused_data
                if data:
                    self._decompressor = self._new()
        except self.errors as exc:
            raise DecompressionError(f"corrupt {self.name} body: {exc}") from None
        return b"".join(output)

    def flush(self) -> bytes:
        if self._started and not self._decompressor.eof:
            raise DecompressionError(f"truncated {self.name} body")
        return b""


class GzipDecoder(_MemberDecoder):
    """gzip (RFC 1952), including bodies made of several concatenated members."""

    name = "gzip"
    errors = (zlib.error,)

    def _new(self) -> Any:
        return zlib.decompressobj(zlib.MAX_WBITS | 16)


class DeflateDecoder(ContentDecoder):
    """deflate: the zlib format (RFC 1950) as specified, or raw deflate as some servers send it.

    Which one it is shows in the first two bytes (a zlib header is a multiple of 31 with
    compression method 8), so those are held until both have arrived.
    """

    def __init__(self) -> None:
        self._decompressor: Any = None
        self._head = b""

    def decode(self, data: bytes) -> bytes:
        if self._decompressor is None:
            self._head += data
            if len(self._head) < 2:
                return b""
            data, self._head = self._head, b""
            cmf, flg = data[0], data[1]
            is_zlib = cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0
            self._decompressor = zlib.decompressobj(zlib.MAX_WBITS if is_zlib else -zlib.MAX_WBITS)
        try:
            return self._decompressor.decompress(data)  # type: ignore[no-any-return]
        except zlib.error as exc:
            raise DecompressionError(f"corrupt deflate body: {exc}") from None

    def flush(self) -> bytes:
        if self._head or (self._decompressor is not None and not self._decompressor.eof):
            raise DecompressionError("truncated deflate body")
        return b""


class BrotliDecoder(ContentDecoder):
    def __init__(self) -> None:
        assert brotli is not None
        self._decompressor = brotli.Decompressor()
        self._started = False

    def decode(self, data: bytes) -> bytes:
        if not data:
            return b""
        self._started = True
        try:
            return self._decompressor.process(data)  # type: ignore[no-any-return]
        except brotli.error as exc:
            raise DecompressionError(f"corrupt brotli body: {exc}") from None

    def flush(self) -> bytes:
        if self._started and not self._decompressor.is_finished():
            raise DecompressionError("truncated brotli body")
        return b""


class ZstdDecoder(_MemberDecoder):
    """zstd (RFC 8878), including bodies made of several frames."""

    name = "zstd"
    errors = (zstandard.ZstdError,) if zstandard is not None else ()

    def _new(self) -> Any:
        return zstandard.ZstdDecompressor().decompressobj()


class MultiDecoder(ContentDecoder):
    """Several codings: ``decoders`` are in the order they are undone (outermost first)."""

    def __init__(self, decoders: list[ContentDecoder]) -> None:
        self._decoders = decoders

    def decode(self, data: bytes) -> bytes:
        for decoder in self._decoders:
            data = decoder.decode(data)
        return data

    def flush(self) -> bytes:
        data = b""
        for decoder in self._decoders:
            data = decoder.decode(data) + decoder.flush()
        return data


_DECODERS: dict[str, type[ContentDecoder]] = {
    "gzip": GzipDecoder,
    "x-gzip": GzipDecoder,
    "deflate": DeflateDecoder,
}
if brotli is not None:
    _DECODERS["br"] = BrotliDecoder
if zstandard is not None:
    _DECODERS["zstd"] = ZstdDecoder


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
    """The charset parameter of a Content-Type value, if it names a codec Python knows."""
    if not content_type:
        return None
    for parameter in content_type.split(";")[1:]:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'").strip()
            try:
                return codecs.lookup(charset).name
            except LookupError:
                return None
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
