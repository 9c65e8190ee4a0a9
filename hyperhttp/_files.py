"""Request bodies read from files: chunks read in a worker thread one ahead of the send, a file's
size from its position, and ``content=`` given an open file (sync, or async like aiofiles).
Multipart file parts (_multipart.py) read through the same helpers."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import IO, Any, AsyncGenerator

__all__ = [
    "DEFAULT_CHUNK",
    "binary",
    "file_body",
    "file_size",
    "read_ahead",
    "read_chunks",
    "seekable",
]

DEFAULT_CHUNK = 1 << 20  # file contents are read and sent in pieces of this size


async def read_ahead(
    handle: IO[bytes], chunk_size: int, owned: bool
) -> AsyncGenerator[bytes, None]:
    """A file's chunks, read in a worker thread one chunk ahead, so reading the disk overlaps
    sending the previous chunk. An ``owned`` handle is closed at the end (after a read still in
    flight, if the consumer stopped early)."""
    loop = asyncio.get_running_loop()
    read = handle.read
    pending: asyncio.Future[bytes] | None = loop.run_in_executor(None, read, chunk_size)
    try:
        while pending is not None:
            chunk = binary(await pending)
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


def binary(chunk: Any) -> bytes:
    if isinstance(chunk, str):
        raise TypeError("files must be opened in binary mode ('rb')")
    return chunk  # type: ignore[no-any-return]


def seekable(file: IO[bytes]) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, ValueError):
        return False


def read_chunks(handle: IO[bytes], chunk_size: int) -> Iterator[bytes]:
    read = handle.read
    while True:
        chunk = binary(read(chunk_size))
        if not chunk:
            return
        yield chunk


def file_size(file: IO[bytes]) -> int | None:
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


def file_body(
    file: Any, chunk_size: int = DEFAULT_CHUNK
) -> tuple[Iterable[bytes] | AsyncIterator[bytes], int | None]:
    """A request body read from an open binary file (sync, or async like aiofiles), and its
    length from the current position when that can be known (a regular file, BytesIO). A sync
    file larger than one chunk is read like a multipart file part: in a worker thread, one chunk
    ahead."""
    import inspect

    read = file.read
    size = file_size(file)
    if inspect.iscoroutinefunction(read):

        async def read_async() -> AsyncIterator[bytes]:
            while True:
                chunk = binary(await read(chunk_size))
                if not chunk:
                    return
                yield chunk

        return read_async(), size
    if size is not None and size <= chunk_size:
        return read_chunks(file, chunk_size), size
    return read_ahead(file, chunk_size, owned=False), size
