"""hyperhttp.proto.h2_hpack against hpack itself: the same headers, the same errors, bounded caches."""

from __future__ import annotations

import random
from typing import Any, Callable

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import hpack
import hpack.hpack
import pytest
from h2.settings import SettingCodes
from hpack import (
    HeaderTuple,
    HPACKDecodingError,
    InvalidTableIndex,
    InvalidTableSizeError,
    NeverIndexedHeaderTuple,
    OversizedHeaderListError,
)

from hyperhttp.proto import h2_hpack as _hpack
from hyperhttp.proto.h2_hpack import CachingDecoder, StatelessEncoder, huffman_encode, install

# A real nginx/1.22.1 response block (GET of a 200-byte file): the first one on a connection starts
# with a table size update to 0 and marks its literals "incremental indexing".
NGINX_FIRST = bytes.fromhex(
    "20887689aa6355e580ae212e1f6196d07abe94640a693f75040138a01ab8d8ae34d298b46f5f901d75d0620d263d"
    "4c1c892a56426c28e95c033230306c96d07abe94640a693f75040138a01ab8d8ae34d298b46f00832a47378afe5c"
    "8c12002122c47bf9008919085ad2b583aa62a3848fd24a8f"
)
NGINX_NEXT = NGINX_FIRST[1:]


@pytest.fixture(autouse=True)
def _fresh_caches() -> Any:
    _hpack.clear_caches()
    yield
    _hpack.clear_caches()


def outcome(decoder: Any, block: bytes, raw: bool = True) -> tuple[Any, ...]:
    """What decoding does: ("ok", headers, their types) or ("error", exception type)."""
    try:
        headers = decoder.decode(block, raw=raw)
    except Exception as exc:  # noqa: BLE001 - the type is what is compared
        return ("error", type(exc))
    return ("ok", [tuple(h) for h in headers], [type(h) for h in headers])


def table_state(decoder: Any) -> tuple[Any, ...]:
    t = decoder.header_table
    return (t.maxsize, list(t.dynamic_entries), t._current_size)


def assert_same(ours: Any, ref: Any, block: bytes, raw: bool = True) -> tuple[Any, ...]:
    got, want = outcome(ours, block, raw), outcome(ref, block, raw)
    assert got == want, block.hex()
    assert table_state(ours) == table_state(ref), block.hex()
    return got


# -- differential decoding of hpack.Encoder's blocks ---------------------------------------------

_VALUES: dict[bytes, list[bytes]] = {
    b":status": [b"200", b"204", b"304", b"404", b"503"],
    b"server": [b"nginx/1.22.1", b"h2o", b"envoy"],
    b"date": [b"Mon, 30 Nov 2026 04:52:44 GMT", b"Mon, 30 Nov 2026 04:52:45 GMT"],
    b"content-type": [
        b"application/octet-stream",
        b"text/html; charset=utf-8",
        b"application/json",
    ],
    b"content-length": [b"200", b"10240", b"0"],
    b"etag": [b'"6b0d011c-c8"', b'"abc"'],
    b"cache-control": [b"no-cache", b"max-age=3600, public"],
    b"set-cookie": [b"sid=abcdef; Path=/; HttpOnly", b"a=b"],
    b"accept-encoding": [b"gzip, deflate", b"br"],
    b"accept-ranges": [b"bytes"],
    b"vary": [b"accept-encoding"],
    b"authorization": [b"Bearer t0ken", b""],
    b"x-request-id": [b"1", b"2", b"3"],
    b"x-cache": [b"HIT", b"MISS"],
    b"alt-svc": [b'h3=":443"; ma=86400'],
}
_NAMES = list(_VALUES)


def random_headers(rng: random.Random, n_unique: list[int]) -> list[Any]:
    headers: list[Any] = []
    for _ in range(rng.randint(1, 12)):
        name = rng.choice(_NAMES)
        r = rng.random()
        if r < 0.08:
            n_unique[0] += 1
            value = b"u%d-%x" % (n_unique[0], rng.getrandbits(40))
        elif r < 0.11:
            value = bytes(rng.choice(b"abcdefghij0123456789") for _ in range(rng.randint(200, 700)))
        else:
            value = rng.choice(_VALUES[name])
        s = rng.random()
        if s < 0.07:
            headers.append(NeverIndexedHeaderTuple(name, value))
        elif s < 0.12:
            headers.append((name, value, True))
        else:
            headers.append((name, value))
    return headers


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_decodes_hpack_encoder_blocks_like_hpack(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    counts = {"ref": 0, "ours": 0, "slow": 0, "decode": 0}

    def counting(key: str, fn: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
        def wrapper(s: Any) -> bytes:
            counts[key] += 1
            return fn(s)

        return wrapper

    monkeypatch.setattr(hpack.hpack, "decode_huffman", counting("ref", hpack.hpack.decode_huffman))
    monkeypatch.setattr(_hpack, "decode_huffman", counting("ours", _hpack.decode_huffman))
    slow = CachingDecoder._decode

    def counting_decode(self: CachingDecoder, data: bytes) -> list[HeaderTuple]:
        counts["slow"] += 1
        return slow(self, data)

    monkeypatch.setattr(CachingDecoder, "_decode", counting_decode)

    enc = hpack.Encoder()
    ours, ref = CachingDecoder(), hpack.Decoder()
    ours_s, ref_s = CachingDecoder(), hpack.Decoder()  # the same blocks with raw=False
    pool: list[list[Any]] = []
    n_unique = [0]
    sizes_seen = set()
    for _ in range(3000):
        r = rng.random()
        if r < 0.04:
            # Never set the size it already has: hpack's Encoder then forgets a pending update.
            enc.header_table_size = rng.choice(
                [s for s in (0, 64, 256, 1024, 4096) if s != enc.header_table_size]
            )
            if rng.random() < 0.3:  # two changes between blocks: hpack sends both
                enc.header_table_size = rng.choice(
                    [s for s in (0, 512, 4096) if s != enc.header_table_size]
                )
        sizes_seen.add(enc.header_table_size)
        if pool and rng.random() < 0.5:
            headers = rng.choice(pool)  # a repeated header set: cache hits
        else:
            headers = random_headers(rng, n_unique)
            pool.append(headers)
        block = enc.encode(headers, huffman=rng.random() < 0.8)
        counts["decode"] += 1
        got = assert_same(ours, ref, block)
        assert got[0] == "ok"
        assert_same(ours_s, ref_s, block, raw=False)
    assert {0, 4096} <= sizes_seen
    # The caches were used: fewer Huffman decodes than hpack, fewer full decodes than blocks.
    assert counts["ours"] < counts["ref"] * 0.7
    assert counts["slow"] < 2 * counts["decode"]  # both decoder pairs go through _decode


def test_nginx_blocks_decode_like_hpack_and_hit_the_block_cache() -> None:
    ours, ref = CachingDecoder(), hpack.Decoder()
    assert_same(ours, ref, NGINX_FIRST)
    for _ in range(3):
        got = assert_same(ours, ref, NGINX_NEXT)
    assert got[1][0] == (b":status", b"200") and len(got[1]) == 8
    assert NGINX_NEXT in _hpack._block_cache
    # Cached with "needs an empty zero-size table": once the table may grow, the literals with
    # incremental indexing must be inserted again, so the block is decoded afresh.
    assert_same(ours, ref, b"\x3f\xe1\x1f" + NGINX_NEXT)  # size update to 4096 (not cached)
    assert_same(ours, ref, NGINX_NEXT)
    assert len(ours.header_table.dynamic_entries) > 0


def test_stateless_blocks_hit_the_block_cache_and_limits_still_apply() -> None:
    enc = StatelessEncoder()
    block = enc.encode([(b":status", b"200"), (b"server", b"x"), (b"content-length", b"12")])
    ours, ref = CachingDecoder(), hpack.Decoder()
    assert_same(ours, ref, block)
    assert block in _hpack._block_cache
    assert_same(ours, ref, block)
    ours.max_header_list_size = ref.max_header_list_size = 80
    assert assert_same(ours, ref, block) == ("error", OversizedHeaderListError)
    ours.max_header_list_size = ref.max_header_list_size = 1000
    ours.max_allowed_table_size = ref.max_allowed_table_size = 0  # we acked a smaller table
    assert assert_same(ours, ref, block) == ("error", InvalidTableSizeError)
    assert assert_same(ours, ref, b"\x20" + block)[0] == "ok"
    assert assert_same(ours, ref, block)[0] == "ok"
    assert outcome(ours, block, raw=False) == outcome(ref, block, raw=False)


# -- malformed input ------------------------------------------------------------------------------


def lit(prefix: bytes, name: bytes | None, value: bytes, huffman: bool = False) -> bytes:
    """A literal field: ``prefix`` (flags and name index), then the strings as given."""
    h = 0x80 if huffman else 0
    out = prefix
    if name is not None:
        out += bytes([len(name)]) + name
    return out + bytes([h | len(value)]) + value


MALFORMED: list[tuple[str, bytes, type[Exception] | None]] = [
    ("indexed, truncated integer", b"\xff", HPACKDecodingError),
    ("indexed, truncated continuation", b"\xff\x80", HPACKDecodingError),
    ("indexed, integer too long", b"\xff\x80\x80\x80\x80\x80\x01", HPACKDecodingError),
    ("indexed, longest accepted integer", b"\xff\x80\x80\x80\x80\x00", InvalidTableIndex),
    ("index 0", b"\x80", InvalidTableIndex),
    ("index 62, empty dynamic table", b"\xbe", InvalidTableIndex),
    ("index far out", b"\xff\xff\x7f", InvalidTableIndex),
    ("literal name index 62", lit(b"\x7e", None, b"a"), InvalidTableIndex),
    ("literal name index 63, no indexing", lit(b"\x0f\x30", None, b"a"), InvalidTableIndex),
    ("never indexed name index 99", lit(b"\x1f\x54", None, b"a"), InvalidTableIndex),
    ("literal, truncated name index", b"\x7f", HPACKDecodingError),
    ("literal, no name length", b"\x00", HPACKDecodingError),
    ("literal, name truncated", b"\x00\x05ab", HPACKDecodingError),
    ("literal, no value", b"\x00\x01a", HPACKDecodingError),
    ("literal, value truncated", b"\x40\x01a\x05ab", HPACKDecodingError),
    ("literal, value length truncated", b"\x10\x01a\x7f", HPACKDecodingError),
    ("huffman padded with zeros", lit(b"\x0f\x13", None, b"\x18", True), HPACKDecodingError),
    ("huffman padding of 8 ones", lit(b"\x0f\x13", None, b"\x1f\xff", True), None),
    ("huffman EOS", lit(b"\x0f\x13", None, b"\xff\xff\xff\xff", True), HPACKDecodingError),
    ("huffman bad name", lit(b"\x00", b"\x18", b"v").replace(b"\x01\x18", b"\x81\x18"), None),
    ("size update above max", b"\x3f\xe2\x1f", InvalidTableSizeError),
    ("size update to max", b"\x3f\xe1\x1f\x82", None),
    ("two size updates", b"\x20\x3f\xe1\x1f\x82", None),
    ("size update after a header", b"\x82\x20", HPACKDecodingError),
    ("size update truncated", b"\x3f", HPACKDecodingError),
    ("empty block", b"", None),
    ("static only", b"\x82\x84\x87", None),
]


@pytest.mark.parametrize(
    ("block", "expected"), [(b, e) for _, b, e in MALFORMED], ids=[n for n, _, _ in MALFORMED]
)
@pytest.mark.parametrize("raw", [True, False])
def test_malformed_blocks_raise_what_hpack_raises(block: bytes, expected: Any, raw: bool) -> None:
    for _ in range(2):  # the second time through any caches
        got = assert_same(CachingDecoder(), hpack.Decoder(), block, raw)
        if expected is not None:
            assert got == ("error", expected)


def test_oversized_header_list() -> None:
    headers = [(b"x-a", b"a" * 30), (b"x-b", b"b" * 30), (b"x-c", b"c")]
    total = sum(32 + len(n) + len(v) for n, v in headers)
    block = StatelessEncoder().encode(headers)
    for limit in (0, 64, 100, total - 1, total, 1000):
        ours, ref = (
            CachingDecoder(max_header_list_size=limit),
            hpack.Decoder(max_header_list_size=limit),
        )
        got = assert_same(ours, ref, block)
        assert (got[0] == "error") == (limit < total)
        if got[0] == "error":
            assert got[1] is OversizedHeaderListError


def test_shrunk_table_needs_a_size_update() -> None:
    ours, ref = CachingDecoder(), hpack.Decoder()
    assert_same(ours, ref, lit(b"\x40", b"x-a", b"1"))  # one entry in the dynamic table
    ours.max_allowed_table_size = ref.max_allowed_table_size = 0
    assert assert_same(ours, ref, b"\x82") == ("error", InvalidTableSizeError)
    assert assert_same(ours, ref, b"\x21\x82") == ("error", InvalidTableSizeError)
    assert assert_same(ours, ref, b"\x20\x82")[0] == "ok"


def test_invalid_utf8_when_not_raw() -> None:
    block = lit(b"\x00", b"x-a", b"\xff\xfe")
    assert assert_same(CachingDecoder(), hpack.Decoder(), block, raw=False) == (
        "error",
        HPACKDecodingError,
    )
    assert assert_same(CachingDecoder(), hpack.Decoder(), block, raw=True)[0] == "ok"


def test_mutated_and_random_blocks_behave_like_hpack() -> None:
    rng = random.Random(7)
    enc = hpack.Encoder()
    warm = enc.encode([(b"x-one", b"1"), (b"x-two", b"22"), (b"server", b"nginx")])
    n_unique = [0]
    for i in range(4000):
        ours, ref = CachingDecoder(), hpack.Decoder()
        assert_same(ours, ref, warm)  # three dynamic entries, so some indices above 61 are valid
        if i % 4 == 0:
            block = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 24)))
        else:
            block = bytearray(
                hpack.Encoder().encode(random_headers(rng, n_unique), huffman=rng.random() < 0.7)
            )
            for _ in range(rng.randint(1, 3)):
                op = rng.random()
                if op < 0.4 and block:
                    block[rng.randrange(len(block))] ^= 1 << rng.randrange(8)
                elif op < 0.7 and block:
                    del block[rng.randrange(len(block)) :]
                else:
                    block.insert(rng.randrange(len(block) + 1), rng.getrandbits(8))
            block = bytes(block)
        ours.max_header_list_size = ref.max_header_list_size = rng.choice([200, 65536])
        assert_same(ours, ref, block, raw=i % 3 != 0)
        assert_same(ours, ref, block, raw=True)  # again: possibly from the block cache


def test_decoder_accepts_bytearray_and_memoryview() -> None:
    for data in (bytearray(NGINX_NEXT), memoryview(NGINX_NEXT)):
        assert CachingDecoder().decode(data, raw=True) == hpack.Decoder().decode(data, raw=True)  # type: ignore[arg-type]


# -- bounded caches -------------------------------------------------------------------------------


def test_caches_stay_bounded_under_100k_distinct_values() -> None:
    dec = CachingDecoder()
    enc = StatelessEncoder()
    for i in range(100_000):
        value = b"v-%d" % i
        block = b"\x0f\x13" + bytes([0x80 | len(h := huffman_encode(value))]) + h  # etag, Huffman
        assert dec.decode(block, raw=True) == [(b"etag", value)]
        enc.encode([(b"etag", value), (b":path", b"/%d" % i)])
        if i % 997 == 0:
            assert len(_hpack._huffman_cache) <= _hpack.HUFFMAN_CACHE_SIZE
            assert len(_hpack._block_cache) <= _hpack.BLOCK_CACHE_SIZE
            assert len(_hpack._field_cache[1]) <= _hpack.FIELD_CACHE_SIZE
    assert 0 < len(_hpack._huffman_cache) <= _hpack.HUFFMAN_CACHE_SIZE
    assert 0 < len(_hpack._block_cache) <= _hpack.BLOCK_CACHE_SIZE
    assert 0 < len(_hpack._field_cache[1]) <= _hpack.FIELD_CACHE_SIZE


def test_long_strings_and_blocks_are_not_cached() -> None:
    value = b"x" * 1000
    coded = huffman_encode(value)
    assert len(coded) > _hpack.HUFFMAN_CACHE_MAX_KEY
    length = hpack.hpack.encode_integer(len(coded), 7)
    length[0] |= 0x80
    block = b"\x0f\x13" + bytes(length) + coded
    assert len(block) > _hpack.BLOCK_CACHE_MAX_KEY
    assert CachingDecoder().decode(block, raw=True) == [(b"etag", value)]
    assert coded not in _hpack._huffman_cache and block not in _hpack._block_cache
    StatelessEncoder().encode([(b"x-long", value)])
    assert not _hpack._field_cache[1]


# -- the stateless encoder ------------------------------------------------------------------------

NEVER_NAMES = {b"authorization", b"proxy-authorization", b"cookie"}


def as_bytes(x: Any) -> bytes:
    return x if isinstance(x, bytes) else str(x).encode()


def expected_of(headers: Any) -> list[tuple[bytes, bytes, bool]]:
    """(name, value, never indexed) as a decoder should see them."""
    items = list(headers.items()) if isinstance(headers, dict) else list(headers)
    out = []
    for h in items:
        sensitive = (isinstance(h, HeaderTuple) and not h.indexable) or (len(h) > 2 and bool(h[2]))
        name, value = as_bytes(h[0]), as_bytes(h[1])
        out.append((name, value, sensitive or name in NEVER_NAMES))
    return out


def test_encoder_round_trips_through_hpack_decoder() -> None:
    rng = random.Random(11)
    shared = hpack.Decoder()
    n_unique = [0]
    request = [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":authority", b"example.com"),
        (b":path", b"/a?b=c"),
        (b"accept", b"*/*"),
        (b"user-agent", b"hyperhttp"),
        (b"accept-encoding", b"gzip, deflate"),
        (b"cookie", b"a=b"),
        (b"x-custom", b"1"),
    ]
    for i in range(2000):
        headers: Any = random_headers(rng, n_unique) if i % 5 else list(request)
        if i % 7 == 0:  # str, as h2 may be given; mixed tuple types
            headers = [
                (h[0].decode(), h[1].decode(), *h[2:]) if type(h) is tuple else h for h in headers
            ]
        if i % 11 == 0:
            headers.append(HeaderTuple(b"x-plain", b"p"))
        if i % 13 == 0:
            headers = {as_bytes(h[0]): as_bytes(h[1]) for h in headers}
            headers.setdefault(b":status", b"200")
        huffman = i % 3 != 0
        block = StatelessEncoder().encode(headers, huffman=huffman)
        assert StatelessEncoder().encode(headers, huffman=huffman) == block  # a pure function
        fresh = hpack.Decoder()
        for dec in (fresh, shared):
            got = dec.decode(block, raw=True)
            if isinstance(headers, dict):
                assert got[0][0].startswith(b":")
                assert sorted(got) == sorted(headers.items())
            else:
                assert [(h[0], h[1], not h.indexable) for h in got] == expected_of(headers)
            assert not dec.header_table.dynamic_entries
        assert CachingDecoder().decode(block, raw=True) == fresh.decode(block, raw=True)


def test_encoder_representations() -> None:
    enc = StatelessEncoder()
    assert (
        enc.encode([(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/")])
        == b"\x82\x87\x84"
    )
    # authorization with an empty value matches a static entry, but is still sent never-indexed
    assert enc.encode([(b"authorization", b"")]) == b"\x1f\x08\x00"
    assert enc.encode([NeverIndexedHeaderTuple(b":method", b"GET")]) == b"\x12\x03GET"
    # static name index: literal without indexing; :path and never-indexed values go raw
    assert enc.encode([(b":path", b"/index.php")]) == b"\x04\x0a/index.php"
    assert enc.encode([(b"cookie", b"a=b")]) == b"\x1f\x11\x03a=b"
    coded = huffman_encode(b"example.com")
    assert (
        enc.encode([(b":authority", b"example.com")])
        == b"\x01" + bytes([0x80 | len(coded)]) + coded
    )
    assert enc.encode([(b":authority", b"example.com")], huffman=False) == b"\x01\x0bexample.com"
    # a new name, Huffman-coded where shorter; "{" is longer Huffman-coded than raw
    name = huffman_encode(b"x-cache")
    assert len(name) < 7 and len(huffman_encode(b"{")) > 1
    assert enc.encode([(b"x-cache", b"{")]) == b"\x00" + bytes([0x80 | len(name)]) + name + b"\x01{"
    assert enc.encode([(b"x-cache", b"{")], huffman=False) == b"\x00\x07x-cache\x01{"
    assert enc.encode([(b"x-a", b"v", True)])[0] == 0x10
    assert enc.encode([]) == b""
    # odd values go through str() like hpack's, and never share a cache entry when they compare equal
    assert enc.encode([(b"x-n", 1)], huffman=False) == b"\x00\x03x-n\x011"  # type: ignore[list-item]
    assert enc.encode([(b"x-n", True)], huffman=False) == b"\x00\x03x-n\x04True"  # type: ignore[list-item]
    assert enc.encode([("x-n", "1")], huffman=False) == b"\x00\x03x-n\x011"
    assert enc.add((b":method", b"GET"), False) == b"\x82"


def test_huffman_encode_matches_hpack() -> None:
    rng = random.Random(3)
    ref = hpack.Encoder().huffman_coder
    for n in list(range(40)) + [255, 1000]:
        data = bytes(rng.getrandbits(8) for _ in range(n))
        assert huffman_encode(data) == ref.encode(data)


def test_table_size_change_emits_a_size_update_to_zero_once() -> None:
    enc = StatelessEncoder()
    dec = hpack.Decoder()
    hdrs = [(b":method", b"GET")]
    assert enc.encode(hdrs) == b"\x82"
    enc.header_table_size = 4096  # unchanged: nothing to signal
    assert enc.encode(hdrs) == b"\x82"
    enc.header_table_size = 100
    dec.max_allowed_table_size = 100
    block = enc.encode(hdrs)
    assert block == b"\x20\x82"
    assert dec.decode(block) == [(":method", "GET")] and dec.header_table_size == 0
    assert enc.encode(hdrs) == b"\x82"
    assert enc.header_table_size == 100
    enc.header_table_size = 0
    enc.header_table_size = 65536
    assert enc.encode(hdrs) == b"\x20\x82"


# -- both installed on real h2 connections --------------------------------------------------------


def pump(a: h2.connection.H2Connection, b: h2.connection.H2Connection) -> list[Any]:
    events: list[Any] = []
    for _ in range(10):
        moved = False
        for src, dst in ((a, b), (b, a)):
            data = src.data_to_send()
            if data:
                moved = True
                events.extend(dst.receive_data(data))
        if not moved:
            break
    return events


@pytest.mark.parametrize("installed", ["both", "client", "server"])
def test_installed_on_h2_connections(installed: str) -> None:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    server = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
    )
    if installed in ("both", "client"):
        install(client)
        assert isinstance(client.decoder, CachingDecoder) and isinstance(
            client.encoder, StatelessEncoder
        )
    if installed in ("both", "server"):
        install(server)
    client.initiate_connection()
    server.initiate_connection()
    pump(client, server)
    token = b"Bearer secret-token"
    for i in range(30):
        if i == 10:  # the server shrinks its HPACK table; the client's encoder must follow
            server.update_settings({SettingCodes.HEADER_TABLE_SIZE: 0})
            client.update_settings({SettingCodes.HEADER_TABLE_SIZE: 256})
            pump(client, server)
            assert server.decoder.max_allowed_table_size == 0
            assert client.encoder.header_table_size == 0
        sid = client.get_next_available_stream_id()
        path = b"/bytes/200" if i % 2 else b"/item/%d" % i
        client.send_headers(
            sid,
            [
                (b":method", b"GET"),
                (b":scheme", b"https"),
                (b":authority", b"127.0.0.1:8443"),
                (b":path", path),
                (b"authorization", token),
                (b"cookie", b"a=1"),
                (b"cookie", b"b=2"),
                (b"user-agent", b"hyperhttp/test"),
            ],
            end_stream=True,
        )
        events = pump(client, server)
        (req,) = [e for e in events if isinstance(e, h2.events.RequestReceived)]
        headers = dict(req.headers)
        assert headers[":path"] == path.decode() and headers["authorization"] == token.decode()
        assert headers["cookie"] == "a=1; b=2"
        auth = next(h for h in req.headers if h[0] == "authorization")
        assert isinstance(auth, NeverIndexedHeaderTuple)
        server.send_headers(
            sid,
            [
                (b":status", b"200"),
                (b"server", b"nginx/1.22.1"),
                (b"content-type", b"text/plain"),
                (b"content-length", b"2"),
                (b"x-n", str(i).encode()),
            ],
        )
        server.send_data(sid, b"ok", end_stream=True)
        events = pump(client, server)
        (resp,) = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
        assert resp.headers == [
            (b":status", b"200"),
            (b"server", b"nginx/1.22.1"),
            (b"content-type", b"text/plain"),
            (b"content-length", b"2"),
            (b"x-n", str(i).encode()),
        ]
        assert any(isinstance(e, h2.events.StreamEnded) for e in events)
    if installed in ("both", "client"):  # the client never added to the server's table
        assert not server.decoder.header_table.dynamic_entries


def test_h2_turns_decoding_errors_into_protocol_errors() -> None:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    install(server)
    client.initiate_connection()
    server.initiate_connection()
    pump(client, server)
    client.encoder = _Raw(b"\xbe")  # type: ignore[assignment]  # index 62, empty table
    request = [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":authority", b"a"),
        (b":path", b"/"),
    ]
    client.send_headers(1, request, end_stream=True)
    with pytest.raises(h2.exceptions.ProtocolError):
        server.receive_data(client.data_to_send())


class _Raw:
    def __init__(self, block: bytes) -> None:
        self.block = block

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        list(headers)
        return self.block


def test_install_carries_state_over() -> None:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.decoder.max_header_list_size = 1234
    conn.decoder.max_allowed_table_size = 100
    conn.encoder.header_table_size = 0
    install(conn)
    assert conn.decoder.max_header_list_size == 1234
    assert conn.decoder.max_allowed_table_size == 100
    assert conn.encoder.header_table_size == 0
    assert conn.encoder.encode([(b":method", b"GET")]) == b"\x20\x82"
    decoder = conn.decoder
    install(conn)
    assert conn.decoder is decoder


# -- request_block: a connection's constant fields in the dynamic table ------------------------

SHARED = [
    (b"user-agent", b"hyperhttp/3.0"),
    (b"accept", b"*/*"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),
]


def _request(path: bytes, own: list[tuple[bytes, bytes]], shared: Any = SHARED) -> list[Any]:
    return [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":authority", b"example.com"),
        (b":path", path),
        *shared,
        *own,
    ]


def test_request_blocks_index_the_constant_fields_and_decode_as_the_same_fields() -> None:
    encoder, decoder = StatelessEncoder(), hpack.Decoder()
    other_shared = [(b"user-agent", b"other"), (b"x-team", b"a")]
    sizes = []
    for i in range(50):
        shared = other_shared if i % 7 == 3 else SHARED  # a second Client's defaults in between
        own = [(b"x-request", str(i).encode())] if i % 2 else []
        block = encoder.request_block(
            b"GET", b"https", b"example.com", b"/p/%d" % i, id(shared), shared, own
        )
        assert decoder.decode(block, raw=True) == _request(b"/p/%d" % i, own, shared), i
        sizes.append(len(block) - len(str(i)) * (2 if i % 2 else 1))
    stateless = len(StatelessEncoder().encode(_request(b"/p/", [])))
    assert sizes[0] > 40  # the first block carries the literals to index
    assert max(sizes[10:]) < stateless - 30  # later ones refer to them: 1 byte each
    assert len(decoder.header_table.dynamic_entries) == 6  # authority, 3 + 2 shared fields


def test_request_blocks_keep_never_indexed_fields_out_of_the_table() -> None:
    encoder, decoder = StatelessEncoder(), hpack.Decoder()
    shared = [*SHARED, (b"authorization", b"Bearer secret")]
    for _ in range(3):
        block = encoder.request_block(b"GET", b"https", b"a.test", b"/", id(shared), shared, [])
        decoded = decoder.decode(block, raw=True)
        assert decoded == _request(b"/", [], shared)[:2] + [(b":authority", b"a.test")] + [
            (b":path", b"/"),
            *shared,
        ]
        assert isinstance(decoded[-1], NeverIndexedHeaderTuple)
    assert all(b"secret" not in value for _, value in decoder.header_table.dynamic_entries)


def test_request_blocks_fill_the_table_only_up_to_its_size() -> None:
    encoder, decoder = StatelessEncoder(), hpack.Decoder()
    big = [(b"x-big-%d" % i, b"v" * 1000) for i in range(6)]  # 6 x 1040 > 4096
    for _ in range(3):
        block = encoder.request_block(b"GET", b"https", b"a.test", b"/", id(big), big, [])
        assert decoder.decode(block, raw=True)[4:] == big
    assert decoder.header_table._current_size <= 4096  # noqa: SLF001
    assert len(decoder.header_table.dynamic_entries) == 4  # authority and three of them


@pytest.mark.parametrize("between", ["request_block", "encode"])
def test_a_table_size_change_stops_indexing_and_empties_the_table(between: str) -> None:
    encoder, decoder = StatelessEncoder(), hpack.Decoder()
    for _ in range(2):
        block = encoder.request_block(b"GET", b"https", b"a.test", b"/", id(SHARED), SHARED, [])
        assert decoder.decode(block, raw=True)[4:] == SHARED
    encoder.header_table_size = 100  # the peer's SETTINGS_HEADER_TABLE_SIZE changed
    if between == "encode":  # a request with a body goes through h2 and encode() first
        block = encoder.encode(_request(b"/x", []))
        assert block[0] == 0x20 and decoder.decode(block, raw=True) == _request(b"/x", [])
    for _ in range(3):
        block = encoder.request_block(b"GET", b"https", b"a.test", b"/", id(SHARED), SHARED, [])
        assert decoder.decode(block, raw=True) == _request(b"/", [])[:2] + [
            (b":authority", b"a.test"),
            (b":path", b"/"),
            *SHARED,
        ]
    assert decoder.header_table.dynamic_entries == type(decoder.header_table.dynamic_entries)()
    assert not encoder.indexing
