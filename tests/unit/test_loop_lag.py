"""The event loop's lag: largest and 99th percentile over the last minute."""

from __future__ import annotations

import asyncio
import time

from lsp_server.loop_lag import LoopLag


def test_summary_is_the_largest_and_the_99th_percentile_of_the_last_minute():
    lag = LoopLag(window=60)
    for i in range(200):
        lag.record(0.001 * (i % 10), now=100.0 + i * 0.05)
    lag.record(2.0, now=100.0 + 200 * 0.05)  # one long block
    summary = lag.summary(now=111.0)
    assert summary["event_loop_lag_max_ms"] == 2000.0
    assert summary["event_loop_lag_p99_ms"] == 9.0
    # A minute later the block is forgotten.
    lag.record(0.0, now=200.0)
    assert lag.summary(now=200.0) == {"event_loop_lag_max_ms": 0.0, "event_loop_lag_p99_ms": 0.0}


def test_no_samples_no_lag():
    assert LoopLag().summary() == {"event_loop_lag_max_ms": 0.0, "event_loop_lag_p99_ms": 0.0}


async def test_a_blocked_loop_shows_as_lag():
    lag = LoopLag(interval=0.01)
    lag.start()
    await asyncio.sleep(0.05)
    time.sleep(0.2)  # the kind of thing that must never happen on the server's loop
    await asyncio.sleep(0.05)
    await lag.stop()
    assert lag.summary()["event_loop_lag_max_ms"] >= 150
