"""Speculation: after a suggestion is shown, compute the one that follows accepting it, while the
engine has nothing else to do (as llama.vim does), so that accepting shows the next suggestion at once.

When: a suggestion was shown for an automatic request, the document stays as it was for the debounce
interval (the user looks at it rather than typing on), and the engine is idle — no engine work runs
or waits for a slot. Then the suggestion is taken as accepted: its whole text, which is the longest
the typed-ahead cache holds at that cursor (a background continuation may have grown it past the line
shown), is inserted into the document, the prompt is built at the end of it, and an engine stream is
started there with nobody waiting for it: a background stream like those of completion/streams.py.
Its lines go to the typed-ahead cache under the accepted text; the request that comes with the accept
is served from the cache, or waits on the stream while it runs (`reuseStream`). After only the first
line of a multi-line suggestion is accepted, the cache already holds the rest of it: the completion
after the whole is the one worth computing. A suggestion that does not end its line (text follows
it on the line) is not speculated on: the completion after it would be a rest-of-line one, which is
nearly always empty. A suggestion that covers the closers after the cursor (`foo(|)` + `a) + b`,
closers.py) replaces them when accepted: what follows it is the line after those closers.

Lowest priority: the stream's slot comes from `Scheduler.idle_lease` and any request that asks for a
slot preempts it (free slots or not), so it never shares the engine with a request someone waits for.
vLLM's own priority scheduling cannot give that: checked in vLLM 0.32, `scheduling_policy="priority"`
runs on the CPU engine and `priority` is accepted per request (in-process and in `/v1/completions`),
but it only orders the waiting queue and chooses whom to preempt when KV blocks run out; a running
low-priority request is batched with the new one and keeps generating (measured: a priority-10
stream produced a delta at every step of a priority-0 request that arrived during it). And a
remote server's policy is its operator's choice, not ours.

Once per accepted text: the answers that come while the user types the suggestion by hand (from the
typed-ahead cache) show the rest of the same suggestion, whose accepted text is the same; it is not
speculated on again.

Stopped by: any keystroke but the accept or typing the suggestion by hand (either leads to the
accepted text; anything else leaves it), a request of any document that needs the engine, a newer
request of its document, the document closing, shutdown (`close`), and its block being complete.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from ..settings import Settings
from .completer import Completer
from .counters import ServerCounters
from .indent import indented
from .prompt import ContextDocument
from .scheduler import Scheduler
from .source import EngineSource
from .streams import LiveStream

log = logging.getLogger(__name__)

#: How often a waiting speculation checks whether the engine has become idle.
IDLE_POLL_S = 0.05


class Speculation:
    """The speculations of a server: at most one pending per document, one running at a time."""

    def __init__(
        self, completer: Completer, scheduler: Scheduler, host: EngineSource, counters: ServerCounters,
        settings: Callable[[], Settings], document_text: Callable[[str], str | None],
    ):
        self._completer = completer
        self._scheduler = scheduler
        self._host = host
        self._counters = counters
        self._settings = settings
        self._document_text = document_text
        self._pending: dict[str, asyncio.Task] = {}
        #: The document text (accepted suggestion included) last speculated at, per document.
        self._speculated: dict[str, str] = {}

    @staticmethod
    def enabled(settings: Settings) -> bool:
        # Its result reaches the user through the typed-ahead cache or a reused stream.
        return settings.generation.speculate and settings.generation.reuse_stream and settings.scheduling.cache

    def shown(
        self, uri: str, text: str, offset: int, suggestion: str, path: str | None = None,
        documents: Sequence[ContextDocument] = (), covers: str = "", language: str = "",
    ) -> None:
        """`suggestion` was shown for the document `uri` (its text `text`, the cursor at `offset`),
        replacing `covers` after the cursor when accepted."""
        settings = self._settings()
        if not suggestion.strip() or not self.enabled(settings) or _line_goes_on(text[offset + len(covers):]):
            return
        self._cancel(uri)
        self._pending[uri] = asyncio.ensure_future(
            self._speculate(uri, text, offset, suggestion, path, documents, len(covers), language))

    def document_changed(self, uri: str) -> None:
        """A keystroke: the suggestion it was waiting to speculate on is not on screen any more."""
        self._cancel(uri)

    def document_closed(self, uri: str) -> None:
        self._cancel(uri)
        self._speculated.pop(uri, None)

    async def close(self) -> None:
        """Drop every pending speculation (running ones are engine streams: Completer.close ends them)."""
        tasks = list(self._pending.values())
        self._pending.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _cancel(self, uri: str) -> None:
        task = self._pending.pop(uri, None)
        if task is not None:
            task.cancel()

    async def _speculate(
        self, uri: str, text: str, offset: int, suggestion: str, path: str | None,
        documents: Sequence[ContextDocument], covered: int, language: str,
    ) -> None:
        try:
            settings = self._settings()
            loop = asyncio.get_running_loop()
            # The user looks at the suggestion; a keystroke meanwhile cancels this task.
            await asyncio.sleep(settings.scheduling.debounce_ms / 1000)
            give_up = loop.time() + settings.scheduling.request_timeout_ms / 1000
            while loop.time() < give_up:
                if self._document_text(uri) != text:
                    return  # the request was for an older text than the document has now
                settings = self._settings()
                if not settings.generation.speculate:
                    return  # turned off while it waited for the engine
                engine = self._host.ready()
                if engine is None:
                    return
                if self._scheduler.in_flight or self._scheduler.waiting:
                    await asyncio.sleep(IDLE_POLL_S)
                    continue
                # Accepting replaces what the suggestion covers: the document goes on after it.
                before, after = text[:offset], text[offset + covered:]
                accepted = before + self._whole(uri, text, offset, suggestion, settings)
                if self._speculated.get(uri) == accepted + after:
                    return  # the rest of a suggestion already speculated on (typed by hand so far)
                prompt = await self._completer.prompt(engine, settings, accepted + after, len(accepted), path,
                                                      documents, language, after_accept=True)
                lease = self._scheduler.idle_lease(uri)
                if lease is None:
                    continue  # someone asked for the engine while the prompt was built
                if self._document_text(uri) != text:
                    lease.release()
                    return
                stream = self._completer.speculate(engine, prompt, settings, uri, accepted, after, lease,
                                                   cursor=len(before), covers=text[offset: offset + covered])
                self._speculated[uri] = accepted + after
                self._counters.speculations_started += 1
                stream.task.add_done_callback(lambda _, s=stream: self._ended(s))
                log.debug("speculating for %s after %d accepted characters", uri, len(accepted) - len(before))
                return
        finally:
            if self._pending.get(uri) is asyncio.current_task():
                del self._pending[uri]

    def _whole(self, uri: str, text: str, offset: int, suggestion: str, settings: Settings) -> str:
        """The longest suggestion at the cursor: what the cache holds (grown by a background
        continuation) if it starts with what was shown, else what was shown."""
        lead = ""
        if settings.generation.auto_indent:
            text, offset, lead = indented(text, offset)  # the cache keeps it under the indentation
        hit = self._completer.cache.find(uri, text[:offset], text[offset:])
        longest = lead + hit.rest[0] if hit is not None and hit.rest else ""
        return longest if longest.startswith(suggestion) else suggestion

    def _ended(self, stream: LiveStream) -> None:
        counters = self._counters
        counters.speculation_tokens += sum(piece.tokens for ledger in stream.ledgers for piece in ledger.pieces)
        if stream.reason in ("finished", "complete"):
            counters.speculations_finished += 1
        else:
            counters.speculations_aborted += 1


def _line_goes_on(after: str) -> bool:
    """Code follows the cursor on its line."""
    line = after.split("\n", 1)[0]
    return bool(line.strip())


__all__ = ["Speculation"]
