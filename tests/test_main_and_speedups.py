"""The main job (``python -m hyperhttp``) and the promise that optional speedups are optional."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_main_job_is_a_load_run_against_the_embedded_server() -> None:
    """``python -m hyperhttp`` with no arguments is ``load --serve -d 5`` (what ``make run``
    runs); here the same run, shortened, through the console script's entry point."""
    from hyperhttp import cli

    assert cli.MAIN_JOB == ["load", "--serve", "-d", "5"]
    result = subprocess.run(
        [sys.executable, "-m", "hyperhttp", *cli.MAIN_JOB[:-1], "0.5", "-c", "8"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "load: GET http://127.0.0.1:" in out and "closed model" in out
    requests = int(out.split("requests    ", 1)[1].split(" ", 1)[0].replace(",", ""))
    assert requests > 0
    assert f"status      200: {requests:,}" in out
    assert "errors      none" in out
    assert "latency ms  p50 " in out


def test_client_works_without_uvloop_orjson_brotli_and_zstandard() -> None:
    result = _run(
        """
        import sys
        for name in ("uvloop", "orjson", "brotli", "zstandard", "isal", "zlib_ng"):
            sys.modules[name] = None  # makes `import name` raise ImportError
        import asyncio, gzip, hyperhttp
        from hyperhttp import _compat
        assert not (_compat.HAS_UVLOOP or _compat.HAS_ORJSON or _compat.HAS_BROTLI
                    or _compat.HAS_ZSTANDARD or _compat.HAS_ISAL)
        assert hyperhttp.install_uvloop() is False

        body = gzip.compress(b'{"answer": 42}')

        async def handle(reader, writer):
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            length = int(next((l.split(b":")[1] for l in head.split(b"\\r\\n")
                               if l.lower().startswith(b"content-length:")), b"0"))
            sent = await reader.readexactly(length)
            assert sent == b'{"q":1}', sent
            assert b"accept-encoding: gzip, deflate\\r\\n" in head.lower(), head
            writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\n"
                         b"Content-Encoding: gzip\\r\\nContent-Length: %d\\r\\n\\r\\n%s"
                         % (len(body), body))
            await writer.drain()
            writer.close()

        async def main():
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            async with hyperhttp.Client() as client:
                response = await client.post(f"http://127.0.0.1:{port}/", json={"q": 1})
                await response.aread()
                assert response.json() == {"answer": 42}
            server.close()
            print("ok")

        asyncio.run(main())
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
