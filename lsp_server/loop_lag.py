"""How late the server's event loop runs what is due: everything the server does (reading the
editor's messages, reading the engine's stream, answering) waits behind whatever holds the loop, so
its lag is the floor of every reaction time, a stop included.

A task asks to wake every `interval` seconds and records how much later than asked it woke. The
largest lag and the 99th percentile over the last minute go to `vllm-ls/stats`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque


class LoopLag:
    def __init__(self, interval: float = 0.05, window: float = 60.0):
        self.interval = interval
        self.window = window
        self._samples: deque[tuple[float, float]] = deque()  # (when, lag in seconds)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Start measuring on the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="vllm-ls loop lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def record(self, lag: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._samples.append((now, max(0.0, lag)))
        while self._samples and self._samples[0][0] < now - self.window:
            self._samples.popleft()

    def summary(self, now: float | None = None) -> dict[str, float]:
        """`event_loop_lag_max_ms` and `event_loop_lag_p99_ms` over the last minute (0 with no samples)."""
        now = time.monotonic() if now is None else now
        lags = sorted(lag for when, lag in self._samples if when >= now - self.window)
        if not lags:
            return {"event_loop_lag_max_ms": 0.0, "event_loop_lag_p99_ms": 0.0}
        p99 = lags[min(len(lags) - 1, math.ceil(0.99 * len(lags)) - 1)]
        return {"event_loop_lag_max_ms": round(lags[-1] * 1000, 1), "event_loop_lag_p99_ms": round(p99 * 1000, 1)}

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self.record(loop.time() - asked)
