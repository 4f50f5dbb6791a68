"""Bytes of response bodies a batch holds at once: reserved as they arrive, given back when
each response has been judged.

A cap per body times the number of requests in flight would limit a batch to 16 requests at
the default 16 MiB cap and a 256 MiB budget, though nearly every body is a few hundred bytes.
Here a response reserves its bytes as they arrive; one that cannot have more waits (its
transfer is paused) until others give theirs back.

Waiting alone could stall: every response holding part of the budget, each waiting for more.
So the budget keeps one body's worth (the largest cap) apart, and lends it to one waiting
response at a time, the first to wait: that one can always finish, give everything back, and
the others go on. Memory held never exceeds the budget, and the batch always progresses.

    budget = ByteBudget(256 << 20, largest_cap=16 << 20)
    share = Share()
    granted = budget.grant(share, len(chunk))  # 0: wait, then ask again after a release
    budget.release(share)                      # once the response is judged or failed
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ByteBudget", "Share"]


@dataclass
class Share:
    """What one response holds of the budget."""

    shared: int = 0
    lent: int = 0


class ByteBudget:
    def __init__(self, total: int, largest_cap: int) -> None:
        # One byte over the cap: the byte that proves a body is over it is held for a moment.
        self._apart = largest_cap + 1
        self._free = max(0, total - self._apart)
        self._lent_to: Share | None = None

    def grant(self, share: Share, wanted: int) -> int:
        """Up to `wanted` bytes (at most a cap's worth in all) added to `share`; 0 when the
        response must wait for a :meth:`release`."""
        if share is self._lent_to:
            granted = min(wanted, self._apart - share.lent)
            share.lent += granted
            return granted
        granted = min(wanted, self._free)
        if granted == 0 and self._lent_to is None:
            self._lent_to = share
            return self.grant(share, wanted)
        self._free -= granted
        share.shared += granted
        return granted

    def release(self, share: Share) -> None:
        """Everything `share` holds given back."""
        self._free += share.shared
        if share is self._lent_to:
            self._lent_to = None
        share.shared = share.lent = 0
