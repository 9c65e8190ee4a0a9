"""Headers: a case-insensitive multi-dict that keeps field order and repeated fields.

Response headers arrive from the parser as raw ``(bytes, bytes)`` pairs and stay that way until
someone reads them (RFC 9110 section 5.3: repeated fields keep their order; Set-Cookie must never
be folded). Request headers are validated and encoded once, where they are turned into bytes.
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator, Mapping, MutableMapping, Sequence, Tuple, Union

from .exceptions import LocalProtocolError

__all__ = ["Headers", "HeadersInput", "check_header_name", "check_header_value"]

HeaderPair = Tuple[Union[str, bytes], Union[str, bytes]]
HeadersInput = Union[
    "Headers",
    Mapping[str, str],
    Mapping[bytes, bytes],
    Sequence[HeaderPair],
    None,
]

# RFC 9110 section 5.6.2: field-name = token.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALID_NAMES: dict[bytes, None] = {}
_VALID_NAMES_MAX = 4096


def _decode(value: bytes) -> str:
    """Decode a field as ASCII when it is, else UTF-8, else Latin-1 (which never fails)."""
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")


def _encode(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def check_header_name(name: bytes) -> None:
    """Refuse a field name that is not a token (RFC 9110 section 5.1)."""
    if name in _VALID_NAMES:
        return
    if _TOKEN.fullmatch(name) is None:
        raise LocalProtocolError(f"invalid header name {name!r}")
    if len(_VALID_NAMES) >= _VALID_NAMES_MAX:
        _VALID_NAMES.clear()
    _VALID_NAMES[name] = None


def check_header_value(name: bytes, value: bytes) -> None:
    """Refuse CR, LF and NUL in a field value: they would split or smuggle a message (RFC 9110 5.5)."""
    if b"\r" in value or b"\n" in value or b"\0" in value:
        raise LocalProtocolError(f"invalid header value for {name.decode('latin-1')!r}: {value!r}")


class Headers(MutableMapping[str, str]):
    """Case-insensitive multi-dict of HTTP fields.

    ``headers["a"]`` joins repeated fields with ``", "``; ``get_list("a")`` keeps them apart;
    ``multi_items()`` gives every field in order; ``raw`` gives the bytes as sent or received.
    Names and values are not checked here; a request's are checked when it is sent.

    :param headers: a ``Headers`` (copied), a mapping, or ``(name, value)`` pairs, of str or
        bytes; None for none.
    :raises TypeError: when a value is neither str nor bytes.
    """

    __slots__ = ("_raw", "_items")

    def __init__(self, headers: HeadersInput = None) -> None:
        self._raw: list[tuple[bytes, bytes]] | None = None
        # (lower-cased name, name as given, value)
        self._items: list[tuple[str, str, str]] = []
        if headers is None:
            return
        if isinstance(headers, Headers):
            self._items = list(headers._decoded())
            return
        pairs: Iterable[HeaderPair]
        if isinstance(headers, Mapping):
            pairs = headers.items()
        else:
            pairs = headers
        items = self._items
        for name, value in pairs:
            if isinstance(name, bytes):
                name = _decode(name)
            if isinstance(value, bytes):
                value = _decode(value)
            elif not isinstance(value, str):
                raise TypeError(f"header value must be str or bytes, not {type(value).__name__}")
            items.append((name.lower(), name, value))

    @classmethod
    def from_raw(cls, raw: list[tuple[bytes, bytes]]) -> Headers:
        """Wrap raw pairs from the wire without decoding them yet (the parser's fast path).

        :param raw: the ``(name, value)`` pairs, as bytes; the list is kept, not copied.
        """
        headers = cls.__new__(cls)
        headers._raw = raw
        headers._items = []
        return headers

    def _decoded(self) -> list[tuple[str, str, str]]:
        raw = self._raw
        if raw is not None:
            self._raw = None
            items = self._items = []
            for name_b, value_b in raw:
                name = _decode(name_b)
                items.append((name.lower(), name, _decode(value_b)))
        return self._items

    # -- reading ---------------------------------------------------------------------------

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """Every field as ``(name, value)`` bytes, in order."""
        if self._raw is not None:
            return list(self._raw)
        return [(_encode(name), _encode(value)) for _, name, value in self._items]

    def get_list(self, key: str) -> list[str]:
        """Return every value of a field, in order, without joining repeated fields.

        :param key: the field name, in any case.
        """
        lower = key.lower()
        return [value for k, _, value in self._decoded() if k == lower]

    def multi_items(self) -> list[tuple[str, str]]:
        """Return every ``(name, value)`` pair in order, names as they were given or received."""
        return [(name, value) for _, name, value in self._decoded()]

    def __getitem__(self, key: str) -> str:
        lower = key.lower()
        values = [value for k, _, value in self._decoded() if k == lower]
        if not values:
            raise KeyError(key)
        return values[0] if len(values) == 1 else ", ".join(values)

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        """Return a field's value (repeated fields joined with ``", "``), or ``default``.

        :param key: the field name, in any case.
        :param default: what to return when the field is absent.
        """
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        lower = key.lower()
        return any(k == lower for k, _, _ in self._decoded())

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for k, _, _ in self._decoded():
            seen[k] = None
        return iter(seen)

    def __len__(self) -> int:
        return len({k for k, _, _ in self._decoded()})

    # -- writing ---------------------------------------------------------------------------

    def __setitem__(self, key: str, value: str) -> None:
        """Replace every field called ``key`` with one field, at the first one's position."""
        lower = key.lower()
        items = self._decoded()
        index = next((i for i, (k, _, _) in enumerate(items) if k == lower), None)
        if index is None:
            items.append((lower, key, value))
            return
        items[index] = (lower, key, value)
        self._items = [item for i, item in enumerate(items) if i <= index or item[0] != lower]

    def __delitem__(self, key: str) -> None:
        lower = key.lower()
        items = self._decoded()
        kept = [item for item in items if item[0] != lower]
        if len(kept) == len(items):
            raise KeyError(key)
        self._items = kept

    def add(self, key: str, value: str) -> None:
        """Append a field, keeping any existing fields of that name (a repeated field).

        :param key: the field name.
        :param value: the field value.
        """
        self._decoded().append((key.lower(), key, value))

    def update(self, headers: HeadersInput = None, **kwargs: str) -> None:  # type: ignore[override]
        """Replace each named field with the value(s) given for it.

        :param headers: the fields, in any form the constructor takes.
        :param kwargs: more fields, by name.
        :raises TypeError: when a value in ``headers`` is neither str nor bytes.
        """
        other = Headers(headers)
        for lower in dict.fromkeys(k for k, _, _ in other._items):
            values = [(name, value) for k, name, value in other._items if k == lower]
            self[values[0][0]] = values[0][1]
            for name, value in values[1:]:
                self.add(name, value)
        for key, value in kwargs.items():
            self[key] = value

    def copy(self) -> Headers:
        """Return a copy; changes to either do not show in the other."""
        headers = Headers.__new__(Headers)
        headers._raw = self._raw
        headers._items = list(self._items)
        return headers

    # -- comparison and display ------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        try:
            other_headers = other if isinstance(other, Headers) else Headers(other)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
        mine = sorted((k, v) for k, _, v in self._decoded())
        theirs = sorted((k, v) for k, _, v in other_headers._decoded())
        return mine == theirs

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self.multi_items()!r})"
