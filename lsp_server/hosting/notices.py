"""When to interrupt the user about a fault, and when to write its details to the log.

A server that fails on every keystroke must not pop up a message on every keystroke. Faults come in
episodes: the first failure of a kind opens one (one popup), the next success closes it. A kind
that keeps flapping (down, up, down) does not pop up again until `quiet_s` has passed since its
last popup. Details go to the client's log (`window/logMessage`) for every failure, except that an
identical detail is written at most once per `log_gap_s`. Pure bookkeeping: the clock is injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Kind:
    open: bool = False
    last_popup: float = float("-inf")
    logged: dict[str, float] = field(default_factory=dict)


class Notices:
    """Decides which faults become a popup and which a log line: one popup per episode of trouble."""

    def __init__(self, quiet_s: float = 300.0, log_gap_s: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.quiet_s = quiet_s
        self.log_gap_s = log_gap_s
        self._clock = clock
        self._kinds: dict[str, _Kind] = {}

    def trouble(self, kind: str, detail: str) -> tuple[bool, bool]:
        """A failure of `kind`: (pop up now?, write `detail` to the log now?)."""
        now = self._clock()
        state = self._kinds.setdefault(kind, _Kind())
        popup = not state.open and now - state.last_popup >= self.quiet_s
        state.open = True
        if popup:
            state.last_popup = now
        last_logged = state.logged.get(detail, float("-inf"))
        log = now - last_logged >= self.log_gap_s
        if log:
            state.logged[detail] = now
            if len(state.logged) > 64:  # details carry numbers (seconds, ports): keep the newest
                for stale in sorted(state.logged, key=state.logged.get)[:32]:
                    del state.logged[stale]
        return popup, log

    def recovered(self, kind: str) -> bool:
        """The fault of `kind` is over (a success); True if an episode was open."""
        state = self._kinds.get(kind)
        if state is None or not state.open:
            return False
        state.open = False
        return True

    def is_open(self, kind: str) -> bool:
        """An episode of this kind of trouble is going on."""
        state = self._kinds.get(kind)
        return state is not None and state.open


class LatencyWatch:
    """Whether completions are consistently slow: the last `window` engine answers (a timed-out
    request counts as slow) all took longer than `slow_ms`. Tabby's latency tracker is the model:
    one bad answer says nothing, a window of them says the setup is too slow for typing. The
    episode ends when the window's average is back under the threshold. Pure: no clock."""

    def __init__(self, window: int = 10, slow_ms: float = 3000.0):
        self.window = window
        self.slow_ms = slow_ms
        self._latencies: list[float] = []  # the newest last; inf for a timeout
        self.slow = False

    def add(self, latency_ms: float) -> bool | None:
        """One engine answer took `latency_ms` (`math.inf`: it timed out). True when completions just
        became consistently slow, False when they just stopped being so, None when nothing changed."""
        self._latencies.append(latency_ms)
        del self._latencies[:-self.window]
        full = len(self._latencies) == self.window
        if not self.slow and full and min(self._latencies) > self.slow_ms:
            self.slow = True
            return True
        if self.slow and self.average_ms() < self.slow_ms:
            self.slow = False
            return False
        return None

    def average_ms(self) -> float:
        """The window's average latency, timeouts left out (inf when all timed out)."""
        answered = [value for value in self._latencies if value != float("inf")]
        return sum(answered) / len(answered) if answered else float("inf")

    def timeouts(self) -> int:
        return sum(1 for value in self._latencies if value == float("inf"))
