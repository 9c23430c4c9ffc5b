"""One completion, start to end: typed-ahead cache → a live stream to reuse → debounce → prompt →
engine stream → post-processing → cache and counters.

The engine stream is read by a task of its own (completion/streams.py), inside
`contextlib.aclosing`: leaving it for any reason (every candidate's post-processor says "complete",
a keystroke contradicts it, nobody can use it any more) closes the stream, and closing is what aborts
the request inside the engine. The request waits on that stream for its answer, which may come
before the stream ends (answer early); the stream may then go on in the background.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from engine import templates
from engine.base import CompletionRequest, Engine, EngineState, EngineUnavailable, ModelInfo, Sampling
from engine.templates import Template

from ..settings import Settings
from . import syntax
from .cache import CompletionCache
from .closers import fit_at
from .counters import ServerCounters
from .debounce import AdaptiveDebounce
from .postprocess import StreamFilter
from .prompt import ContextDocument, Prompt, PromptOptions, build_prompt
from .scheduler import Lease, Superseded, Turn
from .source import EngineSource
from .streams import LiveStream, Streams, Wants
from .trace import CACHED, ENGINE_BACKGROUND, Trace
from .tokens import TokenCounts

log = logging.getLogger(__name__)

#: Tokens kept free of the context window beyond prompt and completion: the engine may add a
#: beginning-of-sequence token, and chunk sums can be a little off.
_CONTEXT_MARGIN = 8


@dataclass(frozen=True)
class Completion:
    """What the pipeline answers for one request: the text to insert at the cursor, and how it came."""

    text: str  # the first candidate, inserted at the cursor; empty means "nothing to suggest"
    latency_ms: float = 0.0
    from_cache: bool = False
    #: Every distinct candidate, `text` first.
    texts: tuple[str, ...] = field(default=())
    #: Per candidate: the text after the cursor (on its line) that accepting it replaces — closers
    #: the editor inserted that the suggestion re-supplies (closers.py). Empty: inserted at the cursor.
    covers: tuple[str, ...] = field(default=())

    @property
    def candidates(self) -> tuple[str, ...]:
        """Every suggestion to offer, the best first (empty: nothing to show)."""
        return self.texts or ((self.text,) if self.text else ())

    @property
    def items(self) -> tuple[tuple[str, str], ...]:
        """(text, what it replaces after the cursor) per candidate."""
        covers = self.covers + ("",) * (len(self.candidates) - len(self.covers))
        return tuple(zip(self.candidates, covers))


EMPTY = Completion("")


class Completer:
    """One completion from start to end (module docstring), with the state that outlives a request:
    the typed-ahead cache, the live engine streams, the adaptive debounce and the token counts of the
    engine's tokenizer."""

    _request_ids = itertools.count(1)

    def __init__(self, host: EngineSource, counters: ServerCounters, settings: Callable[[], Settings]):
        self._host = host
        self._counters = counters
        self._settings = settings
        self.cache = CompletionCache()
        self.debounce = AdaptiveDebounce()
        self.token_counts = TokenCounts()
        self.streams = Streams(counters, settings, on_error=self._background_failed)
        self._template_memo: tuple[tuple[str, str, frozenset[str]], Template] | None = None

    # -- document events ----------------------------------------------------------------------

    def document_changed(self, uri: str, text: str | None = None) -> None:
        """A keystroke in `uri` (now `text`): the adaptive debounce learns the typing rhythm from it,
        and the engine streams of `uri` that the new text contradicts are aborted."""
        self.debounce.keystroke(uri, time.monotonic())
        if text is not None:
            self.streams.document_changed(uri, text)

    def document_closed(self, uri: str) -> None:
        """`uri` is gone: abort its engine streams, forget its cached suggestions and its rhythm."""
        self.streams.abort(uri, "closed")
        self.cache.forget(uri)
        self.debounce.forget(uri)

    def abandon(self, uri: str) -> None:
        """A request of `uri` ran out of time: its engine streams are aborted with it."""
        self.streams.abort(uri, "timeout")

    async def close(self) -> None:
        """Abort every engine stream and wait until each is closed (before the engine stops)."""
        await self.streams.close()

    def _background_failed(self, exc: Exception) -> None:
        """A stream nobody waited for failed: reported as a request's failure would be."""
        engine = self._host.ready()
        if engine is None or not isinstance(exc, EngineUnavailable):
            log.warning("engine stream failed in the background: %s", exc)
            return
        self._failed(engine, exc)

    # -- completion ---------------------------------------------------------------------------

    async def complete(
        self,
        text: str,
        offset: int,
        turn: Turn,
        *,
        uri: str = "",
        invoked: bool = False,
        path: str | None = None,
        documents: Sequence[ContextDocument] = (),
        trace: Trace | None = None,
        language: str = "",
    ) -> Completion:
        """The completion for `text` at `offset`; raises Superseded or CancelledError when overtaken.
        `trace`, when given, is filled in as the request goes (trace.py); the caller says how it ended.
        `language` is the document's languageId (it chooses the grammar and the closer rules).

        In order: the typed-ahead cache; a live stream of the document this text agrees with
        (`reuseStream`); otherwise, after the debounce, a new engine stream (completion/streams.py).
        """
        trace = trace if trace is not None else Trace("", uri, "invoked" if invoked else "automatic")
        started = time.perf_counter()
        settings = self._settings()
        if self._host.ready() is None:
            return EMPTY  # loading or failed: the host has already told the user
        before, after = text[:offset], text[offset:]
        fitting = Fitting(settings, text, offset, language)  # every answer's covers are judged here
        if settings.scheduling.cache and not invoked:
            hit = self.cache.find(uri, before, after)
            if hit is not None:
                self._counters.completions_from_cache += 1
                trace.ended = CACHED
                trace.tokens_shown += hit.shown_tokens()
                return self._completion(hit.rest, started, fitting, from_cache=True)
        wants = self._wants(settings, invoked)
        if settings.generation.reuse_stream and not invoked:
            found = self.streams.usable(uri, before, after)
            if found is not None:
                stream, typed = found
                trace.engine_request, trace.engine_end = stream.request.request_id, ENGINE_BACKGROUND
                try:
                    texts = await turn.wait(lambda: stream.answer(typed, wants, trace))
                except EngineUnavailable as exc:
                    trace.error = str(exc)[:300]
                    return self._failed(self._host.ready(), exc)
                if texts is not None:
                    self._counters.completions_from_stream += 1
                    return self._completion(texts, started, fitting)
                # It contradicted what was typed after all: this request needs the engine.

        scheduling = settings.scheduling
        fixed = scheduling.debounce_ms / 1000
        interval = self.debounce.wait(uri, fixed, time.monotonic()) if scheduling.debounce == "adaptive" else fixed
        self._counters.debounce_ms = round(interval * 1000)
        waited = time.monotonic()
        try:
            await turn.debounce(max(0.0, interval - (time.perf_counter() - started)))
        finally:
            trace.debounce_ms = _ms_since(waited)
        engine = self._host.ready()
        if engine is None:
            return EMPTY
        # A newer request of this document needs the engine: what nobody waits for is of no use now.
        self.streams.abort_idle(uri, "superseded")
        try:
            waited = time.monotonic()
            prompt = await self.prompt(engine, settings, text, offset, path, documents, language)
            trace.prompt_ms = _ms_since(waited)
            waited = time.monotonic()
            lease = await turn.admit()
            trace.queue_ms = _ms_since(waited)
            stream = self._start(engine, prompt, settings, invoked, uri, before, after, lease, trace)
            try:
                texts = await turn.wait(lambda: stream.answer("", wants, trace))
            finally:
                stream.release_reservation()
        except EngineUnavailable as exc:
            trace.error = str(exc)[:300]
            return self._failed(engine, exc)
        if texts is None:
            # Its own stream was aborted under it: a keystroke contradicted it (or the document
            # closed), so this request is for a text that is gone.
            raise Superseded(reached_engine=True)
        if stream.first_answer_s is not None:
            self.debounce.engine_latency(stream.first_answer_s)
        completion = self._completion(texts, started, fitting)
        if invoked:
            self._counters.candidates_returned += len(completion.candidates)
        self._host.request_succeeded(completion.latency_ms)
        return completion

    def _failed(self, engine: Engine | None, exc: EngineUnavailable) -> Completion:
        """An engine request failed: count it, tell the engine's owner, answer empty."""
        self._counters.engine_errors += 1
        log.warning("engine request failed: %s", exc)
        if engine is not None:
            if engine.state is EngineState.READY and exc.retry_after is not None:
                self._counters.engine_rejected += 1  # turned away by an overloaded engine
            self._host.request_failed(engine, exc)
        return EMPTY

    @staticmethod
    def _completion(texts: tuple[str, ...], started: float, fitting: Fitting, from_cache: bool = False) -> Completion:
        latency = (time.perf_counter() - started) * 1000
        texts, covers = fitting.fit(texts)
        if not texts:
            return Completion("", latency_ms=latency, from_cache=from_cache)
        return Completion(texts[0], latency_ms=latency, from_cache=from_cache, texts=texts, covers=covers)

    @staticmethod
    def _wants(settings: Settings, invoked: bool) -> Wants:
        """When a request takes its answer: automatic ones at a complete line (answerEarly)."""
        generation = settings.generation
        if invoked or not generation.answer_early:
            return Wants()
        return Wants(early=True, deadline_s=generation.answer_deadline_ms / 1000)

    def template(self, settings: Settings, info: ModelInfo) -> Template:
        """The prompt template for the model (chosen once per setting and model, then memoized)."""
        setting = settings.prompt.template
        key = (json.dumps(setting, sort_keys=True), info.name, info.special_tokens)
        if self._template_memo is None or self._template_memo[0] != key:
            self._template_memo = (key, templates.from_setting(setting, info.name, info.special_tokens))
            log.info("prompt template: %s", self._template_memo[1].name)
        return self._template_memo[1]

    async def prompt(
        self, engine: Engine, settings: Settings, text: str, offset: int,
        path: str | None, documents: Sequence[ContextDocument], language: str = "",
        after_accept: bool = False,
    ) -> Prompt:
        """The prompt sent to `engine` for `text` at `offset` (`vllm-ls bench` rebuilds the server's
        prompts with it to time the same request on the engine directly). `after_accept`: the text
        is a suggestion taken as accepted (speculation.py)."""
        block = block_expected(settings, text, offset, language, after_accept)
        self.token_counts.bind(engine)
        info = engine.model_info()
        template = self.template(settings, info)
        generation, prompt_settings = settings.generation, settings.prompt
        completion_tokens = max(generation.max_tokens, generation.max_line_tokens)
        limit = info.max_model_len - completion_tokens - _CONTEXT_MARGIN
        budget = max(16, min(prompt_settings.max_prompt_tokens, limit))
        # Chunk sums run about 1 % high; only a budget the model's limit has capped needs the exact count.
        capped = prompt_settings.max_prompt_tokens >= limit
        documents = documents if template.takes_files else ()
        for _ in range(3):
            options = PromptOptions(
                max_prompt_tokens=budget,
                suffix_share=prompt_settings.suffix_share,
                context_documents=prompt_settings.context_documents,
                multiline=generation.multiline,
                max_tokens=generation.max_tokens,
                max_line_tokens=generation.max_line_tokens,
            )
            prompt = await self.token_counts.build(
                lambda count: build_prompt(text, offset, template, options, count, path, documents,
                                           block=block, language=language),
                engine.count_tokens,
            )
            if not capped:
                return prompt
            exact = len(await engine.tokenize(prompt.text))
            if exact <= limit:
                return prompt
            budget -= exact - limit + _CONTEXT_MARGIN
        return prompt

    def speculate(
        self, engine: Engine, prompt: Prompt, settings: Settings, uri: str, before: str, after: str, lease: Lease,
        cursor: int, covers: str = "",
    ) -> LiveStream:
        """Start a stream nobody waits for (completion/speculation.py): the automatic completion at
        `before`|`after`, a text the document does not have yet (it has `before[:cursor]`|`covers`
        `after`: accepting replaces `covers`, and typing the rest by hand keeps the stream); it runs
        in the background at once."""
        # Nobody's request: its trace is not logged (the speculation counters tell its story).
        trace = Trace("", uri, "speculation")
        stream = self._start(engine, prompt, settings, False, uri, before, after, lease, trace, approach_from=cursor)
        stream.approach_covers = covers
        stream.release_reservation()
        return stream

    def _start(
        self, engine: Engine, prompt: Prompt, settings: Settings, invoked: bool, uri: str,
        before: str, after: str, lease: Lease, trace: Trace, approach_from: int | None = None,
    ) -> LiveStream:
        """Start the engine stream for `prompt` at `before`|`after`; it holds `lease` until it ends."""
        generation = settings.generation
        early_stop = generation.early_stop
        n = generation.candidates if invoked else 1
        request = CompletionRequest(
            request_id=f"vllm-ls-{next(self._request_ids)}",
            affinity=uri,
            prompt=prompt.text,
            sampling=Sampling(
                max_tokens=prompt.max_tokens,
                temperature=generation.candidate_temperature if n > 1 else generation.temperature,
                top_p=0.95 if n > 1 else 1.0,
                # Without early stop (the bench's naive profile) the engine runs to its limit.
                stop=prompt.stop if early_stop else (),
                n=n,
            ),
        )
        filters = [filter_for(prompt, settings) for _ in range(n)]
        return self.streams.start(
            uri=uri, before=before, after=after, engine=engine, request=request, filters=filters,
            lease=lease, early_stop=early_stop, shareable=not invoked and n == 1,
            cache=self.cache if settings.scheduling.cache else None, trace=trace, approach_from=approach_from,
        )


@dataclass(frozen=True)
class Fitting:
    """Where an answer is shown: its texts get their covers there (and are fitted to the closers
    after the cursor). Every answer passes here — a new stream's, a reused stream's, the typed-ahead
    cache's (so a speculation's too) — so what a suggestion covers is always judged against the
    document as it is now, not as it was when the stream started: `closers.fit` is idempotent, and
    a suggestion typed along keeps its cover."""

    settings: Settings
    document: str
    offset: int
    language: str

    def fit(self, texts: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The distinct non-blank texts to offer and, per text, the document text it replaces."""
        if not self.settings.generation.cover_closers:
            kept = tuple(t for t in dict.fromkeys(texts) if t.strip())
            return kept, ("",) * len(kept)
        fitted: dict[str, str] = {}
        for text in texts:
            fit = fit_at(self.document, self.offset, text, self.language)
            if fit.text.strip() and fit.text not in fitted:
                fitted[fit.text] = self.document[self.offset: self.offset + fit.replace]
        return tuple(fitted), tuple(fitted.values())


def block_expected(
    settings: Settings, text: str, offset: int, language: str, after_accept: bool = False,
) -> bool | None:
    """Whether the syntax at the cursor expects a block (None: no grammar, or not `multiline: auto`).

    `after_accept`: at the end of a suggestion taken as accepted (speculation), a complete line is
    followed by the next lines — that is what the speculation is for; at a pause the user makes
    there, only the rest of the line is offered (nothing new below it)."""
    if not settings.generation.syntax or settings.generation.multiline != "auto":
        return None
    # Only a window around the cursor is parsed (well under a millisecond): no need to leave the loop.
    shape = syntax.shape_at(text, offset, language)
    if shape is None:
        return None
    return True if after_accept and shape.reason == syntax.COMPLETE_LINE else shape.block


def filter_for(prompt: Prompt, settings: Settings) -> StreamFilter:
    """The post-processor for one candidate of `prompt`."""
    generation = settings.generation
    return StreamFilter(
        multiline=prompt.multiline,
        line_prefix=prompt.line_prefix,
        line_suffix=prompt.line_suffix,
        suffix=prompt.suffix,
        max_lines=generation.max_lines,
        heal=prompt.heal,
        stop=prompt.stop,
        previous_lines=prompt.previous_lines,
        language=prompt.language,
        suffix_lines=generation.suffix_lines,
        cover_closers=generation.cover_closers,
    )


def _ms_since(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 1)
