"""Scoping a vLLM server's own counters (`/metrics`) to our requests. Pure: snapshots in, totals out.

A server's counters are global: on a shared server they count every client's tokens. The endpoint
cannot tell us which of them were ours, so we count only what the server did while at least one
of our requests was on it (a *busy period*: from a snapshot taken when our first request starts
to a snapshot taken once the server has settled after our last one ends, which includes the at
most one decode step an abort takes to land). On a server only we use, that is exact. On a shared
server it also counts other clients' tokens generated during our busy periods; it never counts
anything from while we were idle. Our own tally (tokens streamed to us, usage reported to us) is a
floor: the attributed value never drops below what we saw ourselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GENERATION = "vllm:generation_tokens_total"
PROMPT = "vllm:prompt_tokens_total"
PROMPT_CACHED = "vllm:prompt_tokens_cached_total"
RUNNING = "vllm:num_requests_running"
COUNTERS = (GENERATION, PROMPT, PROMPT_CACHED)
METRICS = (*COUNTERS, RUNNING)


@dataclass
class Tally:
    """Tokens of our requests as we saw them (the floor for the server's counts)."""

    generated: int = 0
    prompt: int = 0
    cached: int = 0


@dataclass
class BusyMeter:
    """Server counter growth during our busy periods on one endpoint."""

    closed: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0.0))
    baseline: dict[str, float] | None = None
    latest: dict[str, float] | None = None
    #: Set once the endpoint's /metrics could not be read: our own tally is all there is.
    unavailable: bool = False

    @property
    def open(self) -> bool:
        return self.baseline is not None

    def start(self, snapshot: dict[str, float]) -> None:
        self.baseline = {name: snapshot.get(name, 0.0) for name in COUNTERS}
        self.latest = dict(self.baseline)

    def observe(self, snapshot: dict[str, float]) -> None:
        if self.baseline is None:
            return
        if any(snapshot.get(name, 0.0) < self.baseline[name] for name in COUNTERS):
            # The server restarted (counters went back): what it counted since then is ours
            # to the same extent, and the old period is lost with the server.
            self._add(self.latest or self.baseline, self.baseline)
            self.baseline = dict.fromkeys(COUNTERS, 0.0)
        self.latest = {name: snapshot.get(name, 0.0) for name in COUNTERS}

    def stop(self, snapshot: dict[str, float]) -> None:
        self.observe(snapshot)
        if self.baseline is not None and self.latest is not None:
            self._add(self.latest, self.baseline)
        self.baseline = self.latest = None

    def totals(self) -> dict[str, float]:
        """Growth in closed periods plus the open one as of the latest snapshot."""
        totals = dict(self.closed)
        if self.baseline is not None and self.latest is not None:
            for name in COUNTERS:
                totals[name] += max(0.0, self.latest[name] - self.baseline[name])
        return totals

    def _add(self, end: dict[str, float], start: dict[str, float]) -> None:
        for name in COUNTERS:
            self.closed[name] += max(0.0, end[name] - start[name])


def attributed(meter: BusyMeter, tally: Tally) -> Tally:
    """The server's count for our requests on one endpoint, never below our own tally."""
    if meter.unavailable:
        return Tally(tally.generated, tally.prompt, tally.cached)
    totals = meter.totals()
    return Tally(
        generated=max(tally.generated, int(totals[GENERATION])),
        prompt=max(tally.prompt, int(totals[PROMPT])),
        cached=max(tally.cached, int(totals[PROMPT_CACHED])),
    )
