"""Multipart bodies built with the 2.x ``MultipartEncoder(fields)`` signature, sent through the
Client to hypercorn, and read back by the server's parser and by the stdlib's."""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

import hyperhttp
from hyperhttp import MultipartEncoder, MultipartFile
from tests.servers.hypercorn_app import HypercornServer, pattern


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def post(client: hyperhttp.Client, url: str, **kwargs: Any) -> dict[str, Any]:
    response = await client.post(url, **kwargs)
    body = await response.aread()
    assert response.status_code == 200, body
    result: dict[str, Any] = json.loads(body)
    return result


def summary(result: dict[str, Any]) -> list[tuple[str, str | None, int, str]]:
    """What /multipart's parser found: each part's disposition, type, length and sha256."""
    return [
        (p["disposition"], p["content-type"], p["length"], p["sha256"]) for p in result["parts"]
    ]


def stdlib_parts(echoed: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The body /echo received, parsed by the email package: name, filename, type, content."""
    headers = {name.lower(): value for name, value in echoed["headers"]}
    raw = echoed["body"].encode("latin-1")
    head = f"Content-Type: {headers['content-type']}\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    assert message.is_multipart() and not message.defects
    parts = []
    for part in message.iter_parts():
        content_type = part["content-type"]
        payload = part.get_payload(decode=True)
        parts.append(
            (
                part.get_param("name", header="content-disposition"),
                part.get_filename(),
                None if content_type is None else str(content_type),
                payload,
            )
        )
    return parts


async def chunks(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


@pytest.fixture
def report(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "report.pdf"
    path.write_bytes(pattern(300_000))
    return path


async def test_the_2x_example_arrives_with_a_content_length(
    hypercorn: HypercornServer, report: pathlib.Path
) -> None:
    def encoder() -> MultipartEncoder:
        return MultipartEncoder(
            {
                "user": "alice",
                "avatar": ("me.png", b"\x89PNG", "image/png"),
                "report": pathlib.Path(report),
            }
        )

    async with hyperhttp.Client() as client:
        result = await post(client, f"{hypercorn.url}/multipart", content=encoder())
        echoed = await post(client, f"{hypercorn.url}/echo", content=encoder())
    assert result["transfer-encoding"] is None
    assert result["content-length"] == str(encoder().content_length)
    assert summary(result) == [
        ('form-data; name="user"', None, 5, sha(b"alice")),
        ('form-data; name="avatar"; filename="me.png"', "image/png", 4, sha(b"\x89PNG")),
        (
            'form-data; name="report"; filename="report.pdf"',
            "application/pdf",
            300_000,
            sha(pattern(300_000)),
        ),
    ]
    assert stdlib_parts(echoed) == [
        ("user", None, None, b"alice"),
        ("avatar", "me.png", "image/png", b"\x89PNG"),
        ("report", "report.pdf", "application/pdf", pattern(300_000)),
    ]


async def test_pairs_repeat_a_name(hypercorn: HypercornServer) -> None:
    encoder = MultipartEncoder(
        [
            ("tag", "a"),
            ("tag", "b"),
            ("doc", ("one.txt", b"first")),
            ("doc", ("two.txt", b"second", "text/x-second")),
        ]
    )
    async with hyperhttp.Client() as client:
        echoed = await post(client, f"{hypercorn.url}/echo", content=encoder)
    assert stdlib_parts(echoed) == [
        ("tag", None, None, b"a"),
        ("tag", None, None, b"b"),
        ("doc", "one.txt", "text/plain", b"first"),
        ("doc", "two.txt", "text/x-second", b"second"),
    ]


async def test_an_async_part_of_unknown_size_goes_chunked(hypercorn: HypercornServer) -> None:
    data = pattern(200_000)
    encoder = MultipartEncoder(
        [("f", MultipartFile(content=chunks(data[:1000], data[1000:]), filename="a.bin"))]
    )
    assert encoder.content_length is None
    async with hyperhttp.Client() as client:
        result = await post(client, f"{hypercorn.url}/multipart", content=encoder)
    assert result["transfer-encoding"] == "chunked"
    assert result["content-length"] is None
    assert summary(result) == [
        ('form-data; name="f"; filename="a.bin"', "application/octet-stream", 200_000, sha(data))
    ]


async def test_an_async_part_with_a_size_goes_with_a_content_length(
    hypercorn: HypercornServer,
) -> None:
    encoder = MultipartEncoder(
        {
            "note": "sized",
            "f": MultipartFile(content=chunks(b"0123", b"456789"), filename="a.txt", size=10),
        }
    )
    async with hyperhttp.Client() as client:
        echoed = await post(client, f"{hypercorn.url}/echo", content=encoder)
    headers = {name.lower(): value for name, value in echoed["headers"]}
    assert headers["content-length"] == str(encoder.content_length)
    assert "transfer-encoding" not in headers
    assert stdlib_parts(echoed) == [
        ("note", None, None, b"sized"),
        ("f", "a.txt", "text/plain", b"0123456789"),
    ]


async def test_an_encoder_with_an_async_part_is_not_sent_twice(
    hypercorn: HypercornServer,
) -> None:
    encoder = MultipartEncoder({"f": chunks(b"once")})
    async with hyperhttp.Client() as client:
        result = await post(client, f"{hypercorn.url}/multipart", content=encoder)
        assert summary(result) == [('form-data; name="f"', None, 4, sha(b"once"))]
        with pytest.raises(hyperhttp.StreamConsumed, match="'f'"):
            await post(client, f"{hypercorn.url}/multipart", content=encoder)
        result = await post(client, f"{hypercorn.url}/multipart", files={"g": b"after"})
    assert summary(result) == [
        ('form-data; name="g"; filename="upload"', "application/octet-stream", 5, sha(b"after"))
    ]


async def test_data_and_files_on_the_request(
    hypercorn: HypercornServer, report: pathlib.Path
) -> None:
    async with hyperhttp.Client() as client:
        result = await post(
            client,
            f"{hypercorn.url}/multipart",
            data={"user": "alice", "tags": ["a", "b"], "n": 3, "raw": b"\x00bytes"},
            files={
                "avatar": ("me.png", b"\x89PNG", "image/png"),
                "report": report,
                "path_str": str(report),
                "raw_file": b"raw",
            },
        )
    assert result["transfer-encoding"] is None and result["content-length"] is not None
    assert summary(result) == [
        ('form-data; name="user"', None, 5, sha(b"alice")),
        ('form-data; name="tags"', None, 1, sha(b"a")),
        ('form-data; name="tags"', None, 1, sha(b"b")),
        ('form-data; name="n"', None, 1, sha(b"3")),
        ('form-data; name="raw"', None, 6, sha(b"\x00bytes")),
        ('form-data; name="avatar"; filename="me.png"', "image/png", 4, sha(b"\x89PNG")),
        (
            'form-data; name="report"; filename="report.pdf"',
            "application/pdf",
            300_000,
            sha(pattern(300_000)),
        ),
        (
            'form-data; name="path_str"; filename="report.pdf"',
            "application/pdf",
            300_000,
            sha(pattern(300_000)),
        ),
        (
            'form-data; name="raw_file"; filename="upload"',
            "application/octet-stream",
            3,
            sha(b"raw"),
        ),
    ]


async def test_an_async_part_shorter_than_its_size_fails(hypercorn: HypercornServer) -> None:
    encoder = MultipartEncoder({"f": MultipartFile(content=chunks(b"12345"), size=10)})
    async with hyperhttp.Client() as client:
        with pytest.raises(hyperhttp.LocalProtocolError, match="Content-Length"):
            await post(client, f"{hypercorn.url}/multipart", content=encoder)
        result = await post(client, f"{hypercorn.url}/multipart", files={"g": b"after"})
    assert result["parts"][0]["sha256"] == sha(b"after")
