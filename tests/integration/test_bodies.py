"""Request bodies and response decoding against hypercorn (and scripted servers for the faults)."""

from __future__ import annotations

import hashlib
import io
import pathlib
import threading
import tracemalloc
from collections.abc import AsyncIterator, Callable

import pytest

import hyperhttp
from hyperhttp import MultipartEncoder, MultipartFile
from tests.servers.faults import Conn, Script, ScriptedServer, answer_once, respond
from tests.servers.hypercorn_app import HypercornServer, compress, pattern


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def post_json(client: hyperhttp.Client, url: str, **kwargs: object) -> dict[str, object]:
    response = await client.post(url, **kwargs)  # type: ignore[arg-type]
    await response.aread()
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


async def test_every_file_shape_arrives_intact(
    hypercorn: HypercornServer, tmp_path: pathlib.Path
) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(pattern(200_000))
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"line\n" * 1000)
    with open(notes, "rb") as handle:
        async with hyperhttp.Client(base_url=hypercorn.url) as client:
            result = await post_json(
                client,
                "/multipart",
                data={"user": "alice", "note": "report"},
                files={
                    "avatar": ("me.png", b"\x89PNG...", "image/png"),
                    "report": photo,
                    "path_str": str(notes),
                    "handle": handle,
                    "raw": pattern(1000),
                    "pair": ("a.json", b"{}"),
                    "spelled": MultipartFile(path=photo, content_type="image/x-test"),
                },
            )
    assert result["transfer-encoding"] is None  # every size known: Content-Length, not chunked
    assert result["content-length"] is not None
    parts = result["parts"]
    assert isinstance(parts, list)
    summary = [(p["disposition"], p["content-type"], p["length"], p["sha256"]) for p in parts]
    assert summary == [
        ('form-data; name="user"', None, 5, sha(b"alice")),
        ('form-data; name="note"', None, 6, sha(b"report")),
        ('form-data; name="avatar"; filename="me.png"', "image/png", 7, sha(b"\x89PNG...")),
        (
            'form-data; name="report"; filename="photo.png"',
            "image/png",
            200_000,
            sha(pattern(200_000)),
        ),
        (
            'form-data; name="path_str"; filename="notes.txt"',
            "text/plain",
            5000,
            sha(b"line\n" * 1000),
        ),
        (
            'form-data; name="handle"; filename="notes.txt"',
            "text/plain",
            5000,
            sha(b"line\n" * 1000),
        ),
        (
            'form-data; name="raw"; filename="upload"',
            "application/octet-stream",
            1000,
            sha(pattern(1000)),
        ),
        ('form-data; name="pair"; filename="a.json"', "application/json", 2, sha(b"{}")),
        (
            'form-data; name="spelled"; filename="photo.png"',
            "image/x-test",
            200_000,
            sha(pattern(200_000)),
        ),
    ]


async def test_a_part_of_unknown_size_makes_the_body_chunked(hypercorn: HypercornServer) -> None:
    class Pipe:
        def __init__(self) -> None:
            self.data = io.BytesIO(pattern(300_000))

        def read(self, size: int = -1) -> bytes:
            return self.data.read(size)

    async with hyperhttp.Client(base_url=hypercorn.url) as client:
        result = await post_json(client, "/multipart", files={"stream": ("s.bin", Pipe())})
    assert result["transfer-encoding"] == "chunked"
    assert result["content-length"] is None
    parts = result["parts"]
    assert isinstance(parts, list)
    assert parts[0]["sha256"] == sha(pattern(300_000))


async def test_an_encoder_as_content_sets_its_own_fields(hypercorn: HypercornServer) -> None:
    encoder = MultipartEncoder({"a": "1"}, {"f": ("x.txt", b"xyz")}, boundary="fixed-boundary")
    async with hyperhttp.Client(base_url=hypercorn.url) as client:
        result = await post_json(client, "/hash", content=encoder)
    assert result["content-type"] == "multipart/form-data; boundary=fixed-boundary"
    assert result["content-length"] == str(encoder.content_length)
    assert result["sha256"] == sha(encoder.to_bytes())


async def test_content_as_files_and_iterators(
    hypercorn: HypercornServer, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "body.bin"
    path.write_bytes(pattern(3_000_000))

    class AsyncFile:  # like aiofiles: an async read(), no size
        def __init__(self, data: bytes) -> None:
            self.buffer = io.BytesIO(data)

        async def read(self, size: int = -1) -> bytes:
            return self.buffer.read(size)

    def sync_chunks() -> object:
        yield from (pattern(10), pattern(20))

    async with hyperhttp.Client(base_url=hypercorn.url) as client:
        with open(path, "rb") as handle:
            result = await post_json(client, "/hash", content=handle)
        assert result["content-length"] == "3000000" and result["transfer-encoding"] is None
        assert result["sha256"] == sha(pattern(3_000_000))

        result = await post_json(client, "/hash", content=io.BytesIO(b"in memory"))
        assert result["content-length"] == "9" and result["sha256"] == sha(b"in memory")

        result = await post_json(client, "/hash", content=AsyncFile(pattern(500_000)))
        assert result["transfer-encoding"] == "chunked"
        assert result["sha256"] == sha(pattern(500_000))

        result = await post_json(client, "/hash", content=sync_chunks())
        assert result["transfer-encoding"] == "chunked"
        assert result["sha256"] == sha(pattern(10) + pattern(20))


async def test_a_large_bytes_body_is_sent_without_copies(hypercorn: HypercornServer) -> None:
    body = pattern(1000) * 64 * 1024  # 64 MB
    async with hyperhttp.Client(base_url=hypercorn.url) as client:
        await post_json(client, "/hash", content=b"warm-up")
        tracemalloc.start()
        try:
            result = await post_json(client, "/hash", content=memoryview(body))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert result["length"] == len(body) and result["sha256"] == sha(body)
    # Peak Python allocations while sending (the server thread's included): far below the body.
    assert peak < 16 * 1024 * 1024, peak


@pytest.mark.parametrize("sent", [5, 15], ids=["short", "long"])
async def test_a_stream_that_lies_about_its_length_fails_and_is_not_reused(
    hypercorn: HypercornServer, sent: int
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"x" * sent

    async with hyperhttp.Client(base_url=hypercorn.url) as client:
        with pytest.raises(hyperhttp.LocalProtocolError, match="Content-Length"):
            await client.post("/hash", content=body(), headers={"Content-Length": "10"})
        stats = client.get_pool_stats()[hypercorn.url]
        assert stats["connections"] == 0 and stats["idle"] == 0
        response = await client.post("/hash", content=b"0123456789")  # a fresh connection works
        await response.aread()
        assert response.json()["length"] == 10


@pytest.mark.parametrize(
    "codings", ["gzip", "deflate", "rawdeflate", "br", "zstd", "gzip,br", "br,gzip,zstd"]
)
async def test_content_codings_are_undone_as_the_body_streams(
    hypercorn: HypercornServer, codings: str
) -> None:
    url = f"{hypercorn.url}/compressed/{codings}/300000"
    async with hyperhttp.Client() as client:
        response = await client.get(url)
        pieces = [piece async for piece in response.aiter_bytes()]
        assert b"".join(pieces) == pattern(300_000)
        raw = await client.get(url)
        wire = b"".join([piece async for piece in raw.aiter_raw()])
        expected = pattern(300_000)
        for coding in codings.split(","):
            expected = compress(coding, expected)
        assert len(wire) == len(expected)  # aiter_raw: the bytes as sent, still encoded
        header = response.headers["content-encoding"]
        assert header == codings.replace("rawdeflate", "deflate").replace(",", ", ")


async def test_an_unknown_coding_passes_through_with_its_header(hypercorn: HypercornServer) -> None:
    async with hyperhttp.Client() as client:
        response = await client.get(f"{hypercorn.url}/compressed/x-custom/1000")
        assert await response.aread() == pattern(1000)  # x-custom leaves the bytes as they are
        assert response.headers["content-encoding"] == "x-custom"


async def test_a_gzip_bomb_is_stopped_at_the_limit(hypercorn: HypercornServer) -> None:
    async with hyperhttp.Client(
        max_decompressed_size=50 * 1024 * 1024, max_decompression_ratio=None
    ) as client:
        response = await client.get(f"{hypercorn.url}/gzip-bomb")
        with pytest.raises(hyperhttp.DecompressionError, match="max_decompressed_size"):
            await response.aread()
        assert client.get_pool_stats()[hypercorn.url]["idle"] == 0  # not returned half-read


async def test_the_default_ratio_limit_stops_a_bomb(hypercorn: HypercornServer) -> None:
    async with hyperhttp.Client() as client:
        response = await client.get(f"{hypercorn.url}/gzip-bomb")
        total = 0
        with pytest.raises(hyperhttp.DecompressionError, match="max_decompression_ratio"):
            async for piece in response.aiter_bytes():
                total += len(piece)
        assert total < 64 * 1024 * 1024  # stopped a little past the 10 MiB floor, not at 10 GiB


async def test_max_response_size(hypercorn: HypercornServer) -> None:
    async with hyperhttp.Client(base_url=hypercorn.url, max_response_size=50_000) as client:
        response = await client.get("/bytes/100000")  # Content-Length says too much: no read
        with pytest.raises(hyperhttp.ResponseTooLarge, match="100000 bytes"):
            await response.aread()
        response = await client.get("/chunked/100000")  # no length: stopped as it passes
        with pytest.raises(hyperhttp.ResponseTooLarge):
            async for _ in response.aiter_bytes():
                pass
        response = await client.get("/bytes/50000")
        assert len(await response.aread()) == 50_000


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd", "deflate"])
async def test_truncated_and_corrupt_compressed_bodies(
    scripted: Callable[[Script], ScriptedServer], coding: str
) -> None:
    whole = compress(coding, pattern(100_000))
    truncated = scripted(
        answer_once(
            respond(body=whole[: len(whole) // 2], headers=(f"Content-Encoding: {coding}",))
        )
    )
    corrupt = scripted(
        answer_once(respond(body=b"\x00garbage" * 50, headers=(f"Content-Encoding: {coding}",)))
    )
    async with hyperhttp.Client() as client:
        response = await client.get(truncated.url)
        with pytest.raises(hyperhttp.DecompressionError, match="truncated|corrupt"):
            await response.aread()
        response = await client.get(corrupt.url)
        with pytest.raises(hyperhttp.DecompressionError, match="corrupt"):
            await response.aread()


async def test_utf8_split_across_chunks_arrives_whole(
    scripted: Callable[[Script], ScriptedServer],
) -> None:
    text = "naïve café €uro\r\nsecond line\rthird\n"
    data = text.encode("utf-8")
    split = data.index("€".encode()) + 1  # inside the three bytes of €
    first_seen = threading.Event()

    def script(conn: Conn) -> None:
        conn.read_request()
        conn.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n" % (split, data[:split])
        )
        conn.wait(first_seen)  # the rest only once the client has handled the first piece
        rest = data[split:]
        conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))

    server = scripted(script)
    async with hyperhttp.Client() as client:
        response = await client.get(server.url)
        pieces = []
        async for piece in response.aiter_text():
            pieces.append(piece)
            first_seen.set()
        assert "".join(pieces) == text
        assert pieces[0] == "naïve café "  # the half of € waited for the rest


async def test_lines_split_on_every_ending(scripted: Callable[[Script], ScriptedServer]) -> None:
    server = scripted(answer_once(respond(body=b"one\r\ntwo\rthree\n\nfour")))
    async with hyperhttp.Client() as client:
        response = await client.get(server.url)
        assert [line async for line in response.aiter_lines()] == [
            "one",
            "two",
            "three",
            "",
            "four",
        ]
        assert response.encoding == "utf-8"
