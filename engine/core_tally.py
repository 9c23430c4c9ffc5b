"""What the in-process engine core really generated for each request, including after we stopped it.

vLLM's own metrics cannot say: they are counted in the frontend's output processor, and
`AsyncLLM.abort` removes a request there first, so whatever the engine-core process still produces
for it is skipped before any stats are taken. This tally is fed one step earlier: `LocalEngine` wraps
the engine-core client of its `AsyncLLM` and hands every `EngineCoreOutputs` the core sends to
`core_output()` *before* the output processor sees it (and drops the aborted ones).

Why the count is exact: the core sends every token it samples for a request in exactly one
`EngineCoreOutput` (`new_token_ids`, one entry per token), and it keeps sending them until it has
processed the request's abort: a token of an aborted request is either sent (and counted here) or
never made. Counting at the client end of that channel therefore counts the core's work, whether or
not anyone reads it. Pure bookkeeping: no vLLM import, no clock.

Terms, per request (our request id; vLLM's internal ids, one per candidate, map to it):
- *read*: tokens our stream passed on to its caller;
- *stopped*: the caller left the stream before the engine finished it (a cancel, a newer keystroke,
  the post-processor knowing the answer, a deadline); `stopped()` is called at that moment, before
  the abort is sent;
- *unread*: tokens of a stopped request that were never read: those already waiting in vLLM's
  queue at the stop (read late) plus those the core sent after it (stopped late);
- *after stop*: the part of *unread* that arrived after the stop: the decode step in flight when
  the abort was sent, and anything the core made before it processed the abort.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class CoreCounts:
    """The engine core's own accounting since start (`vllm-ls/stats` keys `engine_core_*`)."""

    tokens_generated: int = 0  # every token the core sent for our requests
    tokens_unread: int = 0  # tokens of stopped requests that our stream never passed on
    tokens_after_stop: int = 0  # of those, the tokens that reached us after the stop
    requests_stopped: int = 0  # requests whose stream was left before the engine finished them
    #: Now, not since start: requests the core holds (running or waiting), from its latest scheduler
    #: stats. 0 once every stopped request's abort has landed: after that nothing more can come.
    requests_running: int = 0


class _Request:
    __slots__ = ("generated", "read", "stopped", "ended", "live")

    def __init__(self) -> None:
        self.generated = 0
        self.read = 0
        self.stopped = False
        self.ended = False  # our stream is over (finished or stopped)
        self.live: set[str] = set()  # internal ids the core has not finished yet


class CoreTally:
    """Per-request token counts from the engine core's outputs.

    A request is forgotten once our stream is over and the core is done with it: it sent the finish
    of every internal id, or (for a stopped request, whose abort the core never confirms) its
    scheduler stats say it holds no request at all, or a round trip to the core made after the
    abort has come back (`settle()`). At most `keep_stopped` stopped requests are remembered while
    the core stays busy; tokens for an internal id we no longer know can only belong to a stopped
    request we forgot, and count as after the stop.
    """

    def __init__(self, keep_stopped: int = 4096):
        self.counts = CoreCounts()
        self._keep_stopped = keep_stopped
        self._ids: dict[str, str] = {}  # internal id -> our request id
        self._requests: dict[str, _Request] = {}
        self._stopped: OrderedDict[str, int] = OrderedDict()  # ended by a stop, oldest first: its number

    def added(self, internal_id: str, request_id: str) -> None:
        """The frontend sends `internal_id` (one candidate of `request_id`) to the core."""
        self._ids[internal_id] = request_id
        self._requests.setdefault(request_id, _Request()).live.add(internal_id)

    def core_output(self, internal_id: str, tokens: int, finished: bool) -> None:
        """The core sent `tokens` new tokens for `internal_id` (and said whether it is finished)."""
        counts = self.counts
        counts.tokens_generated += tokens
        request_id = self._ids.get(internal_id)
        request = self._requests.get(request_id) if request_id is not None else None
        if request is None:
            counts.tokens_unread += tokens
            counts.tokens_after_stop += tokens
            return
        request.generated += tokens
        if request.ended:
            counts.tokens_after_stop += tokens
            if request.stopped:
                counts.tokens_unread += tokens
        if finished:
            del self._ids[internal_id]
            request.live.discard(internal_id)
            self._forget_if_done(request_id, request)

    def scheduler_stats(self, running: int, waiting: int) -> None:
        """The core's latest scheduler stats: how many requests it holds."""
        self.counts.requests_running = running + waiting
        if running + waiting == 0:
            # The core holds nothing: every abort has landed, no stopped request can send more.
            for request_id in list(self._stopped):
                self._drop(request_id)

    def read(self, request_id: str, tokens: int) -> None:
        request = self._requests.get(request_id)
        if request is not None:
            request.read += tokens

    def ended(self, request_id: str, stopped: bool) -> int | None:
        """Our stream for `request_id` is over: the engine finished it, or we `stopped` it first.
        Returns the tokens the core had sent for it by then (None for a request it never saw)."""
        request = self._requests.get(request_id)
        if request is None or request.ended:
            return None
        request.ended = True
        if stopped:
            request.stopped = True
            self.counts.requests_stopped += 1
            self.counts.tokens_unread += max(0, request.generated - request.read)
            self._stopped[request_id] = self.counts.requests_stopped
            while len(self._stopped) > self._keep_stopped:
                self._drop(next(iter(self._stopped)))
        self._forget_if_done(request_id, request)
        return request.generated

    @property
    def unsettled(self) -> int:
        """The number of the latest stop whose request the core may still send tokens for (0: none)."""
        return next(reversed(self._stopped.values()), 0)

    def settle(self, upto: int) -> None:
        """The core has processed the aborts of stops 1..`upto` and everything it sent before that
        has been counted: those requests cannot send more."""
        for request_id, number in list(self._stopped.items()):
            if number > upto:
                break
            self._drop(request_id)

    def _forget_if_done(self, request_id: str, request: _Request) -> None:
        if request.ended and not request.live:
            self._drop(request_id)

    def _drop(self, request_id: str) -> None:
        self._stopped.pop(request_id, None)
        request = self._requests.pop(request_id, None)
        if request is not None:
            for internal_id in request.live:
                self._ids.pop(internal_id, None)

    @property
    def tracked(self) -> int:
        """Requests remembered now (bounded; for tests)."""
        return len(self._requests)
