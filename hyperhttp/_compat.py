"""Optional speedups, imported once: the code works when any of them is missing."""

from __future__ import annotations

import json as _stdlib_json
from typing import Any, Callable

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised by the no-speedups test in a subprocess
    _orjson = None

try:
    import brotli as _brotli
except ImportError:  # pragma: no cover
    _brotli = None

try:
    import zstandard as _zstandard
except ImportError:  # pragma: no cover
    _zstandard = None

try:
    import uvloop as _uvloop
except ImportError:  # pragma: no cover
    _uvloop = None

HAS_ORJSON = _orjson is not None
HAS_BROTLI = _brotli is not None
HAS_ZSTANDARD = _zstandard is not None
HAS_UVLOOP = _uvloop is not None

brotli = _brotli
zstandard = _zstandard
uvloop = _uvloop

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
            return _orjson_dumps(obj, option=_orjson_options)
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
