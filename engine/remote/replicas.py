"""Which replica serves a request, and when each endpoint is checked again. Pure bookkeeping:
the clock and the randomness are injected, nothing here does I/O.

Placement is rendezvous hashing on the request's affinity key (the document): consecutive
keystrokes in one document go to the same replica, whose prefix cache already holds their prompt,
while different documents spread over the replicas. When a replica goes down only its documents
move, and they come back when it recovers. Requests without a key go to the least busy replica.

A replica is either healthy, down (checked again with exponential backoff and jitter, so a dead
address costs a probe every few seconds at most), or overloaded (it answered 429/503: skipped
until its Retry-After has passed, never waited for).
"""

from __future__ import annotations

import hashlib
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Endpoint:
    url: str
    healthy: bool | None = None  # None: not checked yet
    failures: int = 0  # consecutive failed checks or requests
    next_check: float = 0.0
    last_check: float = float("-inf")
    overloaded_until: float = 0.0
    in_flight: int = 0
    served: int = 0  # requests that produced a response
    errors: int = 0
    rejected: int = 0  # 429/503 answers
    last_error: str | None = None

    def public(self) -> dict[str, object]:
        return {"url": self.url, "healthy": bool(self.healthy), "in_flight": self.in_flight,
                "served": self.served, "errors": self.errors, "rejected": self.rejected,
                "last_error": self.last_error}


@dataclass(frozen=True)
class HealthPolicy:
    #: A healthy endpoint is re-checked this often: a replica that died between requests is
    #: noticed without a user paying for it.
    healthy_interval: float = 10.0
    #: A down endpoint is retried after this, doubling up to `backoff_max`.
    backoff_initial: float = 0.5
    backoff_max: float = 15.0
    #: A completion wanted while everything is down brings checks forward, but not more often than this.
    wake_gap: float = 1.0
    #: Without a Retry-After, an overloaded endpoint is skipped this long.
    overload_default: float = 1.0


class Replicas:
    def __init__(
        self,
        urls: list[str],
        policy: HealthPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ):
        if not urls:
            raise ValueError("at least one endpoint URL is needed")
        self.endpoints = [Endpoint(url) for url in dict.fromkeys(urls)]
        self.policy = policy or HealthPolicy()
        self._clock = clock
        self._jitter = jitter
        self._round_robin = itertools.count()

    # -- state ----------------------------------------------------------------------------------

    def healthy(self) -> list[Endpoint]:
        return [e for e in self.endpoints if e.healthy]

    @property
    def any_healthy(self) -> bool:
        return any(e.healthy for e in self.endpoints)

    def mark_up(self, endpoint: Endpoint) -> bool:
        """The endpoint answered; returns True when that is news (it was down or unchecked)."""
        now = self._clock()
        news = not endpoint.healthy
        endpoint.healthy, endpoint.failures, endpoint.last_error = True, 0, None
        endpoint.last_check, endpoint.next_check = now, now + self.policy.healthy_interval
        return news

    def mark_down(self, endpoint: Endpoint, error: str) -> bool:
        """The endpoint failed; returns True when that is news (it was healthy or unchecked)."""
        now = self._clock()
        news = endpoint.healthy is not False
        endpoint.healthy, endpoint.last_error = False, error
        endpoint.failures += 1
        endpoint.last_check, endpoint.next_check = now, now + self.backoff(endpoint.failures)
        return news

    def mark_overloaded(self, endpoint: Endpoint, retry_after: float | None) -> float:
        """Skip the endpoint until its Retry-After has passed; returns the seconds chosen."""
        seconds = self.policy.overload_default if retry_after is None else retry_after
        endpoint.overloaded_until = max(endpoint.overloaded_until, self._clock() + seconds)
        endpoint.rejected += 1
        return seconds

    def backoff(self, failures: int) -> float:
        base = min(self.policy.backoff_max, self.policy.backoff_initial * 2 ** max(0, failures - 1))
        return base * (0.8 + 0.4 * self._jitter())  # jitter: many editors do not probe in lockstep

    # -- placement ------------------------------------------------------------------------------

    def candidates(self, affinity: str | None) -> list[Endpoint]:
        """Healthy, not overloaded endpoints in the order to try them."""
        now = self._clock()
        usable = [e for e in self.healthy() if e.overloaded_until <= now]
        if affinity is not None:
            return sorted(usable, key=lambda e: _rendezvous(affinity, e.url), reverse=True)
        turn = next(self._round_robin)
        n = len(usable) or 1
        ordered = [usable[(turn + i) % n] for i in range(len(usable))]
        return sorted(ordered, key=lambda e: e.in_flight)  # stable: ties keep round-robin order

    def overloaded_for(self) -> float | None:
        """When every healthy endpoint is overloaded: seconds until the first one takes work again."""
        now = self._clock()
        healthy = self.healthy()
        if not healthy or any(e.overloaded_until <= now for e in healthy):
            return None
        return min(e.overloaded_until for e in healthy) - now

    # -- health checks --------------------------------------------------------------------------

    def due(self) -> list[Endpoint]:
        now = self._clock()
        return [e for e in self.endpoints if e.next_check <= now]

    def seconds_until_due(self) -> float:
        now = self._clock()
        return max(0.0, min(e.next_check for e in self.endpoints) - now)

    def wake(self) -> bool:
        """Bring the checks of down endpoints forward (rate-limited); True if any was moved."""
        now = self._clock()
        moved = False
        for endpoint in self.endpoints:
            if not endpoint.healthy and endpoint.next_check > now and now - endpoint.last_check >= self.policy.wake_gap:
                endpoint.next_check = now
                moved = True
        return moved


def _rendezvous(key: str, url: str) -> int:
    digest = hashlib.blake2b(f"{key}\x00{url}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
