"""Microbenchmark: hpack's Decoder/Encoder against hyperhttp.proto.h2_internals's replacements.

    .venv/bin/python perf/hpack_micro.py            # with the nginx block stored below
    .venv/bin/python perf/hpack_micro.py --capture  # capture a fresh block from /usr/sbin/nginx first

Decode: the response header block nginx sends for a 200-byte static file over HTTP/2. NGINX_BLOCK was
captured from nginx/1.22.1 (Debian, http_v2) on 127.0.0.1 with ``--capture``: its first block starts
with a dynamic table size update to 0 (``20``); every later block is the same bytes without it, which
is what is timed, on a decoder that has already seen the first block. Cases:

* ``hit``: the same block again and again (nginx's date changes once a second, so at any useful
  request rate almost every block repeats the one before).
* ``no block cache``: the whole-block cache switched off, every Huffman string found in the cache: the
  path taken for servers whose blocks use the dynamic table.
* ``cold``: both caches emptied before every call: the worst case, to show what a miss costs.

Encode: a typical request header list (:method GET, :scheme https, :authority, :path, accept,
user-agent, accept-encoding), as h2 hands it over (bytes), either the same list every time or with a
different :path each time; hpack.Encoder against StatelessEncoder with and without Huffman coding.

Figures are µs per call: the median of several repeats of timeit loops.
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any, Callable

import hpack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hyperhttp.proto import h2_hpack as _hpack  # noqa: E402
from hyperhttp.proto.h2_hpack import CachingDecoder, StatelessEncoder  # noqa: E402

# Second and later HEADERS blocks of nginx/1.22.1 for GET /bytes/200 (a 200-byte file):
# :status 200, server, date, content-type, content-length, last-modified, etag, accept-ranges.
NGINX_BLOCK = bytes.fromhex(
    "887689aa6355e580ae212e1f6196d07abe94640a693f75040138a01ab8d8ae34d298b46f5f901d75d0620d263d"
    "4c1c892a56426c28e95c033230306c96d07abe94640a693f75040138a01ab8d8ae34d298b46f00832a47378afe"
    "5c8c12002122c47bf9008919085ad2b583aa62a3848fd24a8f"
)

REQUEST = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":authority", b"127.0.0.1:8443"),
    (b":path", b"/bytes/200"),
    (b"accept", b"*/*"),
    (b"user-agent", b"hyperhttp/0.1"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),
]

_NGINX_CONF = """
worker_processes 1; daemon off; master_process off; pid {root}/nginx.pid;
error_log {root}/error.log warn; events {{ worker_connections 64; }}
http {{ access_log off; types {{ }} default_type application/octet-stream;
 client_body_temp_path {root}/tmp; proxy_temp_path {root}/tmp; fastcgi_temp_path {root}/tmp;
 uwsgi_temp_path {root}/tmp; scgi_temp_path {root}/tmp;
 server {{ listen 127.0.0.1:{port} ssl http2; root {root}/www;
   ssl_certificate {root}/server.pem; ssl_certificate_key {root}/server.pem; }} }}
"""


def capture_nginx_blocks(count: int = 2) -> list[bytes]:
    """Start nginx on 127.0.0.1 with a trustme certificate, GET /bytes/200 ``count`` times over one
    HTTP/2 connection, and return the raw HEADERS block of each response."""
    import h2.config
    import h2.connection
    import trustme
    from hyperframe.frame import Frame, HeadersFrame

    with tempfile.TemporaryDirectory() as root:
        os.makedirs(f"{root}/www/bytes")
        os.makedirs(f"{root}/tmp")
        Path(f"{root}/www/bytes/200").write_bytes(b"x" * 200)
        ca = trustme.CA()
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
            f"{root}/server.pem"
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        Path(f"{root}/nginx.conf").write_text(_NGINX_CONF.format(root=root, port=port))
        proc = subprocess.Popen(["/usr/sbin/nginx", "-p", root, "-c", f"{root}/nginx.conf"])
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            ctx = ssl.create_default_context()
            ca.configure_trust(ctx)
            ctx.set_alpn_protocols(["h2"])
            raw = socket.create_connection(("127.0.0.1", port))
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
                conn.initiate_connection()
                sock.sendall(conn.data_to_send())
                blocks: list[bytes] = []
                buf = b""
                for _ in range(count):
                    sid = conn.get_next_available_stream_id()
                    conn.send_headers(
                        sid,
                        [
                            (b":method", b"GET"),
                            (b":scheme", b"https"),
                            (b":authority", f"127.0.0.1:{port}".encode()),
                            (b":path", b"/bytes/200"),
                        ],
                        end_stream=True,
                    )
                    sock.sendall(conn.data_to_send())
                    want = len(blocks) + 1
                    while len(blocks) < want:
                        buf += sock.recv(65536)
                        while len(buf) >= 9:
                            frame, length = Frame.parse_frame_header(memoryview(buf[:9]))
                            if len(buf) < 9 + length:
                                break
                            frame.parse_body(memoryview(buf[9 : 9 + length]))
                            if isinstance(frame, HeadersFrame):
                                blocks.append(bytes(frame.data))
                            conn.receive_data(buf[: 9 + length])
                            buf = buf[9 + length :]
                        sock.sendall(conn.data_to_send())
                return blocks
        finally:
            proc.terminate()
            proc.wait()


def per_call_us(fn: Callable[[], Any], repeat: int, target: float = 0.2) -> float:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(1, int(number * target / 0.2))
    return statistics.median(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--capture", action="store_true", help="capture the block from a local nginx")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    first = b"\x20" + NGINX_BLOCK
    block = NGINX_BLOCK
    if args.capture:
        blocks = capture_nginx_blocks()
        first, block = blocks[0], blocks[-1]
        print(f"captured from nginx: first {first.hex()}\n                     next  {block.hex()}")
    ref = hpack.Decoder()
    ref.decode(first, raw=True)
    expected = ref.decode(block, raw=True)
    print(f"decode: nginx block, {len(block)} bytes, {len(expected)} headers")

    dec = CachingDecoder()
    dec.decode(first, raw=True)
    assert dec.decode(block, raw=True) == expected

    def cold() -> None:
        _hpack.clear_caches()
        dec.decode(block, raw=True)

    results: list[tuple[str, float]] = []
    results.append(("hpack.Decoder", per_call_us(lambda: ref.decode(block, raw=True), args.repeat)))
    results.append(
        ("CachingDecoder hit", per_call_us(lambda: dec.decode(block, raw=True), args.repeat))
    )
    saved = _hpack.BLOCK_CACHE_MAX_KEY
    _hpack.clear_caches()
    _hpack.BLOCK_CACHE_MAX_KEY = 0
    try:
        results.append(
            (
                "CachingDecoder no block cache",
                per_call_us(lambda: dec.decode(block, raw=True), args.repeat),
            )
        )
        results.append(("CachingDecoder cold", per_call_us(cold, args.repeat)))
        results.append(("  (clear_caches alone)", per_call_us(_hpack.clear_caches, args.repeat)))
    finally:
        _hpack.BLOCK_CACHE_MAX_KEY = saved
    for name, us in results:
        print(f"  {name:32s} {us:8.2f} µs")

    print("encode: request header list, 7 headers")
    paths = [f"/bytes/200?n={i}".encode() for i in range(200_000)]
    unique = [[h if h[0] != b":path" else (b":path", p) for h in REQUEST] for p in paths]

    def cycling(enc: Any, huffman: bool) -> Callable[[], bytes]:
        it = iter(unique * 50)
        return lambda: enc.encode(next(it), huffman=huffman)

    rows = []
    for label, factory, huffman in (
        ("hpack.Encoder", hpack.Encoder, True),
        ("StatelessEncoder huffman", StatelessEncoder, True),
        ("StatelessEncoder raw", StatelessEncoder, False),
    ):
        enc = factory()
        size = len(enc.encode(REQUEST, huffman=huffman))
        again = len(enc.encode(REQUEST, huffman=huffman))
        same = per_call_us(lambda e=enc, h=huffman: e.encode(REQUEST, huffman=h), args.repeat)
        diff = per_call_us(cycling(factory(), huffman), args.repeat)
        rows.append((label, same, diff, size, again))
    for label, same, diff, size, again in rows:
        print(
            f"  {label:26s} same list {same:6.2f} µs   new :path {diff:6.2f} µs"
            f"   block {size} B first, {again} B next"
        )
    _hpack.clear_caches()


if __name__ == "__main__":
    main()
