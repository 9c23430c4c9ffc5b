"""Who gets the engine: per-document debounce, cancel-previous, and a bound on in-flight work.

Every completion request takes a `Turn` for its document. A newer turn for the same document
supersedes the older one: an older turn still debouncing or waiting is dropped before it reaches
the engine; an older turn already in the engine has its engine work cancelled (cancel-previous),
which closes the engine stream and so aborts the request inside vLLM. A superseded turn raises
`Superseded`, and the handler answers it with an empty result: the editor is never left waiting.

The in-flight bound (`maxInFlight`) is shared by all documents. Work in the engine is never
aborted to make room for another document: its user has stopped typing and is waiting for exactly
that answer (aborting it under sustained load meant nothing was ever served). A turn that finds
every slot taken waits in a short line instead, as long as the bound itself; when the line is full
the newest work wins and the oldest waiter is answered empty at once (`Shed`). Turns leave the line
the moment their document changes, so the line holds the requests of users who paused.

`$/cancelRequest` is different: pygls cancels the handler's task, and CancelledError travels up
through `Turn.run()` untouched (the client gets the LSP cancellation error, -32800).

A slot is a `Lease`. `Turn.run()` holds one for the work it runs; `Turn.admit()` hands one over to
engine work that outlives the request (an engine stream that goes on in the background,
completion/streams.py), which releases it when it ends, and `Turn.wait()` waits for such work the
way `run()` does, without a slot of its own. A lease whose holder nobody waits for can *yield*: when
a turn finds every slot taken, yielding leases are preempted first (their work is aborted), oldest
first, one per waiting turn, so background work never keeps a waiting user from the engine.

Speculative work (completion/speculation.py) has the lowest priority: it gets a slot only when no
other engine work runs or waits (`idle_lease`), and any turn that asks for a slot preempts it at
once, free slots or not, so it never shares the engine with a request someone waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class Superseded(Exception):
    """A newer request took over this one's turn; answer it with an empty result."""

    def __init__(self, reached_engine: bool):
        super().__init__("superseded by a newer request")
        self.reached_engine = reached_engine


class Shed(Superseded):
    """Every engine slot was taken and newer requests were waiting: answered empty at once."""

    def __init__(self) -> None:
        super().__init__(reached_engine=False)
        self.args = ("the engine was busy with other documents",)


class Lease:
    """One engine slot (`maxInFlight` counts it). Released once, by whoever holds it at the end."""

    def __init__(self, scheduler: Scheduler, uri: str):
        self.uri = uri
        self._scheduler = scheduler
        self._preempt: Callable[[], None] | None = None
        self.preempted = False
        self.released = False
        #: Speculative work: preempted by any turn that asks for a slot (see `Scheduler.idle_lease`).
        self.lowest = False

    @property
    def yielding(self) -> bool:
        return self._preempt is not None

    def yield_to_waiters(self, preempt: Callable[[], None]) -> None:
        """Nobody waits for this work now: `preempt` (abort it) when a turn needs the slot."""
        self._preempt = preempt
        self._scheduler._make_room()

    def hold(self) -> None:
        """Someone waits for this work again: it keeps its slot."""
        self._preempt = None

    def preempt(self) -> None:
        if self._preempt is not None and not self.preempted and not self.released:
            self.preempted = True
            self._preempt()

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._scheduler._release(self)


class Turn:
    """One request's claim on the engine for its document: debounce, then a slot, then the work."""

    _ids = itertools.count(1)

    def __init__(self, uri: str, scheduler: Scheduler):
        self.uri = uri
        self.seq = next(self._ids)
        self._scheduler = scheduler
        self._superseded = asyncio.Event()
        self._wake = asyncio.Event()  # set when a slot is granted, or the turn is superseded or shed
        self._work: asyncio.Task | None = None
        self.lease: Lease | None = None  # granted, not yet taken by admit()
        self.granted = False
        self.shed = False
        self.in_engine = False
        self.superseded_at: float | None = None

    @property
    def superseded(self) -> bool:
        """A newer request of the document (or a change to it) took over this turn."""
        return self._superseded.is_set()

    def supersede(self) -> None:
        """Drop this turn: wake it if it waits, cancel its engine work if it runs."""
        if self.superseded_at is None:
            self.superseded_at = time.monotonic()  # when the reason to stop arrived (the trace)
        self._superseded.set()
        self._wake.set()
        # Once: work already being cancelled (the client's $/cancelRequest of the same request
        # reached it first, a loop turn ago) must not be cancelled again while it unwinds: a
        # second cancel can interrupt the engine stream's cleanup (see engine/remote/exchange.py).
        if self._work is not None and not self._work.cancelling():
            self._work.cancel()

    async def debounce(self, seconds: float) -> None:
        """Wait `seconds`; raise Superseded if a newer change or request arrives meanwhile."""
        if seconds > 0 and not self.superseded:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._superseded.wait(), seconds)
        if self.superseded:
            raise Superseded(reached_engine=False)

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run engine work in a child task that a newer turn can cancel; wait for a slot first."""
        lease = await self.admit()
        try:
            return await self.wait(work)
        finally:
            lease.release()

    async def admit(self) -> Lease:
        """Wait for an engine slot and take it; the caller (or whoever it hands the lease to) must
        release it. Raises Superseded, or Shed when the line overflowed."""
        if self.superseded:
            raise Superseded(reached_engine=False)
        try:
            if not self._scheduler._try_admit(self):
                await self._wake.wait()
                if self.shed:
                    raise Shed()
            if self.superseded:
                raise Superseded(reached_engine=False)
        except BaseException:
            self._scheduler._leave_line(self)
            if self.lease is not None:
                self.lease.release()
                self.lease = None
            raise
        self.in_engine = True
        lease, self.lease = self.lease, None
        assert lease is not None
        return lease

    async def wait(self, work: Callable[[], Awaitable[T]]) -> T:
        """Await `work` in a child task that a newer turn can cancel (raising Superseded); a client's
        cancel reaches it as CancelledError. Needs no slot: the work it waits for has its own."""
        if self.superseded:
            raise Superseded(reached_engine=self.in_engine)
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


class Scheduler:
    """Hands out turns per document and engine slots across documents (module docstring)."""

    def __init__(self, cancel_previous: Callable[[], bool], max_in_flight: Callable[[], int]):
        self._cancel_previous = cancel_previous
        self._max_in_flight = max_in_flight
        self._latest: dict[str, Turn] = {}
        self._running: list[Lease] = []  # oldest first
        self._waiting: deque[Turn] = deque()  # oldest first

    @contextlib.asynccontextmanager
    async def turn(self, uri: str) -> AsyncIterator[Turn]:
        """A turn for a request in `uri`; it supersedes the document's previous turn."""
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
        """A closed document's request, wherever it is, is pointless."""
        turn = self._latest.get(uri)
        if turn is not None:
            turn.supersede()

    @property
    def in_flight(self) -> int:
        """Turns running engine work now."""
        return len(self._running)

    @property
    def waiting(self) -> int:
        """Turns waiting in line for an engine slot now."""
        return len(self._waiting)

    def idle_lease(self, uri: str) -> Lease | None:
        """A slot of the lowest priority, only when no other engine work runs or waits; None
        otherwise. Its holder must `yield_to_waiters` at once: any turn that asks for a slot
        then preempts it, whether or not a slot is free."""
        if self._running or self._waiting:
            return None
        lease = self._lease(uri)
        lease.lowest = True
        return lease

    def _try_admit(self, turn: Turn) -> bool:
        """Take a slot now, or join the line (shedding its oldest beyond the bound) and return False."""
        for lease in list(self._running):
            if lease.lowest:
                lease.preempt()  # speculation never shares the engine with a request someone waits for
        self._grant()
        if not self._waiting and len(self._running) < self._max_in_flight():
            turn.lease = self._lease(turn.uri)
            turn.granted = True
            return True
        self._waiting.append(turn)
        while len(self._waiting) > self._max_in_flight():
            oldest = self._waiting.popleft()
            oldest.shed = True
            oldest._wake.set()
        self._make_room()
        return False

    def _lease(self, uri: str) -> Lease:
        lease = Lease(self, uri)
        self._running.append(lease)
        return lease

    def _grant(self) -> None:
        while self._waiting and len(self._running) < self._max_in_flight():
            turn = self._waiting.popleft()
            if turn.superseded:
                continue
            turn.lease = self._lease(turn.uri)
            turn.granted = True
            turn._wake.set()

    def _make_room(self) -> None:
        """Preempt yielding leases, oldest first, until one slot is on its way per waiting turn."""
        wanted = sum(not turn.superseded for turn in self._waiting)
        freeing = sum(lease.preempted for lease in self._running)
        for lease in list(self._running):
            if freeing >= wanted:
                break
            if lease.yielding and not lease.preempted:
                lease.preempt()
                freeing += 1

    def _leave_line(self, turn: Turn) -> None:
        with contextlib.suppress(ValueError):
            self._waiting.remove(turn)

    def _release(self, lease: Lease) -> None:
        with contextlib.suppress(ValueError):
            self._running.remove(lease)
        self._grant()
