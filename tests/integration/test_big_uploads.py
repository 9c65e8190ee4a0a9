"""1 GiB uploads in constant memory, against hypercorn in its own process (so that the server's
memory is not counted in the test's)."""

from __future__ import annotations

import os
import pathlib
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import IO

import pytest

import hyperhttp
from hyperhttp import MultipartFile
from tests.servers.process import hypercorn_process, rss

GIB = 1 << 30
MIB = 1 << 20


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """hypercorn in its own process, so that its memory is not counted in the test's."""
    with hypercorn_process() as url:
        yield url


async def test_a_generated_gib_streams_in_constant_memory(server_url: str) -> None:
    chunk = bytes(range(256)) * 4096  # 1 MiB
    peak = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal peak
        for _ in range(GIB // MIB):
            peak = max(peak, rss())
            yield chunk

    expected = 0
    for _ in range(GIB // MIB):
        expected = zlib.crc32(chunk, expected)
    async with hyperhttp.Client(timeout=60) as client:
        base = rss()
        response = await client.post(
            f"{server_url}/hash?digest=crc32",
            content=body(),
            headers={"Content-Length": str(GIB)},
        )
        await response.aread()
    result = response.json()
    assert result["length"] == GIB and result["crc32"] == expected
    assert peak - base < 64 * MIB, (peak - base) / MIB


async def test_a_gib_file_part_streams_from_disk_in_constant_memory(
    server_url: str, tmp_path: pathlib.Path
) -> None:
    # Sparse (reads as zeros without taking space); on tmpfs when there is one, where reading it
    # costs next to nothing, so the time goes to what is under test.
    shm = pathlib.Path("/dev/shm")
    directory = shm if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path
    path = directory / f"hyperhttp-test-{os.getpid()}-{id(tmp_path)}.bin"
    with open(path, "wb") as handle:
        handle.truncate(GIB)
    peak = 0

    class Sampling:
        """The file, noting the process's memory at every read."""

        def __init__(self, handle: IO[bytes]) -> None:
            self.handle = handle

        def read(self, size: int = -1) -> bytes:
            nonlocal peak
            peak = max(peak, rss())
            return self.handle.read(size)

    with open(path, "rb") as handle:
        path.unlink()  # gone when the handle closes, whatever happens
        async with hyperhttp.Client(timeout=60) as client:
            base = rss()
            response = await client.post(
                f"{server_url}/multipart-size?digest=crc32",
                files={"big": MultipartFile(file=Sampling(handle), filename="big.bin", size=GIB)},
            )
            await response.aread()
    result = response.json()
    assert result["transfer-encoding"] is None  # the size was known: Content-Length
    assert int(result["content-length"]) == result["length"] > GIB
    assert peak - base < 64 * MIB, (peak - base) / MIB
