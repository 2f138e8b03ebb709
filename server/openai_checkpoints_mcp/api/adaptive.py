"""An adaptive bound on requests in flight (AIMD), free of I/O.

`AdaptiveLimit` starts at its ceiling (``--concurrency``). A throttled answer (429, or a success whose
``x-ratelimit-remaining-requests`` is below the bound: not even one more round fits) halves the bound, never below
1; each success grows it back by ``1 / bound``, so one full round of successes at bound *b* adds about one, up to
the ceiling (TCP's congestion avoidance). Only one halving per round: an answer to a request sent before the last
decrease does not shrink the bound again, so a burst of 429s from requests already in flight counts once.
"""

from __future__ import annotations

from collections.abc import Mapping

RATE_LIMITED = 429
REMAINING_HEADER = "x-ratelimit-remaining-requests"


class AdaptiveLimit:
    """The current bound on requests in flight, between 1 and `ceiling`."""

    def __init__(self, ceiling: int) -> None:
        if ceiling < 1:
            raise ValueError("ceiling must be at least 1")
        self.ceiling = ceiling
        self._window = float(ceiling)
        self._epoch = 0
        """Bumped at each decrease; `begin` hands it out, `observe` compares against it."""
        self.decreases = 0

    @property
    def bound(self) -> int:
        """Requests allowed in flight now: the window rounded down, in [1, ceiling]."""
        return max(1, min(self.ceiling, int(self._window)))

    def begin(self) -> int:
        """A token for a request about to be sent; pass it to `observe` with the answer."""
        return self._epoch

    def on_success(self) -> None:
        """Additive increase: +1/bound, up to the ceiling."""
        self._window = min(float(self.ceiling), self._window + 1.0 / self.bound)

    def on_throttle(self, token: int) -> bool:
        """Multiplicative decrease (halve, floor 1), unless the request was sent before the last decrease.
        Returns whether the bound shrank."""
        if token < self._epoch:
            return False
        self._window = max(1.0, float(self.bound // 2))
        self._epoch += 1
        self.decreases += 1
        return True

    def _too_few_remaining(self, headers: Mapping[str, str] | None) -> bool:
        """Whether the answer says fewer requests remain in the rate-limit window than one round at the bound."""
        value = (headers or {}).get(REMAINING_HEADER)
        if value is None:
            return False
        try:
            return int(value.strip()) < self.bound
        except ValueError:
            return False

    def observe(self, token: int, status: int | None, headers: Mapping[str, str] | None) -> None:
        """Adapt to one answer: `status` None (no answer) changes nothing; 429, or a 2xx saying no requests
        remain in the window, is a throttle; another 2xx a success. Other failures change nothing."""
        if status is None:
            return
        if status == RATE_LIMITED or (status < 300 and self._too_few_remaining(headers)):
            self.on_throttle(token)
        elif status < 300:
            self.on_success()
