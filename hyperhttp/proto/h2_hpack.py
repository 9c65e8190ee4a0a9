"""Faster HPACK for h2: a memoising decoder and a stateless encoder, drop-in for hpack's.

h2 compresses and decompresses header blocks with ``hpack.Encoder`` and ``hpack.Decoder``, held as
``H2Connection.encoder`` and ``.decoder``. Both are pure Python and show up high in profiles at high
request rates. The classes here subclass them (so ``conn.encoder = StatelessEncoder()`` type-checks
against h2's annotations) and replace the work; :func:`install` puts both on a connection.

``CachingDecoder`` is an RFC 7541 decoder written against hpack's static table, ``HeaderTable`` (the
dynamic table, kept as ``self.header_table`` like hpack's) and ``decode_huffman``, with two
memo caches shared by every decoder in the process (their contents are pure functions of their keys,
so sharing leaks nothing between connections and gets more hits):

* Huffman-coded strings, keyed by their encoded bytes: servers send the same values over and over
  (nginx sends every response header value Huffman-coded, most of them identical every time). Keys
  longer than ``HUFFMAN_CACHE_MAX_KEY`` bytes are not cached; the dict is cleared when it holds
  ``HUFFMAN_CACHE_SIZE`` entries.
* Whole header blocks that neither read nor change the dynamic table: no index above 61, no table
  size update, and no literal with incremental indexing unless the table's maximum size is 0 (where
  inserting is a no-op: nginx shrinks the table to 0 in its first block and then marks its literals
  "incremental indexing"). A hit returns the decoded list after checking the current limits; blocks
  longer than ``BLOCK_CACHE_MAX_KEY`` bytes or inflating past ``BLOCK_CACHE_MAX_SIZE`` are not cached.

Everything else follows hpack 4 exactly, to the order of its checks, so the same malformed input raises
the same exception type (``HPACKDecodingError``, ``InvalidTableIndex``, ``OversizedHeaderListError``,
``InvalidTableSizeError``) and h2 maps it to the same ``ProtocolError``/``DenialOfServiceError``. Headers
come back as ``HeaderTuple``, or ``NeverIndexedHeaderTuple`` for never-indexed literals (h2 asserts the
``HeaderTuple`` type when it decodes names and values to ``str``).

``StatelessEncoder`` never uses the dynamic table, so a block depends only on its header list: an
indexed field for a full static-table match, a literal without indexing with the static name index,
else a literal with a literal name; never-indexed literals for ``authorization``,
``proxy-authorization``, ``cookie`` and headers marked sensitive (``NeverIndexedHeaderTuple`` or a true
third item). The encoding of each non-sensitive field of up to ``FIELD_CACHE_MAX_LEN`` bytes is
memoised (bounded like the decoder's caches); never-indexed fields are encoded afresh every time, so
secrets do not linger in a process-wide cache. Huffman coding, measured (perf/hpack_micro.py): it
costs about 1 µs + 33 ns per byte and saves a fifth of a string's bytes, and in a memoised field it
is paid once. So with ``huffman=True`` (what h2 uses) strings are Huffman-coded, when that is shorter
(nghttp2's rule), in memoised fields other than ``:path``; ``:path`` (new on most requests),
never-indexed and long fields go raw, as Huffman coding would be paid on every request. Either way a
block remains a pure function of its header list. When h2 sets ``header_table_size`` (the peer changed
SETTINGS_HEADER_TABLE_SIZE) the next block starts with a dynamic table size update to 0, which is
always within the peer's limit and tells its decoder our table is empty.
"""

from __future__ import annotations

from typing import Any, Iterable, Union

import h2.connection
from hpack import (
    Decoder,
    Encoder,
    HeaderTuple,
    HPACKDecodingError,
    InvalidTableSizeError,
    NeverIndexedHeaderTuple,
    OversizedHeaderListError,
)
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.huffman_table import decode_huffman
from hpack.table import HeaderTable

H2Connection = h2.connection.H2Connection

__all__ = [
    "CachingDecoder",
    "StatelessEncoder",
    "huffman_encode",
    "install",
    "clear_caches",
    "HUFFMAN_CACHE_SIZE",
    "HUFFMAN_CACHE_MAX_KEY",
    "BLOCK_CACHE_SIZE",
    "BLOCK_CACHE_MAX_KEY",
    "BLOCK_CACHE_MAX_SIZE",
    "FIELD_CACHE_SIZE",
    "FIELD_CACHE_MAX_LEN",
]

HUFFMAN_CACHE_SIZE = 4096  # entries; worst case about 3 MiB with the key bound below
HUFFMAN_CACHE_MAX_KEY = 256  # encoded bytes (decodes to at most 409 bytes)
BLOCK_CACHE_SIZE = 256  # entries
BLOCK_CACHE_MAX_KEY = 512  # encoded bytes
BLOCK_CACHE_MAX_SIZE = 4096  # decoded size as RFC 7541 counts it (32 + name + value per header)
FIELD_CACHE_SIZE = 2048  # encoder: entries per Huffman mode
FIELD_CACHE_MAX_LEN = 512  # encoder: longest name + value memoised

_STATIC = HeaderTable.STATIC_TABLE
_STATIC_LEN = len(_STATIC)  # 61
_new_tuple = tuple.__new__
# Index i (1..61) -> ready-made HeaderTuple for static entry i; index 0 is never read.
_STATIC_HEADERS: tuple[HeaderTuple, ...] = (HeaderTuple(b"", b""),) + tuple(
    HeaderTuple(n, v) for n, v in _STATIC
)
_STATIC_NAMES: tuple[bytes, ...] = (b"",) + tuple(n for n, _ in _STATIC)

# (encoded bytes) -> decoded bytes
_huffman_cache: dict[bytes, bytes] = {}
# block -> (headers, inflated size, valid only while the dynamic table's maximum size is <= 0)
_block_cache: dict[bytes, tuple[tuple[HeaderTuple, ...], int, bool]] = {}
# (name, value) as given -> encoded field; one dict per Huffman mode
_field_cache: tuple[dict[Any, bytes], dict[Any, bytes]] = ({}, {})


def clear_caches() -> None:
    """Empty the process-wide memo caches (for tests and benchmarks)."""
    _huffman_cache.clear()
    _block_cache.clear()
    _field_cache[0].clear()
    _field_cache[1].clear()


# -- decoding --------------------------------------------------------------------------------


def _varint(data: bytes, i: int, prefix_max: int) -> tuple[int, int]:
    """Decode an integer whose prefix at data[i] is all ones; return (value, next position).

    Mirrors hpack.decode_integer: at most 6 octets, truncation is an HPACKDecodingError.
    """
    value = prefix_max
    shift = 0
    j = i + 1
    try:
        while True:
            b = data[j]
            j += 1
            value += (b & 0x7F) << shift
            if b < 0x80:
                return value, j
            shift += 7
            if j - i > 5:
                msg = f"Variable integer representation is too long: {data[i:j]!r}"
                raise HPACKDecodingError(msg)
    except IndexError as err:
        msg = "Unable to decode HPACK integer representation: truncated"
        raise HPACKDecodingError(msg) from err


def _read_string(data: bytes, i: int) -> tuple[bytes, int]:
    """Decode the string literal at data[i]; return (bytes, next position)."""
    try:
        b = data[i]
    except IndexError as err:
        msg = "Unable to decode HPACK integer representation: truncated"
        raise HPACKDecodingError(msg) from err
    length = b & 0x7F
    if length == 0x7F:
        length, j = _varint(data, i, 0x7F)
    else:
        j = i + 1
    end = j + length
    if end > len(data):
        msg = "Truncated header block"
        raise HPACKDecodingError(msg)
    s = data[j:end]
    if b & 0x80:
        decoded = _huffman_cache.get(s)
        if decoded is None:
            decoded = decode_huffman(s)
            if length <= HUFFMAN_CACHE_MAX_KEY:
                if len(_huffman_cache) >= HUFFMAN_CACHE_SIZE:
                    _huffman_cache.clear()
                _huffman_cache[s] = decoded
        return decoded, end
    return s, end


class CachingDecoder(Decoder):
    """``hpack.Decoder`` with the same interface and errors, memoising Huffman strings and blocks."""

    def decode(self, data: bytes, raw: bool = False) -> list[HeaderTuple]:
        """Decode one complete header block into a list of header tuples (bytes if ``raw``)."""
        if type(data) is not bytes:
            data = bytes(data)
        entry = _block_cache.get(data)
        if entry is not None:
            maxsize = self.header_table.maxsize
            if (
                entry[1] <= self.max_header_list_size
                and maxsize <= self.max_allowed_table_size
                and (maxsize <= 0 or not entry[2])
            ):
                return list(entry[0]) if raw else _to_str(entry[0])
        headers = self._decode(data)
        return headers if raw else _to_str(headers)

    def _decode(self, data: bytes) -> list[HeaderTuple]:
        headers: list[HeaderTuple] = []
        append = headers.append
        table = self.header_table
        limit = self.max_header_list_size
        size = 0
        cacheable = True  # no dynamic-table reads or writes, no size updates so far
        needs_empty = False  # had incremental-indexing literals, no-ops only with maxsize <= 0
        n = len(data)
        i = 0
        while i < n:
            b = data[i]
            if b & 0x80:  # indexed header field
                index = b & 0x7F
                if index == 0x7F:
                    index, i = _varint(data, i, 0x7F)
                else:
                    i += 1
                if 0 < index <= _STATIC_LEN:
                    header = _STATIC_HEADERS[index]
                else:
                    header = HeaderTuple(*table.get_by_index(index))
                    cacheable = False
            elif b & 0x40 or not b & 0x20:  # literal header field
                if b & 0x40:
                    mask, indexing, never = 0x3F, True, False
                else:
                    mask, indexing, never = 0x0F, False, bool(b & 0x10)
                index = b & mask
                if index:
                    if index == mask:
                        index, i = _varint(data, i, mask)
                    else:
                        i += 1
                    if index <= _STATIC_LEN:
                        name = _STATIC_NAMES[index]
                    else:
                        name = table.get_by_index(index)[0]
                        cacheable = False
                else:
                    name, i = _read_string(data, i + 1)
                value, i = _read_string(data, i)
                if indexing:
                    if table.maxsize > 0:
                        table.add(name, value)
                        cacheable = False
                    else:
                        needs_empty = True
                if never:
                    header = _new_tuple(NeverIndexedHeaderTuple, (name, value))
                else:
                    header = _new_tuple(HeaderTuple, (name, value))
            else:  # dynamic table size update
                if headers:
                    msg = "Table size update not at the start of the block"
                    raise HPACKDecodingError(msg)
                new_size = b & 0x1F
                if new_size == 0x1F:
                    new_size, i = _varint(data, i, 0x1F)
                else:
                    i += 1
                if new_size > self.max_allowed_table_size:
                    msg = "Encoder exceeded max allowable table size"
                    raise InvalidTableSizeError(msg)
                table.maxsize = new_size
                cacheable = False
                continue
            append(header)
            size += 32 + len(header[0]) + len(header[1])
            if size > limit:
                msg = f"A header list larger than {limit} has been received"
                raise OversizedHeaderListError(msg)
        self._assert_valid_table_size()
        if cacheable and n <= BLOCK_CACHE_MAX_KEY and size <= BLOCK_CACHE_MAX_SIZE:
            if len(_block_cache) >= BLOCK_CACHE_SIZE:
                _block_cache.clear()
            _block_cache[data] = (tuple(headers), size, needs_empty)
        return headers


def _to_str(headers: Iterable[HeaderTuple]) -> list[HeaderTuple]:
    """hpack's ``raw=False``: names and values decoded as UTF-8, tuple types kept."""
    try:
        return [h.__class__(h[0].decode("utf-8"), h[1].decode("utf-8")) for h in headers]
    except UnicodeDecodeError as err:
        msg = "Unable to decode headers as UTF-8"
        raise HPACKDecodingError(msg) from err


# -- encoding --------------------------------------------------------------------------------

# Byte -> its Huffman code as a string of '0'/'1', so that encoding is a join and an int().
_HUFFMAN_BITS = tuple(
    format(code, f"0{length}b")
    for code, length in zip(REQUEST_CODES[:256], REQUEST_CODES_LENGTH[:256], strict=True)
)
_STATIC_FULL: dict[tuple[bytes, bytes], int] = {}
_STATIC_NAME: dict[bytes, int] = {}
for _i, (_n, _v) in enumerate(_STATIC, 1):
    _STATIC_FULL.setdefault((_n, _v), _i)
    _STATIC_NAME.setdefault(_n, _i)
del _i, _n, _v
_NEVER_INDEXED_NAMES = frozenset((b"authorization", b"proxy-authorization", b"cookie"))
_SIZE_UPDATE_0 = b"\x20"


def huffman_encode(data: bytes) -> bytes:
    """RFC 7541 Huffman code of ``data`` (same output as hpack's HuffmanEncoder)."""
    if not data:
        return b""
    bits = "".join(map(_HUFFMAN_BITS.__getitem__, data))
    pad = -len(bits) % 8
    return ((int(bits, 2) << pad) | ((1 << pad) - 1)).to_bytes((len(bits) + pad) >> 3, "big")


def _integer(value: int, prefix_bits: int, flags: int) -> bytes:
    """``value`` in the HPACK integer representation with an N-bit prefix, OR-ing ``flags``."""
    prefix_max = (1 << prefix_bits) - 1
    if value < prefix_max:
        return bytes((flags | value,))
    out = bytearray((flags | prefix_max,))
    value -= prefix_max
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(data: bytes, huffman: bool) -> bytes:
    if huffman and data:
        coded = huffman_encode(data)
        if len(coded) < len(data):
            return _integer(len(coded), 7, 0x80) + coded
    return _integer(len(data), 7, 0) + data


def _to_bytes(value: Any) -> bytes:
    """As hpack: bytes as they are, anything else through ``str`` and UTF-8."""
    if type(value) is bytes:
        return value
    if not isinstance(value, str):
        value = str(value)
    return value.encode("utf-8")  # type: ignore[no-any-return]


def _memoised(name: bytes, value: bytes, never: bool) -> bool:
    """Whether the encoding of a field is kept in the field cache."""
    return not never and len(name) + len(value) <= FIELD_CACHE_MAX_LEN


def _encode_field(name: bytes, value: bytes, sensitive: bool, huffman: bool) -> bytes:
    """One header field, never touching the dynamic table.

    Strings are Huffman-coded only in memoised fields other than ``:path``, where the cost is paid
    once: never-indexed fields, long fields and ``:path`` (new on most requests) go raw, since coding
    them would cost about 1 µs + 33 ns per byte on every request to save a fifth of their bytes.
    """
    never = sensitive or name in _NEVER_INDEXED_NAMES
    if not never:
        index = _STATIC_FULL.get((name, value))
        if index is not None:
            return bytes((0x80 | index,))
    flags = 0x10 if never else 0x00  # literal never indexed / without indexing
    huffman = huffman and name != b":path" and _memoised(name, value, never)
    index = _STATIC_NAME.get(name)
    if index is not None:
        return _integer(index, 4, flags) + _string(value, huffman)
    return bytes((flags,)) + _string(name, huffman) + _string(value, huffman)


def _memo_field(cache: dict[Any, bytes], header: tuple[bytes, bytes], huffman: bool) -> bytes:
    """A field not in ``cache`` (one of the field caches), encoded; kept there unless it is
    never-indexed or long."""
    name, value = header
    field = _encode_field(name, value, False, huffman)
    if _memoised(name, value, name in _NEVER_INDEXED_NAMES):
        if len(cache) >= FIELD_CACHE_SIZE:
            cache.clear()
        cache[header] = field
    return field


HeadersArg = Union[
    Iterable[
        Union[
            HeaderTuple,
            tuple[Union[bytes, str], Union[bytes, str]],
            tuple[Union[bytes, str], Union[bytes, str], Union[bool, None]],
        ]
    ],
    dict[Union[bytes, str], Union[bytes, str]],
]


class StatelessEncoder(Encoder):
    """``hpack.Encoder`` replacement whose output depends only on the header list; and, for the
    requests of a connection (``request_block``), a dynamic table of its constant fields."""

    def __init__(self) -> None:
        super().__init__()  # leaves an unused, always empty ``header_table`` for introspection
        self._table_size = self.header_table.maxsize
        self._size_update_pending = False
        self.indexing = True  # request_block may index constant fields in the dynamic table
        self._entries: dict[tuple[bytes, bytes], int] = {}  # field -> its insertion number
        self._table_used = 0  # their size as RFC 7541 counts it
        self._heads: dict[Any, tuple[bytes, bytes]] = {}  # encoded constant parts, by request

    def request_block(
        self,
        method: bytes,
        scheme: bytes,
        authority: bytes,
        path: bytes,
        shared: Any,
        shared_fields: list[tuple[bytes, bytes]],
        own: list[tuple[bytes, bytes]],
    ) -> bytes:
        """A request's header block: the pseudo-fields, then ``shared_fields`` (a list many
        requests share, ``shared`` its identity), then the request's ``own`` fields, all names
        lower-case bytes.

        ``:authority`` and the shared fields are the same on most requests of a connection:
        each is sent once as a literal with incremental indexing (while the peer's table has
        room for it: SETTINGS_HEADER_TABLE_SIZE, 4096 until it says otherwise) and then as a
        one- or two-byte index. Never-indexed fields, ``:path`` and the request's own fields are
        encoded as ``encode`` does. The encoded parts are kept per (method, scheme, authority,
        shared) while no field is added to the table (an addition moves every index), so a
        request costs a dict lookup and a join. Once the peer changes its table size, blocks are
        stateless again (``encode``'s table size update to 0 empties the table)."""
        if self._size_update_pending or not self.indexing:
            self._forget()
            return self.encode(
                [
                    (b":method", method),
                    (b":scheme", scheme),
                    (b":authority", authority),
                    (b":path", path),
                    *shared_fields,
                    *own,
                ]
            )
        key = (method, scheme, authority, shared)
        parts = self._heads.get(key)
        if parts is None:
            count = len(self._entries)
            head, kept = self._indexed(
                ((b":method", method), (b":scheme", scheme), (b":authority", authority))
            )
            tail, kept_tail = self._indexed(shared_fields)
            if len(self._entries) != count:
                self._heads.clear()  # every index moved
            elif kept and kept_tail:
                if len(self._heads) >= 64:
                    self._heads.clear()
                self._heads[key] = (head, tail)
        else:
            head, tail = parts
        cache = _field_cache[1]
        header = (b":path", path)
        field = cache.get(header) or _memo_field(cache, header, True)
        if not own:
            return head + field + tail
        fields = [head, field, tail]
        for header in own:
            fields.append(cache.get(header) or _memo_field(cache, header, True))
        return b"".join(fields)

    def _indexed(self, fields: Iterable[tuple[bytes, bytes]]) -> tuple[bytes, bool]:
        """``fields`` with the dynamic table: an index for a field in it, a literal with
        incremental indexing for one that fits; and whether the bytes may be kept (no
        never-indexed field in them)."""
        entries = self._entries
        out = []
        keep = True
        for field in fields:
            name, value = field
            static = _STATIC_FULL.get(field)
            if static is not None:
                out.append(bytes((0x80 | static,)))
                continue
            if name in _NEVER_INDEXED_NAMES:
                out.append(_encode_field(name, value, True, True))
                keep = False
                continue
            number = entries.get(field)
            if number is not None:
                out.append(_integer(_STATIC_LEN + len(entries) - number, 7, 0x80))
                continue
            size = 32 + len(name) + len(value)
            if self._table_used + size > self._table_size:
                out.append(_encode_field(name, value, False, True))
                continue
            index = _STATIC_NAME.get(name)
            if index is not None:
                out.append(_integer(index, 6, 0x40) + _string(value, True))
            else:
                out.append(b"\x40" + _string(name, True) + _string(value, True))
            entries[field] = len(entries)
            self._table_used += size
        return b"".join(out), keep

    def _forget(self) -> None:
        """Stop indexing (the table is emptied by the size update ``encode`` sends)."""
        if self._entries or self.indexing:
            self.indexing = False
            self._entries.clear()
            self._heads.clear()
            self._table_used = 0

    @property
    def header_table_size(self) -> int:
        """The peer's SETTINGS_HEADER_TABLE_SIZE as last set by h2; we always use 0 of it."""
        return self._table_size

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        value = int(value)
        if value != self._table_size:
            self._table_size = value
            self._size_update_pending = True

    def encode(self, headers: HeadersArg, huffman: bool = True) -> bytes:
        """Encode a header list (as ``hpack.Encoder.encode`` accepts it) into one header block."""
        if isinstance(headers, dict):
            items: Iterable[Any] = sorted(
                headers.items(), key=lambda kv: not _to_bytes(kv[0]).startswith(b":")
            )
        else:
            items = headers
        cache = _field_cache[1 if huffman else 0]
        parts = []
        if self._size_update_pending:
            parts.append(_SIZE_UPDATE_0)
            self._forget()  # the update empties the peer's table: request_block indexes no more
        append = parts.append
        for header in items:
            cls = header.__class__
            if cls is HeaderTuple or (cls is tuple and len(header) == 2):
                name, value = header
                if type(name) is not bytes or type(value) is not bytes:
                    name, value = _to_bytes(name), _to_bytes(value)
                    header = (name, value)  # cache keys are bytes only: (b"x", 1) != (b"x", True)
                append(cache.get(header) or _memo_field(cache, header, huffman))
                continue
            if isinstance(header, HeaderTuple):
                sensitive = not header.indexable
            else:
                sensitive = len(header) > 2 and bool(header[2])
            append(_encode_field(_to_bytes(header[0]), _to_bytes(header[1]), sensitive, huffman))
        self._size_update_pending = False
        return b"".join(parts)

    def add(self, to_add: tuple[bytes, bytes], sensitive: bool, huffman: bool = False) -> bytes:
        """One field, as hpack's ``Encoder.add`` but without indexing."""
        return _encode_field(_to_bytes(to_add[0]), _to_bytes(to_add[1]), sensitive, huffman)


def install(conn: H2Connection) -> None:
    """Put a CachingDecoder and a StatelessEncoder on ``conn``, carrying its HPACK state over.

    Best called right after creating the connection; later it is still correct: the decoder takes
    over the old one's limits and dynamic table, and a pending table size change carries over.
    """
    old_decoder, old_encoder = conn.decoder, conn.encoder
    if not isinstance(old_decoder, CachingDecoder):
        decoder = CachingDecoder(old_decoder.max_header_list_size)
        decoder.max_allowed_table_size = old_decoder.max_allowed_table_size
        decoder.header_table = old_decoder.header_table
        conn.decoder = decoder
    if not isinstance(old_encoder, StatelessEncoder):
        encoder = StatelessEncoder()
        encoder._table_size = old_encoder.header_table_size
        encoder._size_update_pending = bool(
            old_encoder.header_table.resized or old_encoder.table_size_changes
        )
        conn.encoder = encoder
