"""Multipart encoding, bounded decoding of bombs, and body limits, without a network."""

from __future__ import annotations

import functools
import gzip
import io
import pathlib
import zlib
from typing import Iterator

import brotli
import pytest
import zstandard

import hyperhttp
from hyperhttp import MultipartEncoder, MultipartFile
from hyperhttp._decoders import STEP, decoder_for
from hyperhttp._models import BodyLimits
from tests.servers.hypercorn_app import _bomb_blocks, parse_multipart


def _parts(encoder: MultipartEncoder) -> list[dict[str, object]]:
    body = encoder.to_bytes()
    if encoder.content_length is not None:
        assert len(body) == encoder.content_length
    return parse_multipart(encoder.content_type, body)


def test_every_file_shape_with_sizes_known_up_front(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF" * 1000)
    handle = open(path, "rb")
    encoder = MultipartEncoder(
        {"user": "alice", "tags": ["a", "b"], "n": 3},
        {
            "raw": b"raw bytes",
            "as_str": str(path),
            "as_path": path,
            "handle": handle,
            "pair": ("notes.txt", b"hello"),
            "triple": ("data.bin", b"\x00\x01", "application/x-custom"),
            "spelled": MultipartFile(path=path, filename="other.pdf"),
            "text": MultipartFile("some text", filename="t.md"),
        },
    )
    try:
        assert encoder.content_length is not None
        parts = _parts(encoder)
    finally:
        handle.close()
    dispositions = [p["disposition"] for p in parts]
    assert dispositions == [
        'form-data; name="user"',
        'form-data; name="tags"',
        'form-data; name="tags"',
        'form-data; name="n"',
        'form-data; name="raw"; filename="upload"',
        'form-data; name="as_str"; filename="report.pdf"',
        'form-data; name="as_path"; filename="report.pdf"',
        'form-data; name="handle"; filename="report.pdf"',
        'form-data; name="pair"; filename="notes.txt"',
        'form-data; name="triple"; filename="data.bin"',
        'form-data; name="spelled"; filename="other.pdf"',
        'form-data; name="text"; filename="t.md"',
    ]
    assert [p["text"] for p in parts[:4]] == ["alice", "a", "b", "3"]
    types = {p["disposition"].split('"')[1]: p["content-type"] for p in parts[4:]}  # type: ignore[union-attr]
    assert types == {
        "raw": "application/octet-stream",
        "as_str": "application/pdf",
        "as_path": "application/pdf",
        "handle": "application/pdf",
        "pair": "text/plain",
        "triple": "application/x-custom",
        "spelled": "application/pdf",
        "text": "text/markdown",
    }
    assert parts[-1]["text"] == "some text"
    assert all(p["length"] == 4000 for p in parts[5:8])


def test_names_and_filenames_cannot_break_out_of_their_header() -> None:
    encoder = MultipartEncoder(
        {'evil"\r\nX-Injected: 1': "v"},
        {"f": ('résumé "final"\r\n.pdf', b"x")},
    )
    head = encoder.to_bytes().split(b"\r\n\r\n")[0]
    assert b"X-Injected: 1\r\n" not in encoder.to_bytes()
    assert head.endswith(b'name="evil%22%0D%0AX-Injected: 1"')
    parts = _parts(encoder)
    assert parts[1]["disposition"] == 'form-data; name="f"; filename="résumé %22final%22%0D%0A.pdf"'


def test_boundary_is_checked_and_used() -> None:
    encoder = MultipartEncoder({"a": "1"}, boundary="my-boundary")
    assert encoder.content_type == "multipart/form-data; boundary=my-boundary"
    assert encoder.to_bytes().startswith(b"--my-boundary\r\n")
    for bad in ("", "x" * 71, "ends with space ", "semi;colon"):
        with pytest.raises(ValueError):
            MultipartEncoder({"a": "1"}, boundary=bad)
    assert MultipartEncoder({"a": "1"}).boundary != MultipartEncoder({"a": "1"}).boundary


def test_a_file_of_unknown_size_makes_the_length_unknown() -> None:
    class Pipe:  # read() only: no fileno, no seek
        def __init__(self) -> None:
            self.data = io.BytesIO(b"streamed" * 100)

        def read(self, size: int = -1) -> bytes:
            return self.data.read(size)

    encoder = MultipartEncoder(files={"f": Pipe()})
    assert encoder.content_length is None
    with pytest.raises(TypeError):
        len(encoder)
    assert not encoder.replayable
    assert _parts(encoder)[0]["length"] == 800
    sized = MultipartEncoder(files={"f": MultipartFile(file=Pipe(), size=800)})
    assert sized.content_length is not None


def test_a_seekable_file_is_replayed_from_where_it_started(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789")
    with open(path, "rb") as handle:
        handle.read(4)
        encoder = MultipartEncoder(files={"f": handle})
        assert encoder.replayable
        first, second = encoder.to_bytes(), encoder.to_bytes()
        assert first == second
        assert _parts(encoder)[0]["length"] == 6


def test_bad_parts_are_refused(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError):
        MultipartFile()
    with pytest.raises(ValueError):
        MultipartFile(b"x", path="p")
    with pytest.raises(FileNotFoundError):
        MultipartEncoder(files={"f": tmp_path / "missing"})
    with pytest.raises(TypeError):
        MultipartEncoder(files={"f": 12})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        MultipartEncoder({"field": object()})
    with pytest.raises(ValueError):
        MultipartEncoder(files={"f": ("a", b"x", "text/plain\r\nX: y")}).to_bytes()
    with pytest.raises(ValueError, match="a tuple is"):  # a file tuple has 2 or 3 items
        MultipartEncoder(files={"f": ("a", b"x", "text/plain", "extra")})
    with pytest.raises(ValueError, match="non-empty"):
        MultipartEncoder(files={"": b"x"})


def _bomb_gzip(mib: int) -> bytes:
    first, block = _bomb_blocks()
    return first + block * (mib - 1)


def _bomb_deflate(wbits: int, mib: int) -> bytes:
    """``mib`` MiB of zeros as zlib (``wbits`` 15) or raw deflate (-15), one MiB's blocks repeated."""
    zeros = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    return first + block * (mib - 1)


def _first_pieces(coding: str, chunks: Iterator[bytes] | list[bytes]) -> tuple[int, int]:
    """The size of the largest piece and the total, decoding until 40 STEPs have come out."""
    decoder = decoder_for([coding])
    assert decoder is not None
    largest = 0
    total = 0
    for chunk in chunks:
        for piece in decoder.feed(chunk):
            largest = max(largest, len(piece))
            total += len(piece)
            if total > 40 * STEP:
                return largest, total  # far enough: no single step expanded it all at once
    return largest, total


@pytest.mark.parametrize(
    ("coding", "make"),
    [
        ("gzip", lambda: _bomb_gzip(300)),
        ("deflate", lambda: _bomb_deflate(zlib.MAX_WBITS, 300)),
        ("deflate", lambda: _bomb_deflate(-zlib.MAX_WBITS, 300)),
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw"],
)
@pytest.mark.parametrize("chunk_size", [None, 16384], ids=["one-chunk", "16k-chunks"])
def test_a_gzip_or_deflate_bomb_decodes_in_pieces_of_at_most_step(
    inflate_backend: str, coding: str, make: object, chunk_size: int | None
) -> None:
    data = make()  # type: ignore[operator]
    if chunk_size is None:
        chunks = [data]  # the whole bomb in one chunk: the worst case
    else:
        chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    largest, total = _first_pieces(coding, chunks)
    assert total > 40 * STEP
    assert largest <= STEP, largest


@pytest.mark.parametrize(
    ("coding", "make"),
    [
        ("br", lambda: brotli.compress(bytes(300 << 20), quality=1)),
        ("zstd", lambda: zstandard.ZstdCompressor(level=1).compress(bytes(300 << 20))),
    ],
    ids=["br", "zstd"],
)
def test_a_bomb_decodes_in_bounded_pieces(coding: str, make: object) -> None:
    data = make()  # type: ignore[operator]
    largest, total = _first_pieces(coding, [data])  # the whole bomb in one chunk: the worst case
    assert total > 40 * STEP
    assert largest <= 2 * STEP, largest


def test_limits_check_size_and_ratio() -> None:
    limits = BodyLimits(max_decompressed_size=1000)
    limits.check(1000, 10)
    with pytest.raises(hyperhttp.DecompressionError, match="max_decompressed_size"):
        limits.check(1001, 10)
    ratio = BodyLimits(max_decompression_ratio=100, ratio_floor=1000)
    ratio.check(999, 1)  # under the floor: small bodies are never refused
    ratio.check(100_000, 1000)
    with pytest.raises(hyperhttp.DecompressionError, match="100 times"):
        ratio.check(100_001, 1000)
    with pytest.raises(ValueError):
        BodyLimits(max_response_size=0)
    assert not BodyLimits().active


@functools.cache
def _zeros_compressed(coding: str) -> bytes:
    zeros = bytes(50 << 20)
    return gzip.compress(zeros, 9) if coding == "gzip" else zlib.compress(zeros, 9)


@pytest.mark.parametrize("coding", ["deflate", "gzip"])
def test_zlib_output_is_bounded_even_for_one_small_input(inflate_backend: str, coding: str) -> None:
    compressed = _zeros_compressed(coding)
    decoder = decoder_for([coding])
    assert decoder is not None
    pieces = list(decoder.feed(compressed))
    assert max(len(p) for p in pieces) <= STEP
    assert sum(len(p) for p in pieces) == 50 << 20
    assert decoder.flush() == b""


def test_files_as_pairs_repeat_a_name() -> None:
    encoder = MultipartEncoder(
        [("tag", "a"), ("tag", "b")], [("f", b"1"), ("f", ("two.txt", b"2"))]
    )
    parts = _parts(encoder)
    assert [p["disposition"] for p in parts] == [
        'form-data; name="tag"',
        'form-data; name="tag"',
        'form-data; name="f"; filename="upload"',
        'form-data; name="f"; filename="two.txt"',
    ]
