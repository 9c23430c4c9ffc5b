"""Brings the in-process engine back after it dies.

vLLM's engine runs in processes of its own (the engine core and its worker); when one of them dies
(killed, out of memory, a crash in native code) the `AsyncLLM` in our process is dead for good and
every request fails. The supervisor notices (vLLM's own monitor marks the engine dead within a
fraction of a second; the engine reports `died`), tells the user once, waits a backoff delay and
has the host build a new engine with the same settings. While it waits and loads, completions are
answered empty at once. A new engine that fails to load is tried again with a longer delay, up to
`max_attempts` times; an engine that stayed up for `healthy_after_s` starts the backoff afresh.

Only an engine that was serving and then died is restarted: one that fails to load in the first
place has a configuration problem that a restart would not fix (the host reports it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from engine.base import Engine, EngineState

log = logging.getLogger(__name__)


class Supervised(Protocol):
    """What the supervisor needs of the engine's owner (`EngineHost`): the engine, a way to build
    it again, and somewhere to tell the user how the restart goes."""

    @property
    def engine(self) -> Engine | None:
        """The engine in use now (None before the first start)."""

    async def rebuild(self) -> Engine | None:
        """Build a new engine with the same settings; return it once it is ready or has failed."""

    def status(self, state: str, message: str) -> None:
        """Tell the client the engine's state (`vllm-ls/status`)."""

    def engine_died(self, error: str) -> None:
        """The engine died: tell the user once."""

    def engine_restarted(self) -> None:
        """A restart brought the engine back."""

    def restart_gave_up(self, error: str, attempts: int) -> None:
        """The restarts failed `attempts` times: give up and say so."""


@dataclass(frozen=True)
class RestartPolicy:
    """How patiently a dead engine is brought back (seconds, attempts)."""

    initial_s: float = 1.0
    max_s: float = 60.0
    healthy_after_s: float = 120.0
    max_attempts: int = 5
    #: How often the supervisor looks at the engine when nothing wakes it earlier.
    poll_s: float = 1.0


class Backoff:
    """Delays of consecutive restarts: initial, doubling, capped; reset after a healthy run."""

    def __init__(self, policy: RestartPolicy, clock: Callable[[], float] = time.monotonic):
        self.policy = policy
        self._clock = clock
        self.attempts = 0  # restarts since the engine last ran healthily
        self._up_since: float | None = None

    def engine_up(self) -> None:
        """The engine came up: a long enough healthy run resets the backoff."""
        self._up_since = self._clock()

    def next_delay(self) -> float:
        """The delay before the next restart (call when the engine has died or failed to load)."""
        if self._up_since is not None and self._clock() - self._up_since >= self.policy.healthy_after_s:
            self.attempts = 0
        self._up_since = None
        delay = min(self.policy.max_s, self.policy.initial_s * 2 ** self.attempts)
        self.attempts += 1
        return delay

    @property
    def exhausted(self) -> bool:
        """The restarts allowed since the last healthy run are used up."""
        return self.attempts >= self.policy.max_attempts


class Supervisor:
    """Watches the in-process engine and rebuilds it, with backoff, when it dies (module docstring)."""

    def __init__(self, host: Supervised, policy: RestartPolicy | None = None):
        self.host = host
        self.policy = policy or RestartPolicy()
        self.backoff = Backoff(self.policy)
        self.restarts = 0  # engines rebuilt after a death that came up (vllm-ls/stats)
        self.restarting = False
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()

    def watch(self) -> None:
        """Start watching (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="vllm-ls engine supervisor")

    def wake(self) -> None:
        """Something saw the engine fail: look now rather than at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop watching (at shutdown)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.policy.poll_s)
            self._wake.clear()
            engine = self.host.engine
            if engine is not None and engine.died:
                await self._recover(engine.error or "the engine stopped")

    async def _recover(self, error: str) -> None:
        self.restarting = True
        log.error("the in-process engine died: %s", error)
        self.host.engine_died(error)
        try:
            while True:
                if self.backoff.exhausted:
                    self.host.restart_gave_up(error, self.backoff.attempts)
                    return
                delay = self.backoff.next_delay()
                self.host.status("restarting", f"the engine stopped ({error}); restarting in {delay:.0f} s")
                await asyncio.sleep(delay)
                started = time.monotonic()
                engine = await self.host.rebuild()
                if engine is not None and engine.state is EngineState.READY:
                    self.restarts += 1
                    self.backoff.engine_up()
                    log.warning("the engine is back after %.1f s of loading (restart %d)",
                                time.monotonic() - started, self.restarts)
                    self.host.engine_restarted()
                    return
                error = (engine.error if engine is not None else None) or "the engine did not start"
                log.error("restarting the engine failed: %s", error)
        finally:
            self.restarting = False
