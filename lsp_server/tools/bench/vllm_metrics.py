"""vLLM's own counters, read by the bench itself from each remote server's `/metrics`: the engine's
word on what a remote replay made the servers generate (the server under test counts only its own
tokens, and in its busy periods). On a server others use too, their tokens count as well.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import httpx

from engine.remote.metering import GENERATION, RUNNING
from engine.remote.wire import parse_prometheus


async def snapshot(urls: Sequence[str]) -> dict[str, float] | None:
    """The sum over `urls` of generated tokens and running requests; None if a server has no counters."""
    totals = {GENERATION: 0.0, RUNNING: 0.0}
    async with httpx.AsyncClient(timeout=10) as client:
        for url in urls:
            try:
                response = await client.get(f"{url.rstrip('/')}/metrics")
            except httpx.HTTPError:
                return None
            values = parse_prometheus(response.text, totals) if response.status_code == 200 else {}
            if GENERATION not in values:
                return None
            for name in totals:
                totals[name] += values.get(name, 0.0)
    return totals


async def settled(urls: Sequence[str], timeout: float = 120.0) -> dict[str, float] | None:
    """A snapshot once no server runs a request any more (an aborted request's last decode step is
    counted), or the last one when `timeout` runs out."""
    deadline = time.monotonic() + timeout
    values = None
    while time.monotonic() < deadline:
        values = await snapshot(urls)
        if values is None or values[RUNNING] == 0:
            return values
        await asyncio.sleep(0.1)
    return values
