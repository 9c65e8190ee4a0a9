"""One bulk measurement: one client uploads a file, or downloads a large body, over one connection.

Run as a child process by ``perf/run.py --scenario upload|download`` (see ``perf/bulk.py``):

    python perf/transfer.py --mode upload --lib httpx --url http://127.0.0.1:P/upload \\
        --file /tmp/.../upload.bin --repeat 10
    python perf/transfer.py --mode download --lib ceiling --url http://127.0.0.1:P/bytes/N \\
        --expected N --warmup-url http://127.0.0.1:P/bytes/1048576

It pins itself to CPU 0, makes one client, does one untimed warm-up transfer (upload: the whole
file; download: ``--warmup-url``), then ``--repeat`` timed transfers one after the other on the
same client, and prints one JSON line: the median transfer's MiB/s (and the overall one), the
process's CPU time (all threads, user + system) per GiB moved in the timed transfers, its RSS
before the first transfer and its peak RSS (VmHWM), and what the server saw.

hyperhttp 2.1.0 downloads with ``max_decompressed_size=None``: it caps every body it decodes,
identity ones too, at 64 MiB by default.

Every upload is checked against the sink's answer (``perf/sink.py``): the body was read to its
declared end, it was multipart with exactly one file part of the file's size (and, with
``hyperhttp+data``, a field ``user`` = ``alice``), and which connection carried it. Every download
counts its bytes and must get exactly ``--expected``.

``hyperhttp-2.1.0`` is the release on PyPI, installed by ``perf/bulk.py`` into a directory of its
own (``--hyperhttp-dir``): that directory goes first on ``sys.path``, the repository's
editable-install finder is taken off ``sys.meta_path``, and the imported module must be 2.1.0 from
that directory. ``hyperhttp@<short sha>`` (``perf/run.py --baseline REV``) is the ``hyperhttp``
client importing the same way from the revision's export (``perf/baseline.py``); either refuses
to measure if any hyperhttp module came from elsewhere.
A client whose library raises ``NotImplementedError`` (hyperhttp's ``files=`` before multipart
lands) prints ``{"skipped": ...}`` and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from clients import _peak_rss_mib, hyperhttp_origin, pinned_loop, runs_as, use_hyperhttp_from

MiB = 1024 * 1024
GiB = 1024 * MiB
Upload = Callable[[], Awaitable[dict[str, Any]]]  # returns the sink's JSON answer
Download = Callable[[str], Awaitable[int]]  # returns the number of body bytes read
Close = Callable[[], Awaitable[None]]
AIOHTTP_CHUNK = 64 * 1024  # resp.content.iter_chunked(n) needs an n
CEILING_BUFFER = 256 * 1024  # the BufferedProtocol ceiling's buffer (uvloop's own read size)


def _cpu_seconds() -> float:
    """CPU time of this process so far, all threads, user + system (the kernel's copies)."""
    times = os.times()
    return times.user + times.system


def _rss_now_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# -- upload -------------------------------------------------------------------------------------


def _hyperhttp_upload(url: str, path: str, with_data: bool) -> tuple[Upload, Close]:
    import hyperhttp

    client = hyperhttp.Client(timeout=300.0)

    async def upload() -> dict[str, Any]:
        kwargs: dict[str, Any] = {"files": {"file": pathlib.Path(path)}}
        if with_data:
            kwargs["data"] = {"user": "alice"}
        response = await client.post(url, **kwargs)
        body = await response.aread()
        if response.status_code != 200:
            raise RuntimeError(f"status {response.status_code}: {body[:200]!r}")
        answer: dict[str, Any] = json.loads(body)
        return answer

    return upload, client.aclose


def _httpx_upload(url: str, path: str) -> tuple[Upload, Close]:
    import httpx

    client = httpx.AsyncClient(timeout=300.0)

    async def upload() -> dict[str, Any]:
        with open(path, "rb") as file:
            response = await client.post(url, files={"file": file})
        if response.status_code != 200:
            raise RuntimeError(f"status {response.status_code}")
        answer: dict[str, Any] = response.json()
        return answer

    return upload, client.aclose


def _aiohttp_upload(url: str, path: str) -> tuple[Upload, Close]:
    import aiohttp

    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300))

    async def upload() -> dict[str, Any]:
        with open(path, "rb") as file:
            form = aiohttp.FormData()
            form.add_field(
                "file", file, filename=os.path.basename(path),
                content_type="application/octet-stream",
            )  # fmt: skip
            async with session.post(url, data=form) as response:
                body = await response.read()
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}")
        answer: dict[str, Any] = json.loads(body)
        return answer

    return upload, session.close


async def _ceiling_upload(url: str, path: str) -> tuple[Upload, Close]:
    """Raw asyncio: the multipart framing by hand, the file in 1 MiB reads, write flow control."""
    from urllib.parse import urlsplit

    import httptools

    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    boundary = "ceiling-" + os.urandom(8).hex()
    preamble = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{os.path.basename(path)}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    closing = f"\r\n--{boundary}--\r\n".encode()

    class Connection(asyncio.Protocol):
        def __init__(self) -> None:
            self.parser = httptools.HttpResponseParser(self)
            self.body: list[bytes] = []
            self.done: asyncio.Future[bytes] | None = None
            self.writable: asyncio.Future[None] | None = None

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.parser.feed_data(data)

        def on_body(self, body: bytes) -> None:
            self.body.append(body)

        def on_message_complete(self) -> None:
            if self.done is not None:
                self.done.set_result(b"".join(self.body))
            self.body = []

        def pause_writing(self) -> None:
            self.writable = loop.create_future()

        def resume_writing(self) -> None:
            if self.writable is not None:
                self.writable.set_result(None)
                self.writable = None

    _, connection = await loop.create_connection(Connection, parts.hostname, parts.port)

    async def upload() -> dict[str, Any]:
        size = os.stat(path).st_size
        length = len(preamble) + size + len(closing)
        connection.done = loop.create_future()
        connection.transport.write(
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {length}\r\n\r\n".encode()
            + preamble
        )
        with open(path, "rb", buffering=0) as file:
            while chunk := file.read(MiB):
                connection.transport.write(chunk)
                if connection.writable is not None:
                    await connection.writable
        connection.transport.write(closing)
        answer: dict[str, Any] = json.loads(await connection.done)
        return answer

    async def close() -> None:
        connection.transport.close()

    return upload, close


async def _upload_client(lib: str, url: str, path: str) -> tuple[Upload, Close]:
    if lib in ("hyperhttp", "hyperhttp-2.1.0"):
        return _hyperhttp_upload(url, path, with_data=False)
    if lib in ("hyperhttp+data", "hyperhttp-2.1.0+data"):
        return _hyperhttp_upload(url, path, with_data=True)
    if lib == "httpx":
        return _httpx_upload(url, path)
    if lib == "aiohttp":
        return _aiohttp_upload(url, path)
    if lib == "ceiling":
        return await _ceiling_upload(url, path)
    raise SystemExit(f"unknown upload client {lib}")


def check_upload(answer: dict[str, Any], size: int, with_data: bool) -> None:
    """The sink read the whole body, and it held one whole file part (and ``user``=``alice``)."""
    if answer.get("content_length") is not None and answer["received"] != answer["content_length"]:
        raise RuntimeError(f"sink read {answer['received']} of {answer['content_length']} bytes")
    multipart = answer.get("multipart") or {}
    parts = multipart.get("parts") or []
    files = [p for p in parts if "filename" in p]
    if len(files) != 1 or files[0].get("name") != "file" or files[0].get("size") != size:
        raise RuntimeError(f"expected one file part 'file' of {size} bytes, sink saw {parts}")
    if not multipart.get("closed"):
        raise RuntimeError("the multipart body has no closing delimiter")
    fields = [p for p in parts if "filename" not in p]
    wanted = [{"name": "user", "value": "alice"}] if with_data else []
    seen = [{"name": p.get("name"), "value": p.get("value")} for p in fields]
    if seen != wanted:
        raise RuntimeError(f"expected fields {wanted}, sink saw {fields}")


# -- download -----------------------------------------------------------------------------------


def _hyperhttp_download(legacy: bool) -> tuple[Download, Close]:
    import hyperhttp

    # 2.1.0 caps every body it decodes, identity ones too, at max_decompressed_size (64 MiB by
    # default): a bigger download fails unless the cap is lifted.
    options: dict[str, Any] = {"max_decompressed_size": None} if legacy else {}
    client = hyperhttp.Client(timeout=300.0, **options)

    async def download(url: str) -> int:
        response = await client.stream("GET", url)
        received = 0
        try:
            if response.status_code != 200:
                raise RuntimeError(f"status {response.status_code}")
            async for chunk in response.aiter_bytes():
                received += len(chunk)
        finally:
            await response.aclose()
        return received

    return download, client.aclose


def _httpx_download() -> tuple[Download, Close]:
    import httpx

    client = httpx.AsyncClient(timeout=300.0)

    async def download(url: str) -> int:
        received = 0
        async with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise RuntimeError(f"status {response.status_code}")
            async for chunk in response.aiter_bytes():
                received += len(chunk)
        return received

    return download, client.aclose


def _aiohttp_download() -> tuple[Download, Close]:
    import aiohttp

    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300))

    async def download(url: str) -> int:
        received = 0
        async with session.get(url) as response:
            if response.status != 200:
                raise RuntimeError(f"status {response.status}")
            async for chunk in response.content.iter_chunked(AIOHTTP_CHUNK):
                received += len(chunk)
        return received

    return download, session.close


async def _ceiling_download(url: str, buffered: bool) -> tuple[Download, Close]:
    """Raw asyncio: one keep-alive connection; the head parsed by hand, the body only counted.

    ``buffered``: an ``asyncio.BufferedProtocol`` reading into one reused 256 KiB buffer,
    instead of ``data_received`` getting a new ``bytes`` per read.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    loop = asyncio.get_running_loop()

    class Counter:
        def __init__(self) -> None:
            self.head = b""
            self.remaining = -1  # body bytes still to come; -1 while the head is incomplete
            self.received = 0
            self.done: asyncio.Future[int] | None = None

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def connection_lost(self, exc: Exception | None) -> None:
            if self.done is not None and not self.done.done():
                self.done.set_exception(exc or ConnectionError("closed by the server"))

        def eof_received(self) -> None:
            return None

        def count(self, n: int, data: Any) -> None:
            if self.remaining < 0:
                self.head += bytes(data[:n])
                end = self.head.find(b"\r\n\r\n")
                if end < 0:
                    return
                length = None
                for line in self.head[:end].split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if length is None:
                    raise RuntimeError("no Content-Length")
                body = len(self.head) - end - 4
                self.head = b""
                self.remaining = length - body
                self.received = body
            else:
                self.remaining -= n
                self.received += n
            if self.remaining == 0 and self.done is not None:
                self.remaining = -1
                self.done.set_result(self.received)

    class Plain(Counter, asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            self.count(len(data), data)

    class Buffered(Counter, asyncio.BufferedProtocol):
        buffer = bytearray(CEILING_BUFFER)

        def get_buffer(self, sizehint: int) -> bytearray:
            return self.buffer

        def buffer_updated(self, nbytes: int) -> None:
            self.count(nbytes, self.buffer)

    factory: type[Counter] = Buffered if buffered else Plain
    _, connection = await loop.create_connection(factory, parts.hostname, parts.port)

    async def download(url: str) -> int:
        path = urlsplit(url).path
        connection.done = loop.create_future()
        connection.transport.write(
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: ceiling\r\n\r\n".encode()
        )
        return await connection.done

    async def close() -> None:
        connection.transport.close()

    return download, close


async def _download_client(lib: str, url: str) -> tuple[Download, Close]:
    if lib in ("hyperhttp", "hyperhttp-2.1.0"):
        return _hyperhttp_download(legacy=lib == "hyperhttp-2.1.0")
    if lib == "httpx":
        return _httpx_download()
    if lib == "aiohttp":
        return _aiohttp_download()
    if lib in ("ceiling", "ceiling-buffered"):
        return await _ceiling_download(url, buffered=lib == "ceiling-buffered")
    raise SystemExit(f"unknown download client {lib}")


# -- the measurement ----------------------------------------------------------------------------


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"lib": args.lib, "mode": args.mode}
    lib = runs_as(args.lib)  # a baseline is the hyperhttp client
    timings: list[float] = []  # seconds per timed transfer
    moved = 0
    transfer = 0  # bytes per timed transfer
    if args.mode == "upload":
        size = os.stat(args.file).st_size
        with_data = args.lib.endswith("+data")
        upload, close = await _upload_client(lib, args.url, args.file)
        result["rss_before_mib"] = _rss_now_mib()
        connections: set[int] = set()
        framing: set[str] = set()
        transfer = size
        try:
            for attempt in range(1 + args.repeat):  # the first one is the warm-up
                if attempt == 1:
                    cpu = _cpu_seconds()
                began = time.perf_counter()
                answer = await upload()
                elapsed = time.perf_counter() - began
                check_upload(answer, size, with_data)
                connections.add(answer["connection"])
                framing.add(answer["framing"])
                if attempt:
                    timings.append(elapsed)
                    moved += size
            cpu = _cpu_seconds() - cpu
        finally:
            await close()
        result.update(connections=len(connections), framing=",".join(sorted(framing)))
    else:
        download, close = await _download_client(lib, args.url)
        result["rss_before_mib"] = _rss_now_mib()
        transfer = args.expected
        try:
            await download(args.warmup_url or args.url)
            cpu = _cpu_seconds()
            for _ in range(args.repeat):
                began = time.perf_counter()
                received = await download(args.url)
                timings.append(time.perf_counter() - began)
                if received != args.expected:
                    raise RuntimeError(f"read {received} bytes, expected {args.expected}")
                moved += received
            cpu = _cpu_seconds() - cpu
        finally:
            await close()
    speeds = [transfer / MiB / seconds for seconds in timings]
    result.update(
        bytes=moved,
        seconds=timings,
        mib_s=statistics.median(speeds),  # the median transfer: robust to a slow moment
        mib_s_overall=moved / MiB / sum(timings),
        cpu_s_per_gib=cpu / (moved / GiB),
        rss_mib=_peak_rss_mib(),
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", required=True, choices=["upload", "download"])
    parser.add_argument("--lib", required=True)
    parser.add_argument("--loop", default="uvloop", choices=["asyncio", "uvloop"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--file", help="upload: the file to send")
    parser.add_argument("--expected", type=int, default=0, help="download: the body's length")
    parser.add_argument("--warmup-url", help="download: the untimed first GET (default: --url)")
    parser.add_argument("--repeat", type=int, default=1, help="timed transfers")
    parser.add_argument(
        "--hyperhttp-dir", help="where hyperhttp 2.1.0 or a hyperhttp@SHA imports hyperhttp from"
    )
    args = parser.parse_args()
    directory = use_hyperhttp_from(args.lib, args.hyperhttp_dir)
    loop = pinned_loop(args.loop)
    try:
        result = loop.run_until_complete(measure(args))
    except NotImplementedError as exc:
        result = {"lib": args.lib, "skipped": f"NotImplementedError: {exc}"}
    result["loop"] = args.loop
    if args.lib.startswith("hyperhttp"):
        result.update(hyperhttp_origin(directory))
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
