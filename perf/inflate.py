"""Microbenchmark: gzip inflate with each installed backend (zlib, ISA-L, zlib-ng) on web pages.

    .venv/bin/python perf/inflate.py                  # 300 pages, 15 rounds (about 30 s)
    .venv/bin/python perf/inflate.py --rounds 5 --pages 100

Crawlers spend much of their CPU inflating gzip pages, and ``hyperhttp._decoders`` inflates with
the fastest backend installed. This measures each one three ways on the same corpus:

* ``module``: ``decompressobj(31).decompress(body)`` once per page: the backend alone, a ceiling.
* ``decoder, whole body``: ``GzipDecoder().feed(body)`` then ``finish()``: what a body read in
  one piece costs, with the output bounded to ``STEP`` per step as the bomb protection wants.
* ``decoder, 16 KiB chunks``: the same, fed in network-sized chunks as a connection hands them
  over (``--chunk``).

The corpus: HTML-like pages of 5 to 100 KB (sizes spread evenly on a log scale), generated from a
fixed seed (markup, navigation, text drawn from a Zipf-like vocabulary, links, inline script and
style), each gzipped at level 6 as servers commonly do. Figures are MB (10^6 bytes) of inflated
output per CPU second of this process (CPU time, so other load on the machine counts less), the
median over rounds; each round times every backend and mode once, in an order that rotates from
round to round, so drift in the machine's speed falls on all of them alike. Every output is
checked against the page before anything is timed.
"""

from __future__ import annotations

import argparse
import functools
import gc
import gzip
import math
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hyperhttp import _decoders  # noqa: E402

_MODULES: dict[str, Any] = {
    "zlib": __import__("zlib"),
    "isal": _decoders.isal_zlib,
    "zlib-ng": _decoders.zlib_ng,
}

_TAGS = ["div", "span", "p", "li", "td", "a", "section", "article", "h2", "h3", "em", "strong"]
_CLASSES = ["nav", "item", "card", "title", "meta", "content", "row", "col-md-4", "btn", "active"]


def _vocabulary(rng: random.Random, size: int = 4000) -> list[str]:
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    weights = [12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8]
    weights += [2.4, 2.4, 2.2, 2.0, 2.0, 1.9, 1.5, 1.0, 0.8, 0.2, 0.2, 0.1, 0.1]
    return [
        "".join(rng.choices(letters, weights, k=max(1, int(rng.expovariate(1 / 5)) + 1)))
        for _ in range(size)
    ]


def make_page(rng: random.Random, words: list[str], size: int) -> bytes:
    """An HTML-like page of about ``size`` bytes: a head, navigation, then articles of text."""
    zipf = [1 / (rank + 1) for rank in range(len(words))]
    site = rng.choice(words)
    parts = [
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{' '.join(rng.choices(words, zipf, k=6))}</title>\n"
        f'<link rel="stylesheet" href="/static/{site}.{rng.getrandbits(32):08x}.css">\n'
        f"<style>.{site}-hero{{margin:0 auto;padding:{rng.randrange(4, 40)}px}}"
        f".card{{display:flex;border:1px solid #{rng.getrandbits(24):06x}}}</style>\n"
        f"<script>window.dataLayer=window.dataLayer||[];"
        f"dataLayer.push({{'page':'{rng.getrandbits(40):x}','ts':{rng.getrandbits(31)}}});"
        f"</script></head>\n<body>\n<nav><ul>"
    ]
    for _ in range(rng.randrange(5, 25)):
        word = rng.choice(words)
        parts.append(f'<li class="nav-item"><a href="/{site}/{word}/">{word.title()}</a></li>')
    parts.append("</ul></nav>\n<main>\n")
    length = sum(len(p) for p in parts)
    while length < size:
        tag = rng.choice(_TAGS)
        text = " ".join(rng.choices(words, zipf, k=rng.randrange(3, 25)))
        if rng.random() < 0.6:  # a templated card: the repeated markup that makes HTML compress
            word = rng.choice(words)
            piece = (
                f'<div class="card {rng.choice(_CLASSES)}"><div class="card-body">'
                f'<h3 class="card-title"><a href="/{site}/{word}/{rng.randrange(10**6)}.html" '
                f'title="{word.title()}">{word.title()}</a></h3>\n'
                f'<p class="card-text text-muted small">{text}</p>'
                f'<span class="meta">{rng.randrange(1, 29)} comments</span></div></div>\n'
            )
        else:
            piece = f'<{tag} class="{rng.choice(_CLASSES)}">{text}</{tag}>\n'
        parts.append(piece)
        length += len(piece)
    parts.append("</main><footer>&copy; 2025</footer></body></html>\n")
    return "".join(parts).encode()


def make_corpus(pages: int, seed: int) -> list[tuple[bytes, bytes]]:
    """(page, gzipped page) pairs, the same for the same arguments."""
    rng = random.Random(seed)
    words = _vocabulary(rng)
    corpus = []
    for _ in range(pages):
        size = int(math.exp(rng.uniform(math.log(5_000), math.log(100_000))))
        page = make_page(rng, words, size)
        corpus.append((page, gzip.compress(page, compresslevel=6, mtime=0)))
    return corpus


def module_pass(module: Any, bodies: list[bytes]) -> int:
    decompressobj = module.decompressobj
    total = 0
    for body in bodies:
        total += len(decompressobj(31).decompress(body))
    return total


def decoder_pass(bodies: list[bytes], chunk: int | None) -> int:
    """Each body through a fresh GzipDecoder, whole (``chunk`` None) or in chunks of ``chunk``."""
    decoder_class = _decoders.GzipDecoder
    total = 0
    for body in bodies:
        decoder = decoder_class()
        size = chunk or len(body)  # a whole-range slice of bytes is the bytes, not a copy
        for start in range(0, len(body), size):
            for piece in decoder.feed(body[start : start + size]):
                total += len(piece)
        for piece in decoder.finish():
            total += len(piece)
    return total


def check(backend: str, corpus: list[tuple[bytes, bytes]], chunk: int) -> None:
    """Every way of inflating gives back every page, before anything is timed."""
    _decoders.use_inflate_backend(backend)
    for page, body in corpus:
        assert _MODULES[backend].decompressobj(31).decompress(body) == page, backend
        for size in (len(body), chunk):
            decoder = _decoders.GzipDecoder()
            pieces = [
                piece
                for start in range(0, len(body), size)
                for piece in decoder.feed(body[start : start + size])
            ]
            assert b"".join(pieces + list(decoder.finish())) == page, (backend, size)


def cpu_seconds(run: Callable[[], int], expected: int) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        produced = run()
        elapsed = time.process_time() - start
    finally:
        gc.enable()
    assert produced == expected
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--chunk", type=int, default=16 * 1024, help="bytes per fed chunk")
    ap.add_argument("--seed", type=int, default=1952)
    args = ap.parse_args()

    corpus = make_corpus(args.pages, args.seed)
    bodies = [body for _, body in corpus]
    inflated = sum(len(page) for page, _ in corpus)
    wire = sum(len(body) for body in bodies)
    sizes = sorted(len(page) for page, _ in corpus)
    backends = _decoders.inflate_backends()
    print(
        f"corpus: {len(corpus)} pages, {sizes[0] / 1e3:.1f} to {sizes[-1] / 1e3:.1f} KB "
        f"(median {statistics.median(sizes) / 1e3:.1f} KB), {inflated / 1e6:.1f} MB inflated, "
        f"{wire / 1e6:.2f} MB gzipped (level 6, ratio {inflated / wire:.2f})"
    )
    print(
        f"backends: {', '.join(backends)} (the import chose {_decoders.INFLATE_BACKEND!r}); "
        f"{args.rounds} rounds, Python {sys.version.split()[0]}"
    )
    chosen = _decoders.INFLATE_BACKEND
    for backend in backends:
        check(backend, corpus, args.chunk)

    modes: dict[str, Callable[[str], int]] = {
        "module": lambda backend: module_pass(_MODULES[backend], bodies),
        "decoder, whole body": lambda backend: decoder_pass(bodies, None),
        f"decoder, {args.chunk // 1024} KiB chunks": lambda backend: decoder_pass(
            bodies, args.chunk
        ),
    }
    cells = [(mode, backend) for mode in modes for backend in backends]
    samples: dict[tuple[str, str], list[float]] = {cell: [] for cell in cells}
    for round_number in range(args.rounds):
        shift = round_number % len(cells)
        for mode, backend in cells[shift:] + cells[:shift]:
            _decoders.use_inflate_backend(backend)  # what the decoders inflate with
            run = functools.partial(modes[mode], backend)
            samples[(mode, backend)].append(cpu_seconds(run, inflated))
    _decoders.use_inflate_backend(chosen)

    print()
    print(f"{'mode':24s} {'backend':8s} {'MB/s':>7s} {'x zlib':>7s} {'spread':>8s}")
    for mode in modes:
        zlib_rate = inflated / statistics.median(samples[(mode, "zlib")]) / 1e6
        for backend in backends:
            times = samples[(mode, backend)]
            rate = inflated / statistics.median(times) / 1e6
            spread = (max(times) - min(times)) / statistics.median(times)
            print(f"{mode:24s} {backend:8s} {rate:7.0f} {rate / zlib_rate:6.2f}x {spread:7.0%}")
    print("\nMB/s: inflated output per CPU second, median of the rounds; spread: (max-min)/median")


if __name__ == "__main__":
    main()
