"""Optional speedups, imported once: the code works when any of them is missing."""

from __future__ import annotations

import importlib
import json as _stdlib_json
from typing import Any, Callable


def _optional(name: str) -> Any:
    """The module, or None when it is not installed (or blocked, as the no-speedups test does)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_orjson = _optional("orjson")
_brotli = _optional("brotli")
_zstandard = _optional("zstandard")
_uvloop = _optional("uvloop")
_isal_zlib = _optional("isal.isal_zlib")  # ISA-L's inflate, about twice zlib's speed

HAS_ORJSON = _orjson is not None
HAS_BROTLI = _brotli is not None
HAS_ZSTANDARD = _zstandard is not None
HAS_UVLOOP = _uvloop is not None
HAS_ISAL = _isal_zlib is not None

brotli = _brotli
zstandard = _zstandard
uvloop = _uvloop
isal_zlib = _isal_zlib

json_loads: Callable[[bytes | str], Any]
json_dumps: Callable[[Any], bytes]

if _orjson is not None:
    json_loads = _orjson.loads
    _orjson_dumps = _orjson.dumps
    _orjson_error = _orjson.JSONEncodeError
    _orjson_options = _orjson.OPT_NON_STR_KEYS

    def json_dumps(obj: Any) -> bytes:
        """Serialise with orjson; fall back to the stdlib for what orjson refuses (big ints)."""
        try:
            encoded: bytes = _orjson_dumps(obj, option=_orjson_options)
            return encoded
        except _orjson_error:
            return _stdlib_dumps(obj)
else:  # pragma: no cover
    json_loads = _stdlib_json.loads

    def json_dumps(obj: Any) -> bytes:
        return _stdlib_dumps(obj)


def _stdlib_dumps(obj: Any) -> bytes:
    return _stdlib_json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def install_uvloop() -> bool:
    """Make uvloop the event loop policy when it is installed; return whether it was."""
    if _uvloop is None:
        return False
    import asyncio

    asyncio.set_event_loop_policy(_uvloop.EventLoopPolicy())
    return True
