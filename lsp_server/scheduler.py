"""Who gets the engine: per-document debounce, cancel-previous, and a bound on in-flight work.

Every completion request takes a `Turn` for its document. A newer turn for the same document
supersedes the older one: an older turn still debouncing is dropped before it reaches the engine;
an older turn already in the engine has its engine work cancelled (cancel-previous), which closes
the engine stream and so aborts the request inside vLLM. A superseded turn raises `Superseded`, and
the handler answers it with an empty result: the editor is never left waiting.

`$/cancelRequest` is different: pygls cancels the handler's task, and CancelledError travels up
through `Turn.run()` untouched (the client gets the LSP cancellation error, -32800).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class Superseded(Exception):
    """A newer request took over this one's turn; answer it with an empty result."""

    def __init__(self, reached_engine: bool):
        super().__init__("superseded by a newer request")
        self.reached_engine = reached_engine


class Turn:
    _ids = itertools.count(1)

    def __init__(self, uri: str, scheduler: Scheduler):
        self.uri = uri
        self.seq = next(self._ids)
        self._scheduler = scheduler
        self._superseded = asyncio.Event()
        self._work: asyncio.Task | None = None
        self.in_engine = False

    @property
    def superseded(self) -> bool:
        return self._superseded.is_set()

    def supersede(self) -> None:
        self._superseded.set()
        if self._work is not None:
            self._work.cancel()

    async def debounce(self, seconds: float) -> None:
        """Wait `seconds`; raise Superseded if a newer change or request arrives meanwhile."""
        if seconds > 0 and not self.superseded:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._superseded.wait(), seconds)
        if self.superseded:
            raise Superseded(reached_engine=False)

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run engine work in a child task that a newer turn can cancel."""
        if self.superseded:
            raise Superseded(reached_engine=False)
        self._scheduler._admit(self)
        self.in_engine = True
        task = asyncio.ensure_future(work())
        self._work = task
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self.superseded and not (current and current.cancelling()):
                raise Superseded(reached_engine=True) from None
            raise
        finally:
            self._work = None
            self._scheduler._release(self)


class Scheduler:
    def __init__(self, cancel_previous: Callable[[], bool], max_in_flight: Callable[[], int]):
        self._cancel_previous = cancel_previous
        self._max_in_flight = max_in_flight
        self._latest: dict[str, Turn] = {}
        self._running: list[Turn] = []  # in admission order: the oldest is the first to go

    @contextlib.asynccontextmanager
    async def turn(self, uri: str) -> AsyncIterator[Turn]:
        turn = Turn(uri, self)
        previous = self._latest.get(uri)
        self._latest[uri] = turn
        if previous is not None and (not previous.in_engine or self._cancel_previous()):
            previous.supersede()
        try:
            yield turn
        finally:
            if self._latest.get(uri) is turn:
                del self._latest[uri]

    def document_changed(self, uri: str) -> None:
        """A newer change makes a request that has not reached the engine pointless."""
        turn = self._latest.get(uri)
        if turn is not None and not turn.in_engine:
            turn.supersede()

    def document_closed(self, uri: str) -> None:
        turn = self._latest.get(uri)
        if turn is not None:
            turn.supersede()

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def _admit(self, turn: Turn) -> None:
        # No queue: beyond the bound the newest work wins and the oldest is aborted at once.
        while len(self._running) >= self._max_in_flight():
            self._running.pop(0).supersede()
        self._running.append(turn)

    def _release(self, turn: Turn) -> None:
        with contextlib.suppress(ValueError):
            self._running.remove(turn)
