"""Reads each endpoint's `/metrics` around our busy periods, so that `metering.py` can scope the
server's own counters to our requests: a snapshot when our first request starts on an endpoint, and
one once the server has settled after our last one ends (including the decode step an abort takes).
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from .metering import METRICS, RUNNING, BusyMeter, Tally, attributed
from .probe import Fetch
from .replicas import Endpoint
from .wire import WireError, parse_prometheus

log = logging.getLogger(__name__)


class Scraper:
    def __init__(self, urls: list[str], fetch: Fetch, timeout: httpx.Timeout):
        self.tallies: dict[str, Tally] = {url: Tally() for url in urls}
        self.meters: dict[str, BusyMeter] = {url: BusyMeter() for url in urls}
        self._fetch = fetch
        self._timeout = timeout
        self._opening: dict[str, asyncio.Task] = {}  # snapshots that open a busy period
        self._closing: dict[str, asyncio.Task] = {}  # ... and that close one once the server settled

    def totals(self) -> Tally:
        """The server's counts for our requests on every endpoint (never below our own tally)."""
        totals = [attributed(self.meters[url], tally) for url, tally in self.tallies.items()]
        return Tally(sum(t.generated for t in totals), sum(t.prompt for t in totals), sum(t.cached for t in totals))

    def available(self, url: str) -> bool:
        return not self.meters[url].unavailable

    def tasks(self) -> list[asyncio.Task]:
        return [*self._opening.values(), *self._closing.values()]

    def forget_tasks(self) -> list[asyncio.Task]:
        tasks = self.tasks()
        self._opening.clear()
        self._closing.clear()
        return tasks

    def begin(self, endpoint: Endpoint) -> None:
        """A request of ours starts on `endpoint` (its `in_flight` already counts it)."""
        if self.meters[endpoint.url].unavailable or endpoint.in_flight != 1:
            return
        closing = self._closing.pop(endpoint.url, None)
        if closing is not None and not closing.done():
            closing.cancel()  # a new request before the server settled: the busy period goes on
            return
        opening = self._opening.get(endpoint.url)
        if self.meters[endpoint.url].open or (opening is not None and not opening.done()):
            return
        # Not awaited by the request, which is sent at the same time: a first token counted
        # before this snapshot lands is covered by the floor (our own tally).
        self._opening[endpoint.url] = asyncio.create_task(self._open(endpoint))

    def end(self, endpoint: Endpoint) -> None:
        """A request of ours on `endpoint` ended (its `in_flight` no longer counts it)."""
        if endpoint.in_flight == 0 and not self.meters[endpoint.url].unavailable:
            self._closing[endpoint.url] = asyncio.create_task(self._close(endpoint))

    async def refresh(self, endpoints: list[Endpoint]) -> None:
        """Wait for pending snapshots, and read the counters of busy periods still open."""
        pending = [task for task in self.tasks() if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=5)
        for endpoint in endpoints:
            meter = self.meters[endpoint.url]
            if meter.open and not meter.unavailable:
                snapshot = await self.scrape(endpoint)
                if snapshot is not None:
                    meter.observe(snapshot)

    async def _open(self, endpoint: Endpoint) -> None:
        snapshot = await self.scrape(endpoint)
        if snapshot is not None:
            self.meters[endpoint.url].start(snapshot)

    async def _close(self, endpoint: Endpoint) -> None:
        opening = self._opening.get(endpoint.url)
        if opening is not None and not opening.done():
            await asyncio.wait([opening])  # wait, not gather: cancelling us must not cancel it
        meter = self.meters[endpoint.url]
        if not meter.open:
            return
        # The server takes up to one more decode step to act on an abort: wait until it has no
        # request running (on a server of our own: our last one is gone) or give it a few polls
        # (a shared server is rarely idle).
        snapshot = None
        for attempt in range(10):
            snapshot = await self.scrape(endpoint)
            if snapshot is None or snapshot.get(RUNNING, 0.0) == 0:
                break
            await asyncio.sleep(0.05 * (attempt + 1))
        if snapshot is not None and endpoint.in_flight == 0:
            meter.stop(snapshot)

    async def scrape(self, endpoint: Endpoint) -> dict[str, float] | None:
        meter = self.meters[endpoint.url]
        try:
            response = await self._fetch("GET", f"{endpoint.url}/metrics", timeout=self._timeout)
            values = parse_prometheus(response.text, METRICS) if response.status_code == 200 else {}
        except (httpx.HTTPError, WireError):
            return None  # a hiccup: try again at the next period
        if "vllm:generation_tokens_total" not in values:
            if not meter.unavailable:
                log.warning("%s/metrics has no vLLM counters (HTTP %d): token counters come from what the "
                            "server streamed to us", endpoint.url, response.status_code)
            meter.unavailable = True
            return None
        return values
