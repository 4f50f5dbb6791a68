"""Reading a response body with a size cap that holds before decompression inflates it.

httpx decodes each network chunk whole: 64 KiB of gzip can inflate to 64 MiB in one call,
and a 10 MiB gzip body to 10 GiB. Here the raw bytes are read in bounded chunks and
inflated with zlib's `max_length`, so memory never exceeds the cap plus one chunk, whatever
the target sends. Only identity, gzip and deflate are accepted (and asked for: the client
sends ``Accept-Encoding: gzip, deflate``), so no decoder runs without its bound.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import httpx

__all__ = [
    "ACCEPT_ENCODING",
    "MAX_LINE",
    "BodyTooLarge",
    "Inflater",
    "UnsupportedEncoding",
    "content_decoder",
    "iter_body",
    "read_body",
    "split_lines",
]

ACCEPT_ENCODING = "gzip, deflate"


class BodyTooLarge(Exception):
    def __init__(self, cap: int) -> None:
        super().__init__(f"response body over the {_size(cap)} cap (max_response_bytes)")
        self.cap = cap


class UnsupportedEncoding(Exception):
    pass


def _size(count: int) -> str:
    return f"{count / 1048576:g} MiB" if count >= 1048576 else f"{count} bytes"


class Inflater:
    """zlib for gzip and deflate (zlib-wrapped or raw, as browsers accept), one bounded call at a time."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16 if self._gzip else zlib.MAX_WBITS)
        self._first = True

    def step(self, data: bytes, limit: int) -> tuple[bytes, bytes]:
        """At most `limit` (>= 1) bytes inflated from `data`, and the input left for the next
        call (empty once `data` is used up or the stream has ended)."""
        while True:
            try:
                piece = self._zlib.decompress(data, limit)
            except zlib.error:
                if self._gzip or not self._first:
                    raise
                # "deflate" without the zlib header: retry as a raw stream.
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                self._first = False
                continue
            self._first = False
            return piece, b"" if self._zlib.eof else self._zlib.unconsumed_tail

    def feed(self, data: bytes, limit: int) -> Iterator[bytes]:
        """Inflate `data`, yielding pieces, and stop once more than `limit` bytes came out
        (the caller, which knows the cap, says so)."""
        produced = 0
        while data and produced <= limit:
            piece, data = self.step(data, max(1, limit - produced + 1))
            produced += len(piece)
            yield piece


def content_decoder(headers: httpx.Headers) -> Inflater | None:
    """The bounded decoder of a response's Content-Encoding (None: identity); any encoding
    but gzip and deflate raises :class:`UnsupportedEncoding`."""
    encodings = [e.strip().lower() for e in headers.get("content-encoding", "").split(",") if e.strip()]
    encodings = [e for e in encodings if e != "identity"]
    if len(encodings) > 1 or (encodings and encodings[0] not in ("gzip", "x-gzip", "deflate")):
        raise UnsupportedEncoding(f"unsupported Content-Encoding {', '.join(encodings)[:40]!r}")
    return Inflater(encodings[0]) if encodings else None


def iter_body(response: httpx.Response, cap: int) -> Iterator[bytes]:
    """The decoded body in pieces of one network read each; over `cap` bytes (raw or
    decoded) raises :class:`BodyTooLarge` before the excess is held in memory."""
    inflater = content_decoder(response.headers)
    raw = decoded = 0
    # As the network delivers it (httpcore reads at most 64 KiB at a time): a chunk size
    # here would hold back a stream's small events until 64 KiB had gathered.
    for chunk in response.iter_raw():
        raw += len(chunk)
        if raw > cap:
            raise BodyTooLarge(cap)
        pieces = inflater.feed(chunk, cap - decoded) if inflater else iter((chunk,))
        for piece in pieces:
            decoded += len(piece)
            if decoded > cap:
                raise BodyTooLarge(cap)
            yield piece


def read_body(response: httpx.Response, cap: int) -> bytes:
    body = bytearray()
    for piece in iter_body(response, cap):
        body += piece
    return bytes(body)


#: One event line; a completion chunk is a few hundred bytes.
MAX_LINE = 1024 * 1024


def split_lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """The decoded lines of a body arriving in chunks, each as soon as its newline is in; a line
    over :data:`MAX_LINE` raises :class:`BodyTooLarge`."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.rstrip(b"\r").decode("utf-8", errors="replace")
        if len(pending) > MAX_LINE:
            raise BodyTooLarge(MAX_LINE)
    if pending:
        yield pending.decode("utf-8", errors="replace")
