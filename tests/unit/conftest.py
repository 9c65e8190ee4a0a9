"""Fixtures shared by the unit tests."""

from __future__ import annotations

from typing import Iterator

import pytest

from hyperhttp._decoders import inflate_backends, use_inflate_backend


@pytest.fixture(params=inflate_backends())
def inflate_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each installed inflate backend in turn: zlib always, isal and zlib-ng when installed."""
    previous = use_inflate_backend(request.param)
    try:
        yield request.param
    finally:
        use_inflate_backend(previous)
