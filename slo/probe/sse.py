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
                lines.token_arrived()  # from here on, the gap budget and the exchange's deadline
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator

import httpx

from slo.exchange.body import BodyTooLarge, UnsupportedEncoding, iter_body, split_lines
from slo.exchange.deadline import exchange_deadline, remaining, run_deadline_passed
from slo.exchange.failures import ProbeFailure
from slo.probe.expect import describe
from slo.redact import excerpt
from slo.units import format_ms

__all__ = ["EventLines"]


class EventLines:
    """Iterate the decoded lines of a streamed response; see the module docstring.

    `started` (``time.perf_counter()`` before the request was sent, default now) is when the
    first-token deadline counts from; `max_token_gap` (None: none) bounds the wait from each
    content token to the next; `deadline` is the exchange's own, named when it is the one that
    ends the wait. A timeout names the deadline that fired and counts what arrived.
    """

    def __init__(
        self,
        response: httpx.Response,
        *,
        first_token_deadline: float,
        cap: int,
        started: float | None = None,
        max_token_gap: float | None = None,
        deadline: float | None = None,
    ) -> None:
        self._response = response
        self._lines = split_lines(iter_body(response, cap))
        self._started = time.perf_counter() if started is None else started
        self._first_token_deadline = first_token_deadline
        self._max_token_gap = max_token_gap
        self._deadline = deadline
        self._last_token: float | None = None
        self.tokens = 0
        self.comments = 0
        self.data_lines = 0

    def token_arrived(self) -> None:
        """A content token came: from here on the wait for the next one is bounded by the gap
        budget, and by the exchange's deadline."""
        self.tokens += 1
        self._last_token = time.perf_counter()

    def seen(self) -> str:
        empty = max(self.data_lines - self.tokens, 0)
        return (
            f"saw {self.tokens} content token(s), {empty} data line(s) without content, "
            f"{self.comments} keep-alive comment(s)"
        )

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        own = self._own_limit(time.perf_counter())
        outer = remaining()
        fired = None
        try:
            if own is not None and (outer is None or own[0] < outer):
                fired = own[1]
                # Entered and left within this call: a context variable must never outlive
                # the call that set it (a generator could leave it set in the caller).
                with exchange_deadline(own[0]):
                    line = next(self._lines)
            else:
                line = next(self._lines)
        except httpx.TimeoutException:
            raise self._timeout(fired) from None
        except (BodyTooLarge, UnsupportedEncoding, zlib.error) as exc:
            raise ProbeFailure(
                f"{describe(self._response)} stream stopped: {excerpt(str(exc), 120)}: {self.seen()}", "error"
            ) from None
        if line.startswith(":"):
            self.comments += 1
        elif line.startswith("data:"):
            self.data_lines += 1
        return line

    def _own_limit(self, now: float) -> tuple[float, str] | None:
        """Seconds left of this stream's own deadline (first token, or the gap since the last
        one), and what the wait is for; None when only the exchange's deadline holds."""
        if self._last_token is None:
            waited = f"the first content token ({format_ms(self._first_token_deadline)} first-token deadline)"
            return self._first_token_deadline - (now - self._started), waited
        if self._max_token_gap is None:
            return None
        since = format_ms(self._last_token - self._started)
        waited = (
            f"the next token ({format_ms(self._max_token_gap)} max_token_gap, "
            f"token {self.tokens} came at {since})"
        )
        return self._max_token_gap - (now - self._last_token), waited

    def _timeout(self, waited: str | None) -> ProbeFailure:
        elapsed = format_ms(time.perf_counter() - self._started)
        if waited is None:
            if run_deadline_passed():
                limit = "the run deadline"
            elif self._deadline is not None:
                limit = f"{format_ms(self._deadline)} deadline for the whole exchange"
            else:
                limit = "the exchange's deadline"
            waited = f"the end of the stream ({limit})"
        what = describe(self._response)
        return ProbeFailure(
            f"{what} stream timed out after {elapsed} waiting for {waited}: {self.seen()}", "timeout"
        )
