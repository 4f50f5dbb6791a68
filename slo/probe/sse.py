"""The lines of a server-sent event stream, read within deadlines and memory bounds.

A gateway can answer 200 ``text/event-stream`` and then send only ``: keepalive`` comments,
or chunks whose deltas are empty, for ever. :class:`EventLines` reads the stream in bounded
pieces (a line at most MAX_LINE, the body at most the target's `max_response_bytes`); the
first content token must arrive by its own deadline, the rest by the exchange's deadline
(the ``deadline`` of :meth:`ProbeClient.stream`). Either one passing is a ``timeout``
:class:`ProbeFailure` that says what the stream did send:

    with client.stream("POST", "/v1/chat/completions", json=body, deadline=10) as response:
        lines = EventLines(response, first_token_deadline=2.0, cap=client.target.max_response_bytes)
        for line in lines:
            ...
            if delta.get("content"):
                lines.token_arrived()  # from here on, only the exchange's deadline
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator

import httpx

from slo.probe.body import BodyTooLarge, UnsupportedEncoding, iter_body
from slo.probe.deadline import exchange_deadline
from slo.probe.expect import describe
from slo.probe.failures import ProbeFailure
from slo.redact import excerpt
from slo.units import format_ms

__all__ = ["MAX_LINE", "EventLines", "split_lines"]

#: One event line; a completion chunk is a few hundred bytes.
MAX_LINE = 1024 * 1024


def split_lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """The decoded lines of a body arriving in chunks, each as soon as its newline is in; a line
    over :data:`MAX_LINE` raises :class:`~slo.probe.body.BodyTooLarge`."""
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


class EventLines:
    """Iterate the decoded lines of a streamed response; see the module docstring.

    `started` (``time.perf_counter()`` before the request was sent, default now) is when the
    first-token deadline counts from.
    """

    def __init__(
        self, response: httpx.Response, *, first_token_deadline: float, cap: int, started: float | None = None
    ) -> None:
        self._response = response
        self._lines = split_lines(iter_body(response, cap))
        self._started = time.perf_counter() if started is None else started
        self._first_token_deadline = first_token_deadline
        self._waiting = True
        self.comments = 0
        self.data_lines = 0

    def token_arrived(self) -> None:
        """The first content token came: only the exchange's deadline holds from here on."""
        self._waiting = False

    def seen(self) -> str:
        return f"saw {self.comments} keep-alive comment(s), {self.data_lines} data line(s) without content"

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        try:
            if self._waiting:
                # Entered and left within this call: a context variable must never outlive
                # the call that set it (a generator could leave it set in the caller).
                with exchange_deadline(self._first_token_deadline - (time.perf_counter() - self._started)):
                    line = next(self._lines)
            else:
                line = next(self._lines)
        except httpx.TimeoutException:
            raise self._timeout() from None
        except (BodyTooLarge, UnsupportedEncoding, zlib.error) as exc:
            raise ProbeFailure(
                f"{describe(self._response)} stream stopped: {excerpt(str(exc), 120)}: {self.seen()}", "error"
            ) from None
        if line.startswith(":"):
            self.comments += 1
        elif line.startswith("data:") and self._waiting:
            self.data_lines += 1
        return line

    def _timeout(self) -> ProbeFailure:
        elapsed = format_ms(time.perf_counter() - self._started)
        if self._waiting:
            waited = f"the first content token ({format_ms(self._first_token_deadline)} first-token deadline)"
        else:
            waited = "the end of the stream (the exchange's deadline)"
        what = describe(self._response)
        return ProbeFailure(
            f"{what} stream timed out after {elapsed} waiting for {waited}: {self.seen()}", "timeout"
        )
