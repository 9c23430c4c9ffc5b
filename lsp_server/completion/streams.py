"""Engine streams that outlive the request that started them: answer early, keep going, reuse.

On a slow engine a block takes longer than the user's pause, and a request that waits for the whole
block is often cancelled before it shows anything: everything it generated is lost. So an engine
stream is not read by the handler that asked for it but by a task the pipeline owns (`LiveStream`),
and requests *wait on* a stream for an answer:

- **Answer early.** An automatic request is answered as soon as the answer is worth showing: its
  first line is complete (`answerEarly`; with `answerDeadlineMs` the block gets that long to
  complete before the complete lines so far are shown). Invoked requests wait for whole candidates.
- **Keep going.** After the answer the stream goes on in the background to finish the block
  (`continueInBackground`); every line it completes is stored in the typed-ahead cache under the
  stream's anchor, so once the user accepts or types the first line the next ones are there
  without an engine call.
- **Reuse.** A request whose text is the stream's anchor plus text that agrees with what the
  stream generated so far (or the start of it) waits on that stream instead of asking the engine
  (`reuseStream`), for as long as it takes to complete the line after what was typed.

A stream is aborted (its engine stream closed, which aborts the request in vLLM) the moment it can
no longer serve anyone: a keystroke contradicts it (`document_changed`), a newer request in its
document needs the engine (`abort_idle`), its block is complete (the StreamFilter says done), a
request waits for an engine slot while nobody waits for this stream (its slot yields: see
scheduler.Lease), the document is closed, the server shuts down, or a request waiting on it timed
out. Every stream holds a scheduler slot until it ends (`maxInFlight` counts it).

With the three settings off a stream behaves as the handler's own read of the engine did before:
answered when complete, aborted when its only request is cancelled or superseded.

A client's `$/cancelRequest` before anything was shown leaves the stream to the next keystroke's
request for `CANCEL_GRACE_S` (VS Code cancels before every keystroke, and that keystroke may agree
with the stream); if no request takes it over by then, the cancel stands and the engine stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.base import CompletionRequest, Engine

from .agreement import Ledger, agrees, typed_since
from .cache import CompletionCache
from .counters import ServerCounters
from .postprocess import StreamFilter
from .scheduler import Lease, Superseded
from .trace import ENGINE_BACKGROUND, ENGINE_EARLY_STOP, ENGINE_FINISHED, ENGINE_STOPPED, Trace
from ..settings import Settings

log = logging.getLogger(__name__)

#: Why a stream ended before the engine finished it (the suffix of its `background_streams_aborted_*`
#: counter when it ran in the background): a keystroke contradicted it, a newer request of its
#: document needed the engine, its block was complete, a request of any document needed its slot,
#: the document closed or the server shut down, a request waiting on it timed out, nobody could use it.
ABORT_REASONS = ("contradicted", "superseded", "complete", "overload", "closed", "timeout", "unwanted", "cancelled")
#: How long the stream of a request the client cancelled waits for the next keystroke's request to take
#: it over. VS Code sends the cancel, the change and the next request together (milliseconds apart);
#: a cancel nothing follows (Escape, the cursor moved away) stops the engine after this.
CANCEL_GRACE_S = 0.25


class State(enum.Enum):
    RUNNING = "running"
    DONE = "done"  # the engine finished, or the filters said complete: the results are final
    ABORTED = "aborted"
    FAILED = "failed"


@dataclass(frozen=True)
class Wants:
    """When a waiting request takes its answer: `early` once a complete line is there and the stream
    has generated for `deadline_s`; otherwise only when the stream is done."""

    early: bool = False
    deadline_s: float = 0.0


_WAIT = object()


class LiveStream:
    """One engine request, read by its own task; see the module docstring."""

    def __init__(
        self, *, uri: str, before: str, after: str, engine: Engine, request: CompletionRequest,
        filters: Sequence[StreamFilter], lease: Lease, early_stop: bool, shareable: bool,
        counters: ServerCounters, settings: Callable[[], Settings], cache: CompletionCache | None,
        on_end: Callable[[LiveStream], None], on_error: Callable[[Exception], None],
        trace: Trace | None = None, approach_from: int | None = None,
    ):
        self.uri, self.before, self.after = uri, before, after
        #: A speculation's anchor is the text after an accept the document does not have yet: the
        #: user may type the suggestion by hand instead, which leads to the anchor, not away from it.
        #: Keystrokes that leave the document at `before[:k]` (k at least this) keep the stream.
        self.approach_from = approach_from
        #: The closers the accepted suggestion covers (closers.py): typed by hand, they are still
        #: after what was typed until the editor types over them.
        self.approach_covers = ""
        self.request = request
        self.filters = list(filters)
        self.ledgers = [Ledger(f, counters) for f in self.filters]
        self.early_stop = early_stop
        #: One candidate of an automatic request: later requests may be served from it.
        self.shareable = shareable
        self.state = State.RUNNING
        self.reason: str | None = None  # why it was aborted, or "finished" / "complete"
        self.error: BaseException | None = None
        self.answered = False
        self.background = False  # it ran without anyone waiting for it at some point
        self.started = time.monotonic()
        self.first_answer_s: float | None = None
        self._engine = engine
        self._lease = lease
        self._counters = counters
        self._settings = settings
        self._cache = cache
        self._on_end = on_end
        self._on_error = on_error
        self._typed: str | None = ""  # what the document has at the anchor now (None: not at it)
        self._approaching = False  # not at the anchor: on the way to it (approach_from)
        self._stored = ""
        self._waiters = 1  # the request that started it, until it takes its answer or leaves
        self._reserved = True
        self._changed = asyncio.Event()
        self._started = False
        self._grace: asyncio.TimerHandle | None = None  # a cancelled request's stream, until taken over
        #: The trace of the request that started it, filled in until that request is answered.
        self._trace = trace
        if trace is not None:
            trace.engine_request, trace.engine_end = request.request_id, ENGINE_STOPPED
        self.task = asyncio.ensure_future(self._run())

    @property
    def running(self) -> bool:
        return self.state is State.RUNNING

    @property
    def waiters(self) -> int:
        return self._waiters

    # -- who waits --------------------------------------------------------------------------------

    async def answer(self, typed: str = "", wants: Wants = Wants(), trace: Trace | None = None) -> tuple[str, ...] | None:
        """Wait for this stream's answer to a request that typed `typed` at its anchor: the texts to
        show (empty: nothing to suggest), or None when the stream cannot serve the document as it is
        (it generated something else than `typed`, or `typed` used up its whole completion). Raises
        Superseded when the document has moved on from `typed` meanwhile, or the stream was stopped
        for another reason (closed, timed out). `trace` (the waiting request's) gets the tokens shown."""
        if self._reserved:
            self._reserved = False
        else:
            self._attach()
        cancelled = False
        try:
            while True:
                result = self._ready(typed, wants, trace)
                if result is not _WAIT:
                    return result
                changed = self._changed
                timeout = None
                if wants.early and self.running:
                    remaining = self.started + wants.deadline_s - time.monotonic()
                    timeout = remaining if remaining > 0 else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), timeout)
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            self._let_go(trace)
            self._detach(cancelled)

    def release_reservation(self) -> None:
        """The starting request never came to wait (cancelled first): it leaves all the same."""
        if self._reserved:
            self._reserved = False
            self._let_go(self._trace)
            self._detach()

    def _let_go(self, trace: Trace | None) -> None:
        """The starting request is done with its trace: it records the stream as it is now."""
        if trace is not None and trace is self._trace:
            self._trace = None
            if self.running:
                trace.engine_end = ENGINE_BACKGROUND

    def _attach(self) -> None:
        self._waiters += 1
        self._lease.hold()
        if self._grace is not None:
            self._grace.cancel()  # the next keystroke's request took it over
            self._grace = None

    def _detach(self, cancelled: bool = False) -> None:
        self._waiters -= 1
        if self._waiters > 0 or not self.running:
            return
        settings = self._settings()
        if self.answered:
            keep = settings.generation.continue_in_background
        else:
            keep = self.shareable and settings.generation.reuse_stream
        if not keep:
            self.abort("unwanted")  # nobody will read it: today's cancel-previous
            return
        if cancelled and not self.answered:
            # The client cancelled the request before anything was shown. VS Code does that before
            # every keystroke, and the keystroke's own request follows at once: it may take this
            # stream over (reuse). If none does within the grace, the cancel stands: the engine stops.
            self._grace = asyncio.get_running_loop().call_later(CANCEL_GRACE_S, self.abort, "cancelled")
        if not self.background:
            self.background = True
            self._counters.background_streams_started += 1
        self._lease.yield_to_waiters(lambda: self.abort("overload"))

    def _ready(self, typed: str, wants: Wants, trace: Trace | None) -> object:
        if self.error is not None:
            raise self.error
        first = self.filters[0]
        if self.shareable and agrees(first.usable, typed, self.running) is False:
            if typed != self._typed:
                raise Superseded(reached_engine=True)  # for a text the user has since changed
            return None
        if self.state is State.DONE:
            if not self.shareable:
                return self._show_candidates(trace)
            result = first.result()
            rest = result[len(typed):] if result.startswith(typed) else ""
            if typed and not rest.strip():
                return None  # typed through all of it: the request needs a new completion
            return self._show(typed, rest, trace)
        if not self.running:
            raise Superseded(reached_engine=True)  # closed, timed out, or contradicted by a keystroke
        if wants.early and time.monotonic() - self.started >= wants.deadline_s:
            so_far = first.lines_so_far()
            if so_far.startswith(typed) and so_far[len(typed):].strip():
                self._counters.completions_answered_early += 1
                return self._show(typed, so_far[len(typed):], trace)
        return _WAIT

    def _show(self, typed: str, rest: str, trace: Trace | None) -> tuple[str, ...]:
        if not rest:
            return ()
        self._answered()
        tokens = self.ledgers[0].shown(len(typed), len(typed) + len(rest))
        if trace is not None:
            trace.tokens_shown += tokens
        return (rest,)

    def _show_candidates(self, trace: Trace | None) -> tuple[str, ...]:
        shown: list[str] = []
        for stream_filter, ledger in zip(self.filters, self.ledgers):
            text = stream_filter.result()
            if text and text not in shown:
                shown.append(text)
                tokens = ledger.shown(0, len(text))
                if trace is not None:
                    trace.tokens_shown += tokens
        if shown:
            self._answered()
        return tuple(shown)

    def _answered(self) -> None:
        self.answered = True
        if self.first_answer_s is None:
            self.first_answer_s = time.monotonic() - self.started

    # -- what the document does -------------------------------------------------------------------

    def typed_in(self, before: str, after: str) -> str | None:
        return typed_since(before, after, self.before, self.after)

    def document_changed(self, text: str) -> None:
        """The document is now `text`: abort if that contradicts this stream (when it may be aborted
        for that: it serves later requests, or nobody waits for it)."""
        if not self.running or not self.shareable:
            return
        if not (self._settings().generation.reuse_stream or self._waiters == 0):
            return  # its request is superseded by the next one, as before
        end = len(text) - len(self.after)
        self._approaching = end >= 0 and text[end:] == self.after and self._on_the_way(text[:end])
        if self._approaching:
            self._typed = None  # requests are served from the cache until the anchor is reached
            return
        if end < len(self.before) or text[end:] != self.after or not text.startswith(self.before):
            self._typed = None
            self.abort("contradicted")  # an edit away from the anchor: not typing through it
            return
        self._typed = text[len(self.before): end]
        if agrees(self.filters[0].usable, self._typed, True) is False:
            self.abort("contradicted")

    def _on_the_way(self, before: str) -> bool:
        origin, covers = self.approach_from, self.approach_covers
        if origin is None:
            return False
        typed = (before, before[: -len(covers)]) if covers and before.endswith(covers) else (before,)
        return any(origin <= len(b) < len(self.before) and self.before.startswith(b) for b in typed)

    def abort(self, reason: str) -> None:
        """Stop now: the engine stream is closed (vLLM aborts the request) and waiters are woken."""
        if self.running and self.reason is None:
            self.reason = reason
            if self._started:
                self.task.cancel()
            # else: the task sees the reason as it starts (a task cancelled before its first step
            # would never run its cleanup, and the slot would stay taken)

    # -- the engine -------------------------------------------------------------------------------

    async def _run(self) -> None:
        n = len(self.filters)
        self._started = True
        limit: asyncio.TimerHandle | None = None
        try:
            # No stream outlives requestTimeoutMs, waited for or not: a stalled engine cannot keep
            # a background stream (and its slot) forever.
            limit = asyncio.get_running_loop().call_later(
                self._settings().scheduling.request_timeout_ms / 1000, self.abort, "timeout")
            if self.reason is not None:
                raise asyncio.CancelledError  # aborted before it started
            engine_started = time.monotonic()
            log.debug("engine request %s started for %s", self.request.request_id, self.uri)
            async with contextlib.aclosing(self._engine.stream(self.request)) as stream:
                async for delta in stream:
                    self._counters.tokens_received += delta.tokens
                    if self._trace is not None:
                        self._trace.saw(delta, engine_started)
                    if self._waiters == 0:
                        self._counters.background_tokens += delta.tokens
                    if not 0 <= delta.index < n:
                        continue
                    self.ledgers[delta.index].add(delta.text, delta.tokens)
                    self.filters[delta.index].feed(delta.text)
                    if self._contradicted():
                        self.reason = "contradicted"
                        break
                    if self.early_stop and all(f.done for f in self.filters):
                        self.reason = "complete"
                        break  # leaving the block closes the stream: the engine aborts the request
                    if "\n" in delta.text:
                        self._store_lines()
                    self._pulse()
                else:
                    self.reason = "finished"
            if self.reason in ("complete", "finished"):
                for stream_filter in self.filters:
                    stream_filter.finish()
                self.state = State.DONE
                self._store_final()
            else:
                self.state = State.ABORTED
        except asyncio.CancelledError:
            self.state = State.ABORTED
            if self.reason is None:
                raise  # not ours: the loop is going away
        except Exception as exc:  # noqa: BLE001 - handed to whoever waits, or reported
            self.state, self.error, self.reason = State.FAILED, exc, "failed"
            if self._waiters == 0:
                self._on_error(exc)
        finally:
            if limit is not None:
                limit.cancel()
            if self._grace is not None:
                self._grace.cancel()
            # The editor tests read these lines to see cancel-previous happen in a real editor.
            ended = "done" if self.state is State.DONE else f"cancelled ({self.reason or 'stopped'})"
            log.debug("engine request %s %s after %d tokens", self.request.request_id, ended,
                      sum(piece.tokens for ledger in self.ledgers for piece in ledger.pieces))
            self._trace_end()
            if self.state is State.RUNNING:
                self.state = State.ABORTED
            self._lease.release()
            self._count_end()
            self._pulse()
            self._on_end(self)

    def _trace_end(self) -> None:
        trace = self._trace
        if trace is None:
            return
        trace.engine_end = {"complete": ENGINE_EARLY_STOP, "finished": ENGINE_FINISHED}.get(
            self.reason or "", ENGINE_STOPPED)
        trace.engine_closed_ms = trace.since_start()
        trace.tokens_generated = self._engine.generated_tokens(self.request.request_id)

    def _contradicted(self) -> bool:
        if not self.shareable or not (self._settings().generation.reuse_stream or self._waiters == 0):
            return False
        if self._typed is None:
            return not self._approaching
        return agrees(self.filters[0].usable, self._typed, True) is False

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _store_lines(self) -> None:
        if self._cache is None or not self.shareable or not self._settings().generation.answer_early:
            return
        so_far = self.filters[0].lines_so_far()
        if so_far and so_far != self._stored:
            self._stored = so_far
            self._cache.store(self.uri, self.before, self.after, (so_far,), source=self.ledgers[0])

    def _store_final(self) -> None:
        if self._cache is None:
            return
        if self.shareable:
            self._cache.store(self.uri, self.before, self.after, (self.filters[0].result(),), source=self.ledgers[0])
        else:
            self._cache.store(self.uri, self.before, self.after, tuple(f.result() for f in self.filters))

    def _count_end(self) -> None:
        if not self.background:
            return
        counters = self._counters
        if self.reason == "finished":
            counters.background_streams_finished += 1
        elif self.reason in ABORT_REASONS:
            counters.background_streams_aborted += 1
            name = f"background_streams_aborted_{self.reason}"
            setattr(counters, name, getattr(counters, name) + 1)


class Streams:
    """The live streams of every document (the pipeline owns them, not the handlers)."""

    def __init__(self, counters: ServerCounters, settings: Callable[[], Settings],
                 on_error: Callable[[Exception], None] = lambda exc: None):
        self._counters = counters
        self._settings = settings
        self._on_error = on_error
        self._live: dict[str, list[LiveStream]] = {}

    def __len__(self) -> int:
        return sum(len(streams) for streams in self._live.values())

    def __contains__(self, uri: object) -> bool:
        """Whether `uri` has a live stream (a keystroke there needs checking against it)."""
        return uri in self._live

    def start(self, *, uri: str, before: str, after: str, engine: Engine, request: CompletionRequest,
              filters: Sequence[StreamFilter], lease: Lease, early_stop: bool, shareable: bool,
              cache: CompletionCache | None, trace: Trace | None = None,
              approach_from: int | None = None) -> LiveStream:
        """Start reading `request` in a task of its own; the caller waits with `answer()`."""
        stream = LiveStream(
            uri=uri, before=before, after=after, engine=engine, request=request, filters=filters,
            lease=lease, early_stop=early_stop, shareable=shareable, counters=self._counters,
            settings=self._settings, cache=cache, on_end=self._ended, on_error=self._on_error, trace=trace,
            approach_from=approach_from,
        )
        self._live.setdefault(uri, []).append(stream)
        return stream

    def usable(self, uri: str, before: str, after: str) -> tuple[LiveStream, str] | None:
        """The newest running stream of `uri` a request at `before`|`after` may wait on, and what was
        typed at its anchor; None when there is none."""
        for stream in reversed(self._live.get(uri, ())):
            if not stream.running or not stream.shareable:
                continue
            typed = stream.typed_in(before, after)
            if typed is not None and agrees(stream.filters[0].usable, typed, True) is not False:
                return stream, typed
        return None

    def document_changed(self, uri: str, text: str) -> None:
        """A keystroke: abort the streams of `uri` that the new text contradicts."""
        for stream in list(self._live.get(uri, ())):
            stream.document_changed(text)

    def abort_idle(self, uri: str, reason: str = "superseded") -> None:
        """A newer request of `uri` needs the engine: abort its streams that nobody waits for."""
        for stream in list(self._live.get(uri, ())):
            if stream.waiters == 0:
                stream.abort(reason)

    def abort(self, uri: str, reason: str) -> None:
        """Abort every stream of `uri` (its document closed, a request waiting on it timed out)."""
        for stream in list(self._live.get(uri, ())):
            stream.abort(reason)

    async def close(self) -> None:
        """Abort every stream and wait until each has closed its engine stream (at shutdown)."""
        streams = [stream for group in self._live.values() for stream in group]
        for stream in streams:
            stream.abort("closed")
        if streams:
            await asyncio.gather(*(stream.task for stream in streams), return_exceptions=True)

    def _ended(self, stream: LiveStream) -> None:
        group = self._live.get(stream.uri)
        if group is not None:
            with contextlib.suppress(ValueError):
                group.remove(stream)
            if not group:
                del self._live[stream.uri]
