"""MultipartEncoder's 2.x signature (one ``fields`` argument whose value types decide each part),
MultipartFile with async content, and the bytes they make, without a network."""

from __future__ import annotations

import io
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from hyperhttp import MultipartEncoder, MultipartFile, StreamConsumed

BOUNDARY = "fixed-boundary"
CLOSING = b"--fixed-boundary--\r\n"


def part(disposition: str, content: bytes, content_type: str | None = None) -> bytes:
    """One part as it must appear on the wire with BOUNDARY."""
    head = f"--{BOUNDARY}\r\nContent-Disposition: form-data; {disposition}"
    if content_type is not None:
        head += f"\r\nContent-Type: {content_type}"
    return head.encode("utf-8") + b"\r\n\r\n" + content + b"\r\n"


def body_of(encoder: MultipartEncoder) -> bytes:
    body = encoder.to_bytes()
    assert encoder.content_length == len(body) == len(encoder)
    return body


async def abody_of(encoder: MultipartEncoder) -> bytes:
    return b"".join([bytes(piece) async for piece in encoder])


async def chunks(*pieces: bytes | bytearray) -> AsyncIterator[bytes | bytearray]:
    for piece in pieces:
        yield piece


@pytest.fixture
def report(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "report.txt"
    path.write_bytes(b"line\n" * 300)
    return path


def test_a_text_field_and_a_file_tuple_exactly() -> None:
    encoder = MultipartEncoder(
        {"user": "alice", "avatar": ("me.png", b"\x89PNG", "image/png")}, boundary=BOUNDARY
    )
    assert encoder.content_type == "multipart/form-data; boundary=fixed-boundary"
    assert body_of(encoder) == (
        b"--fixed-boundary\r\n"
        b'Content-Disposition: form-data; name="user"\r\n'
        b"\r\n"
        b"alice\r\n"
        b"--fixed-boundary\r\n"
        b'Content-Disposition: form-data; name="avatar"; filename="me.png"\r\n'
        b"Content-Type: image/png\r\n"
        b"\r\n"
        b"\x89PNG\r\n"
        b"--fixed-boundary--\r\n"
    )


def every_shape(report: pathlib.Path, handle: io.BufferedReader) -> list[tuple[str, Any]]:
    """One value of each shape ``fields`` takes, and below, the part each must make."""
    return [
        ("text", "héllo"),
        ("raw", b"\x00\x01"),
        ("array", bytearray(b"ba")),
        ("view", memoryview(b"mv")),
        ("int", 42),
        ("float", 1.5),
        ("flag", True),
        ("off", False),
        ("pair", ("notes.json", b"{}")),
        ("triple", ("data.bin", b"xyz", "application/x-custom")),
        ("anonymous", (None, b"no name")),
        ("text_in_tuple", ("a.txt", "tüple text")),
        ("path", report),
        ("handle", handle),
        ("nameless_handle", io.BytesIO(b"in memory")),
        ("spelled", MultipartFile(b"spelled", filename="s.pdf")),
        ("spelled_path", MultipartFile(path=report, filename="other.txt")),
        ("spelled_file", MultipartFile(file=io.BytesIO(b"file"), content_type="image/png")),
    ]


def expected_shapes(report: pathlib.Path) -> bytes:
    contents = report.read_bytes()
    return b"".join(
        [
            part('name="text"', "héllo".encode()),
            part('name="raw"', b"\x00\x01"),
            part('name="array"', b"ba"),
            part('name="view"', b"mv"),
            part('name="int"', b"42"),
            part('name="float"', b"1.5"),
            part('name="flag"', b"true"),
            part('name="off"', b"false"),
            part('name="pair"; filename="notes.json"', b"{}", "application/json"),
            part('name="triple"; filename="data.bin"', b"xyz", "application/x-custom"),
            part('name="anonymous"', b"no name"),
            part('name="text_in_tuple"; filename="a.txt"', "tüple text".encode(), "text/plain"),
            part('name="path"; filename="report.txt"', contents, "text/plain"),
            part('name="handle"; filename="report.txt"', contents, "text/plain"),
            part(
                'name="nameless_handle"; filename="upload"',
                b"in memory",
                "application/octet-stream",
            ),
            part('name="spelled"; filename="s.pdf"', b"spelled", "application/pdf"),
            part('name="spelled_path"; filename="other.txt"', contents, "text/plain"),
            part('name="spelled_file"; filename="upload"', b"file", "image/png"),
            CLOSING,
        ]
    )


@pytest.mark.parametrize("as_mapping", [True, False], ids=["mapping", "pairs"])
def test_every_value_shape_in_fields(report: pathlib.Path, as_mapping: bool) -> None:
    with open(report, "rb") as handle:
        shapes = every_shape(report, handle)
        fields = dict(shapes) if as_mapping else shapes
        encoder = MultipartEncoder(fields, boundary=BOUNDARY)
        assert encoder.replayable
        assert body_of(encoder) == expected_shapes(report)


async def test_every_value_shape_in_fields_iterated_async(report: pathlib.Path) -> None:
    with open(report, "rb") as handle:
        encoder = MultipartEncoder(every_shape(report, handle), boundary=BOUNDARY, chunk_size=100)
        assert await abody_of(encoder) == expected_shapes(report)
        assert await abody_of(encoder) == expected_shapes(report)  # replayed from the start


def test_a_name_repeats_through_pairs_and_through_a_list() -> None:
    expected = (
        part('name="tag"', b"a")
        + part('name="tag"', b"b")
        + part('name="f"; filename="1.txt"', b"1", "text/plain")
        + part('name="f"; filename="2.txt"', b"2", "text/plain")
        + CLOSING
    )
    pairs = [("tag", "a"), ("tag", "b"), ("f", ("1.txt", b"1")), ("f", ("2.txt", b"2"))]
    assert body_of(MultipartEncoder(pairs, boundary=BOUNDARY)) == expected
    as_lists = {"tag": ["a", "b"], "f": [("1.txt", b"1"), ("2.txt", b"2")]}
    assert body_of(MultipartEncoder(as_lists, boundary=BOUNDARY)) == expected


def test_files_keeps_its_own_shapes(report: pathlib.Path) -> None:
    # In files= every value is a file part: a bare str is a path, bare bytes are named "upload".
    encoder = MultipartEncoder(
        {"user": "alice"}, {"as_str": str(report), "raw": b"raw"}, boundary=BOUNDARY
    )
    assert body_of(encoder) == (
        part('name="user"', b"alice")
        + part('name="as_str"; filename="report.txt"', report.read_bytes(), "text/plain")
        + part('name="raw"; filename="upload"', b"raw", "application/octet-stream")
        + CLOSING
    )
    pairs = MultipartEncoder(files=[("f", b"1"), ("f", b"2")], boundary=BOUNDARY)
    assert body_of(pairs).count(b'name="f"; filename="upload"') == 2


async def test_a_path_is_streamed_in_chunks_read_ahead(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "big.bin"
    contents = bytes(range(256)) * 40  # 10240 bytes: eleven chunks of 1000
    path.write_bytes(contents)
    encoder = MultipartEncoder({"big": path}, boundary=BOUNDARY, chunk_size=1000)
    pieces = [piece async for piece in encoder]
    assert b"".join(pieces) == body_of(encoder)
    assert [len(p) for p in pieces[1:-2]] == [1000] * 10 + [240]


@pytest.mark.parametrize(
    "make",
    [
        lambda: MultipartEncoder({"": "x"}),
        lambda: MultipartEncoder([("", "x")]),
        lambda: MultipartEncoder(files={"": b"x"}),
        lambda: MultipartEncoder({1: "x"}),  # type: ignore[arg-type]
        lambda: MultipartEncoder({"f": ("only-a-filename",)}),
        lambda: MultipartEncoder({"f": ("a", b"x", "text/plain", "extra")}),
        lambda: MultipartEncoder(files={"f": ()}),
        lambda: MultipartEncoder({"a": "1"}, boundary=""),
        lambda: MultipartEncoder({"a": "1"}, boundary="x" * 71),
        lambda: MultipartEncoder({"a": "1"}, boundary="semi;colon"),
        lambda: MultipartEncoder({"a": "1"}, boundary="ends with space "),
        lambda: MultipartEncoder({"f": ("a", b"x", "text/plain\r\nX: y")}),
        lambda: MultipartFile(),
        lambda: MultipartFile(b"x", path="p"),
        lambda: MultipartFile(path="p", file=io.BytesIO()),
    ],
    ids=[
        "empty name",
        "empty name in pairs",
        "empty name in files",
        "name not a str",
        "1-tuple",
        "4-tuple",
        "empty tuple in files",
        "empty boundary",
        "long boundary",
        "boundary character",
        "boundary trailing space",
        "content type with CRLF",
        "MultipartFile without a source",
        "MultipartFile with content and path",
        "MultipartFile with path and file",
    ],
)
def test_value_errors(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize(
    "fields",
    [
        {"f": object()},
        {"f": {"a", "b"}},
        {"f": None},
        {"f": {"nested": "dict"}},
        {"f": ["a", ["nested"]]},
        {"f": (b"not a filename", b"x")},
        {"f": ("a.txt", 12)},
        {"f": ("a.txt", b"x", b"text/plain")},
        {"f": MultipartFile(content=12, filename="a")},  # type: ignore[arg-type]
        ["not a pair"],
        [("a", "b", "c")],
        "a string",
    ],
    ids=[
        "object",
        "set",
        "None",
        "dict",
        "nested list",
        "bytes filename",
        "int content",
        "bytes content type",
        "MultipartFile of int",
        "str entry",
        "triple entry",
        "str fields",
    ],
)
def test_type_errors(fields: Any) -> None:
    with pytest.raises(TypeError):
        MultipartEncoder(fields)


def test_the_type_error_names_the_field_and_the_type() -> None:
    with pytest.raises(TypeError, match=r"'colours'.*set"):
        MultipartEncoder({"colours": {"red"}})
    with pytest.raises(TypeError):
        MultipartEncoder(files={"f": 12})


@pytest.mark.parametrize(
    ("value", "content_type"),
    [
        (("a.png", b""), "image/png"),
        (("a.json", b""), "application/json"),
        (("a.pdf", b"", "text/x-given"), "text/x-given"),
        (("a.pdf", b"", ""), "application/pdf"),
        (("a.no-such-extension", b""), "application/octet-stream"),
        ((None, b""), None),
        ((None, b"", ""), None),
        ((None, b"", "image/png"), "image/png"),
        (MultipartFile(b"", filename="r.pdf"), "application/pdf"),
        (MultipartFile(b""), "application/octet-stream"),
        (MultipartFile(b"", filename="r.pdf", content_type="text/x-given"), "text/x-given"),
        (b"", None),
        ("text", None),
    ],
)
def test_the_content_type_is_guessed_from_the_filename(
    value: Any, content_type: str | None
) -> None:
    body = MultipartEncoder({"f": value}, boundary=BOUNDARY).to_bytes()
    head = body.split(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[2:] == ([f"Content-Type: {content_type}".encode()] if content_type else [])


async def test_the_content_type_of_async_content_is_guessed_too() -> None:
    encoder = MultipartEncoder(
        [("f", MultipartFile(chunks(b"x"), filename="a.txt")), ("g", ("b.json", chunks(b"{}")))],
        boundary=BOUNDARY,
    )
    assert await abody_of(encoder) == (
        part('name="f"; filename="a.txt"', b"x", "text/plain")
        + part('name="g"; filename="b.json"', b"{}", "application/json")
        + CLOSING
    )


# -- async content ----------------------------------------------------------------------------


async def test_an_async_iterable_in_fields_is_a_part_of_unknown_size() -> None:
    encoder = MultipartEncoder(
        [("a", "1"), ("stream", chunks(b"ab", b"", bytearray(b"cd"))), ("z", "2")],
        boundary=BOUNDARY,
    )
    assert encoder.content_length is None
    with pytest.raises(TypeError):
        len(encoder)
    assert not encoder.replayable
    pieces = [piece async for piece in encoder]
    assert b"" not in pieces  # empty chunks of the source are dropped
    assert b"".join(pieces) == (
        part('name="a"', b"1") + part('name="stream"', b"abcd") + part('name="z"', b"2") + CLOSING
    )


async def test_multipart_file_with_async_content() -> None:
    unsized = MultipartEncoder(
        [("f", MultipartFile(content=chunks(b"12", b"345"), filename="a.bin"))],
        boundary=BOUNDARY,
    )
    assert unsized.content_length is None
    assert not unsized.replayable
    expected = part('name="f"; filename="a.bin"', b"12345", "application/octet-stream") + CLOSING
    assert await abody_of(unsized) == expected

    sized = MultipartEncoder(
        {"f": MultipartFile(content=chunks(b"12", b"345"), filename="a.bin", size=5)},
        boundary=BOUNDARY,
    )
    assert sized.content_length == len(sized) == len(expected)
    assert not sized.replayable  # a known size does not make the iterable readable twice
    assert await abody_of(sized) == expected


async def test_async_content_in_a_tuple_and_in_files() -> None:
    encoder = MultipartEncoder(
        {"t": ("t.txt", chunks(b"tuple"))}, {"g": chunks(b"files")}, boundary=BOUNDARY
    )
    assert encoder.content_length is None
    assert await abody_of(encoder) == (
        part('name="t"; filename="t.txt"', b"tuple", "text/plain")
        + part('name="g"; filename="upload"', b"files", "application/octet-stream")
        + CLOSING
    )


@pytest.mark.parametrize(
    "read", [iter, list, lambda e: e.to_bytes()], ids=["iter", "list", "to_bytes"]
)
async def test_sync_iteration_refuses_an_async_part_before_touching_it(
    read: Callable[[MultipartEncoder], object],
) -> None:
    encoder = MultipartEncoder([("a", "1"), ("stream", chunks(b"data"))], boundary=BOUNDARY)
    with pytest.raises(TypeError, match="'stream' is an async iterable"):
        read(encoder)
    assert (
        await abody_of(encoder) == part('name="a"', b"1") + part('name="stream"', b"data") + CLOSING
    )


async def test_a_second_iteration_of_an_async_part_raises_before_sending_anything() -> None:
    encoder = MultipartEncoder(
        {"f": MultipartFile(content=chunks(b"once"), size=4)}, boundary=BOUNDARY
    )
    await abody_of(encoder)
    with pytest.raises(StreamConsumed, match="'f'"):
        encoder.__aiter__()
    with pytest.raises(StreamConsumed):
        async for _ in encoder:
            pytest.fail("nothing may be yielded")


async def test_a_second_iteration_raises_even_when_the_first_stopped_inside_the_part() -> None:
    encoder = MultipartEncoder([("a", "1"), ("f", chunks(b"x", b"y"))], boundary=BOUNDARY)
    iterator = encoder.__aiter__()
    seen = [await iterator.__anext__() for _ in range(4)]  # a's head, "1", CRLF, f's head
    assert seen[1] == b"1"
    assert await iterator.__anext__() == b"x"
    await iterator.aclose()  # type: ignore[attr-defined]
    with pytest.raises(StreamConsumed):
        encoder.__aiter__()


async def test_an_async_generator_read_elsewhere_is_refused_not_sent_empty() -> None:
    source = chunks(b"data")
    first = MultipartEncoder({"f": MultipartFile(source, filename="a.bin")}, boundary=BOUNDARY)
    await abody_of(first)
    second = MultipartEncoder({"f": MultipartFile(source, filename="a.bin")}, boundary=BOUNDARY)
    with pytest.raises(StreamConsumed, match="'f'"):
        await abody_of(second)


async def test_an_async_source_is_closed_when_the_body_stops_early() -> None:
    closed = []

    async def source() -> AsyncIterator[bytes]:
        try:
            yield b"first"
            yield b"second"
        finally:
            closed.append(True)

    encoder = MultipartEncoder({"f": source()}, boundary=BOUNDARY)
    iterator = encoder.__aiter__()
    await iterator.__anext__()  # the head
    assert await iterator.__anext__() == b"first"
    await iterator.aclose()  # type: ignore[attr-defined]
    assert closed == [True]


async def test_an_async_source_must_yield_bytes() -> None:
    async def text() -> AsyncIterator[str]:
        yield "not bytes"

    encoder = MultipartEncoder({"f": text()}, boundary=BOUNDARY)
    with pytest.raises(TypeError, match="must yield bytes, not str"):
        await abody_of(encoder)


def test_replayable(report: pathlib.Path) -> None:
    class Pipe:  # read() only: no tell(), so it cannot be rewound
        def read(self, size: int = -1) -> bytes:
            return b""

    with open(report, "rb") as handle:
        assert MultipartEncoder({"a": "1", "b": b"2", "p": report, "h": handle}).replayable
    assert MultipartEncoder({"f": ("a", io.BytesIO(b"seekable"))}).replayable
    assert not MultipartEncoder({"f": ("a", Pipe())}).replayable
    assert not MultipartEncoder({"f": chunks(b"x")}).replayable
    assert not MultipartEncoder({"f": MultipartFile(chunks(b"x"), size=1)}).replayable
