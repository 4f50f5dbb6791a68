"""When the warm runner's runs are due: every period from its start, each delayed by a jitter.

Pure arithmetic on monotonic seconds, so the schedule is tested without waiting::

    ticks = Ticks(every=60, jitter=5, start=0.0, rng=random.Random(1))
    ticks.next          # the first tick: 0 + a jitter in [0, 5)
    ticks.advance(61)   # 1 tick was due; the next is 60 + a fresh jitter
"""

from __future__ import annotations

import math
import random


class Ticks:
    def __init__(self, every: float, jitter: float, start: float, rng: random.Random | None = None) -> None:
        if every <= 0:
            raise ValueError("the period must be positive")
        self.every = every
        self.jitter = jitter
        self.start = start
        self.rng = rng or random.Random()
        self.period = 0
        self.next = self._at(0)

    def _at(self, period: int) -> float:
        # The jitter spreads a fleet's runners over the period's start, never past the next one.
        return self.start + period * self.every + self.rng.uniform(0, min(self.jitter, self.every))

    def advance(self, now: float) -> int:
        """Move past every tick due at `now`; how many were due (0 when none)."""
        if now < self.next:
            return 0
        elapsed = math.floor((now - self.start) / self.every)
        due = max(1, elapsed - self.period + 1)
        self.period = max(self.period + 1, elapsed + 1)
        self.next = self._at(self.period)
        return due
