"""What RFC 9112 asks a recipient to accept and llhttp (inside httptools) refuses.

Three things, each rare, so nothing here runs on the hot path: the connection re-parses leniently
only after httptools has reported an error, and only when the fix below changes something.

* obs-fold in a field (RFC 9112 section 5.2): a field line continued on the next line that starts
  with SP or HTAB. A user agent replaces each obs-fold with SP before interpreting the value.
* A Content-Length field repeated, or given as a list, with one value throughout (RFC 9110 section
  8.6): a recipient may take that value. Differing values stay an error (real ambiguity), and so
  does Content-Length beside Transfer-Encoding (llhttp refuses that combination itself).
* Whitespace (BWS) around a chunk extension's ";" and "=" (RFC 9112 section 7.1.1). Extensions
  carry nothing we use, so a chunk-size line is parsed here and handed on as its bare size.

Everything else llhttp refuses stays refused.
"""

from __future__ import annotations

import re

from ..exceptions import RemoteProtocolError

__all__ = ["HEAD_END", "chunk_size", "head_end", "normalise_heads", "resume_offset"]

HEAD_END = b"\r\n\r\n"
_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = rb'"(?:[^"\\\r\n]|\\[^\r\n])*"'
# chunk = chunk-size [ chunk-ext ] CRLF; chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] )
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;[ \t]*" + _TOKEN
    + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?)*\r\n"
)  # fmt: skip
MAX_CHUNK_LINE = 4096  # a longer chunk-size line is refused rather than buffered

# Positions in the events a connection records while a body is parsed (see ``resume_offset``):
CHUNK_HEADER = -1  # httptools' on_chunk_header: a chunk-size line was complete
CHUNK_COMPLETE = -2  # on_chunk_complete: the CRLF after a chunk's data was complete
# a number >= 0 is on_body with that many bytes of data


def head_end(data: bytes, heads: int) -> int:
    """The offset just past the end of head number ``heads`` (1-based) in ``data``, or -1.

    Heads follow each other without anything between them (interim 1xx responses have no
    content) and contain no empty line, so the n-th empty line ends the n-th head."""
    end = 0
    for _ in range(heads):
        found = data.find(HEAD_END, end)
        if found < 0:
            return -1
        end = found + len(HEAD_END)
    return end


def normalise_heads(data: bytes, heads: int) -> bytes | None:
    """``data`` with its first ``heads`` heads normalised (obs-fold unfolded, a repeated
    Content-Length of one value given once), followed by whatever came after them unchanged.

    None when the last of those heads has not fully arrived yet."""
    end = head_end(data, heads)
    if end < 0:
        return None
    fixed = []
    start = 0
    while start < end:
        stop = data.index(HEAD_END, start) + len(HEAD_END)
        fixed.append(_normalise_head(data[start:stop]))
        start = stop
    return b"".join(fixed) + data[end:]


def _normalise_head(head: bytes) -> bytes:
    lines = head[: -len(HEAD_END)].split(b"\r\n")
    out = [lines[0]]
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and len(out) > 1:
            # obs-fold: the line continues the previous field's value (RFC 9112 section 5.2). A
            # folded line right after the status line is not a field's and stays refused.
            out[-1] = out[-1] + b" " + line.lstrip(b" \t")
        else:
            out.append(line)
    lengths = [i for i, line in enumerate(out) if i and _name(line) == b"content-length"]
    if len(lengths) > 1 or (lengths and b"," in out[lengths[0]]):
        values = {v.strip(b" \t") for i in lengths for v in out[i].partition(b":")[2].split(b",")}
        value = values.pop() if len(values) == 1 else b""
        if value.isdigit():  # one value throughout: keep it once (RFC 9110 section 8.6)
            first = lengths[0]
            out = [line for i, line in enumerate(out) if i == first or i not in lengths]
            out[first] = b"Content-Length: " + value
    return b"\r\n".join(out) + HEAD_END


def _name(line: bytes) -> bytes:
    return line.partition(b":")[0].lower()


def chunk_size(line: bytes) -> int:
    """The size of a chunk from its whole size line (CRLF included), extensions and the BWS
    around them allowed (RFC 9112 section 7.1.1); RemoteProtocolError for anything else."""
    match = _CHUNK_LINE.fullmatch(line)
    if match is None:
        raise RemoteProtocolError(f"malformed response: invalid chunk-size line {line[:80]!r}")
    return int(match.group(1), 16)


def resume_offset(data: bytes, in_line: bool, heads: int, events: list[int]) -> int:
    """Where, in ``data``, the chunk-size line that httptools refused begins; -1 when the refused
    bytes were not a chunk-size line.

    ``data`` is what the parser was fed since a known place: the start of the response (``heads``
    > 0: that many heads end in it, the last one the final head), the start of a chunk-size line
    (``in_line``), or otherwise somewhere in a chunk's data or the CRLF after it. ``events`` are
    the parser's callbacks on that data, in order (see CHUNK_HEADER). httptools does not say where
    an error is; these are enough to walk to it: data bytes are counted, and every other step ends
    at a known line feed (llhttp requires CRLF).
    """
    position = head_end(data, heads) if heads else 0
    if position < 0:
        return -1
    in_line = in_line or heads > 0
    for event in events:
        if event >= 0:
            position += event
            in_line = False
        elif event == CHUNK_COMPLETE or in_line:
            # the CRLF after a chunk's data, or the rest of a chunk-size line
            position = data.index(b"\n", position) + 1
            in_line = event == CHUNK_COMPLETE
        # a CHUNK_HEADER outside a line cannot happen: a chunk's data is followed by its CRLF
    return position if in_line else -1
