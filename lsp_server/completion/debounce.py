"""Adaptive debounce: how long to wait after a keystroke before asking the engine, learned from the
user's typing rhythm and the engine's latency.

Firing `d` seconds after a keystroke costs two things, read off the recent gaps `g` between keystrokes:
- after a pause (a gap longer than `MAX_INTERVAL`: the user stopped to look), the user waited `d`
  longer than necessary;
- inside a typing burst (`d < g <= MAX_INTERVAL`), the request is superseded by the next keystroke,
  and the engine has worked `min(g - d, L)` seconds for nothing (`L`: its recent latency;
  cancel-previous aborts the request at the keystroke).
Gaps shorter than `d` cost nothing: the request never left. The interval is the `d` that minimises
the sum over the recent gaps, within bounds, with engine time weighed against the user's time by
`engine_weight`. A slow engine makes wasted requests expensive, so `d` grows to cover the gaps of a
burst; a fast one (or a low weight) makes them cheap, so `d` shrinks toward firing at once. With too
few observations the fixed interval (`debounceMs`) is used.

Whether this beats the fixed interval is decided by the benchmark, not here.
"""

from __future__ import annotations

import bisect
from collections import deque

#: Bounds of the learned interval: below 20 ms every keystroke would reach the engine; above 750 ms
#: ghost text appears too late to be typed along.
MIN_INTERVAL = 0.02
MAX_INTERVAL = 0.75
#: A gap longer than this is a change of activity (reading, thinking), not typing rhythm.
_LONGEST_GAP = 5.0
_MIN_SAMPLES = 10
_STEP = 0.01


class AdaptiveDebounce:
    """Learns the debounce interval from the gaps between keystrokes and the engine's latency."""

    def __init__(self, window: int = 200, engine_weight: float = 1.0):
        #: One second of wasted engine time is worth this many seconds of a user's wait.
        self.engine_weight = engine_weight
        self._gaps: deque[float] = deque(maxlen=window)
        self._last_change: dict[str, float] = {}
        self._latency: float | None = None
        self._memo: tuple[tuple[int, float], float] | None = None
        self._observations = 0

    def keystroke(self, uri: str, now: float) -> None:
        """A change to document `uri` at monotonic time `now`."""
        last = self._last_change.get(uri)
        self._last_change[uri] = now
        if last is not None and 0 <= now - last <= _LONGEST_GAP:
            self._gaps.append(now - last)
            self._observations += 1

    def engine_latency(self, seconds: float) -> None:
        """The duration of one finished engine request (exponentially weighted)."""
        self._latency = seconds if self._latency is None else 0.7 * self._latency + 0.3 * seconds

    def forget(self, uri: str) -> None:
        """A document was closed: its last keystroke no longer counts."""
        self._last_change.pop(uri, None)

    @property
    def samples(self) -> int:
        """How many keystroke gaps the interval is learned from."""
        return len(self._gaps)

    def interval(self, fixed: float) -> float:
        """The debounce interval to use now (`fixed` until there is enough to learn from)."""
        if not self.learned:
            return fixed
        latency = round(self._latency or 0.0, 2)
        memo_key = (self._observations, latency)
        if self._memo is not None and self._memo[0] == memo_key:
            return self._memo[1]
        best = _best_interval(sorted(self._gaps), latency, self.engine_weight)
        self._memo = (memo_key, best)
        return best

    def wait(self, uri: str, fixed: float, now: float) -> float:
        """How much longer to wait for document `uri`: the interval counts from its last keystroke."""
        if not self.learned:
            return fixed
        interval = self.interval(fixed)
        last = self._last_change.get(uri)
        return interval if last is None else max(0.0, interval - (now - last))

    @property
    def learned(self) -> bool:
        """Enough gaps and an engine latency are known to choose the interval."""
        return len(self._gaps) >= _MIN_SAMPLES and self._latency is not None


def _best_interval(gaps: list[float], latency: float, weight: float) -> float:
    """The `d` in [MIN_INTERVAL, MAX_INTERVAL] with the least cost over `gaps` (sorted)."""
    prefix = [0.0]
    for gap in gaps:
        prefix.append(prefix[-1] + gap)
    pauses_from = bisect.bisect_right(gaps, MAX_INTERVAL)
    pauses = len(gaps) - pauses_from
    best, best_cost = MIN_INTERVAL, float("inf")
    steps = round((MAX_INTERVAL - MIN_INTERVAL) / _STEP)
    for i in range(steps + 1):
        d = MIN_INTERVAL + i * _STEP
        lo = bisect.bisect_right(gaps, d)  # gaps <= d: debounced, free
        mid = max(lo, min(pauses_from, bisect.bisect_right(gaps, d + latency)))
        # Superseded while the engine worked: g - d for gaps in (d, d + L], L for the rest of the burst.
        wasted = (prefix[mid] - prefix[lo]) - d * (mid - lo) + latency * (pauses_from - mid)
        cost = pauses * d + weight * wasted
        if cost < best_cost - 1e-12:
            best, best_cost = d, cost
    return round(best, 3)
