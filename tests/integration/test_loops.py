"""The suite really runs on both event loops."""

from __future__ import annotations

import asyncio

import pytest
import uvloop


async def test_each_test_runs_on_asyncio_and_on_uvloop(request: pytest.FixtureRequest) -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, uvloop.Loop) == request.node.name.endswith("[uvloop]")
