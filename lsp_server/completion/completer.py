"""One completion, start to end: typed-ahead cache → debounce → prompt → engine stream →
post-processing → cache and counters.

The engine stream is consumed inside `contextlib.aclosing`: leaving it for any reason (every
candidate's post-processor says "complete", a newer request supersedes this one, the client cancels)
closes the stream, and closing is what aborts the request inside the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from .cache import CompletionCache
from .counters import ServerCounters
from .debounce import AdaptiveDebounce
from .postprocess import StreamFilter
from .prompt import ContextDocument, Prompt, PromptOptions, build_prompt
from .scheduler import Turn
from .source import EngineSource
from .tokens import TokenCounts
from .trace import CACHED, ENGINE_EARLY_STOP, ENGINE_FINISHED, ENGINE_STOPPED, Trace

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

    @property
    def candidates(self) -> tuple[str, ...]:
        """Every suggestion to offer, the best first (empty: nothing to show)."""
        return self.texts or ((self.text,) if self.text else ())


EMPTY = Completion("")


class Completer:
    """One completion from start to end (module docstring), with the state that outlives a request:
    the typed-ahead cache, the adaptive debounce and the token counts of the engine's tokenizer."""

    _request_ids = itertools.count(1)

    def __init__(self, host: EngineSource, counters: ServerCounters, settings: Callable[[], Settings]):
        self._host = host
        self._counters = counters
        self._settings = settings
        self.cache = CompletionCache()
        self.debounce = AdaptiveDebounce()
        self.token_counts = TokenCounts()
        self._template_memo: tuple[tuple[str, str, frozenset[str]], Template] | None = None

    # -- document events ----------------------------------------------------------------------

    def document_changed(self, uri: str) -> None:
        """A keystroke in `uri`: the adaptive debounce learns the typing rhythm from it."""
        self.debounce.keystroke(uri, time.monotonic())

    def document_closed(self, uri: str) -> None:
        """`uri` is gone: forget its cached suggestions and its rhythm."""
        self.cache.forget(uri)
        self.debounce.forget(uri)

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
    ) -> Completion:
        """The completion for `text` at `offset`; raises Superseded or CancelledError when overtaken.
        `trace`, when given, is filled in as the request goes (trace.py); the caller says how it ended."""
        trace = trace if trace is not None else Trace("", uri, "invoked" if invoked else "automatic")
        started = time.perf_counter()
        settings = self._settings()
        if self._host.ready() is None:
            return EMPTY  # loading or failed: the host has already told the user
        before, after = text[:offset], text[offset:]
        if settings.scheduling.cache and not invoked:
            rest = self.cache.lookup(uri, before, after)
            if rest:
                self._counters.completions_from_cache += 1
                trace.ended = CACHED
                return Completion(rest[0], latency_ms=(time.perf_counter() - started) * 1000,
                                  from_cache=True, texts=rest)

        scheduling = settings.scheduling
        fixed = scheduling.debounce_ms / 1000
        interval = self.debounce.wait(uri, fixed, time.monotonic()) if scheduling.debounce == "adaptive" else fixed
        self._counters.debounce_ms = round(interval * 1000)
        waited = time.monotonic()
        try:
            await turn.debounce(interval)
        finally:
            trace.debounce_ms = _ms_since(waited)
        engine = self._host.ready()
        if engine is None:
            return EMPTY
        try:
            waited = time.monotonic()
            prompt = await self.prompt(engine, settings, text, offset, path, documents)
            trace.prompt_ms = _ms_since(waited)
            waited = time.monotonic()
            texts = await turn.run(lambda: self._generate(engine, prompt, settings, invoked, uri, trace, waited))
        except EngineUnavailable as exc:
            self._counters.engine_errors += 1
            log.warning("engine request failed: %s", exc)
            trace.error = str(exc)[:300]
            if engine.state is EngineState.READY and exc.retry_after is not None:
                self._counters.engine_rejected += 1  # turned away by an overloaded engine
            self._host.request_failed(engine, exc)
            return EMPTY
        latency = (time.perf_counter() - started) * 1000
        self._host.request_succeeded(latency)
        if not texts:
            return Completion("", latency_ms=latency)
        if settings.scheduling.cache:
            self.cache.store(uri, before, after, texts)
        return Completion(texts[0], latency_ms=latency, texts=texts)

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
        path: str | None, documents: Sequence[ContextDocument],
    ) -> Prompt:
        """The prompt sent to `engine` for `text` at `offset` (`vllm-ls bench` rebuilds the server's
        prompts with it to time the same request on the engine directly)."""
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
                lambda count: build_prompt(text, offset, template, options, count, path, documents),
                engine.count_tokens,
            )
            if not capped:
                return prompt
            exact = len(await engine.tokenize(prompt.text))
            if exact <= limit:
                return prompt
            budget -= exact - limit + _CONTEXT_MARGIN
        return prompt

    async def _generate(
        self, engine: Engine, prompt: Prompt, settings: Settings, invoked: bool, uri: str,
        trace: Trace, queued: float,
    ) -> tuple[str, ...]:
        trace.queue_ms = _ms_since(queued)
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
        filters = [
            StreamFilter(
                multiline=prompt.multiline,
                line_prefix=prompt.line_prefix,
                line_suffix=prompt.line_suffix,
                suffix=prompt.suffix,
                max_lines=generation.max_lines,
                heal=prompt.heal,
                stop=prompt.stop,
                previous_lines=prompt.previous_lines,
            )
            for _ in range(n)
        ]
        # Per candidate: (offset in its generated text, tokens) of each delta, for tokens_shown.
        deltas: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        generated = [0] * n
        started = time.monotonic()
        trace.engine_request, trace.engine_end = request.request_id, ENGINE_STOPPED
        log.debug("engine request %s started for %s", request.request_id, uri)
        try:
            async with contextlib.aclosing(engine.stream(request)) as stream:
                async for delta in stream:
                    self._counters.tokens_received += delta.tokens
                    trace.saw(delta, started)
                    if not 0 <= delta.index < n:
                        continue
                    i = delta.index
                    deltas[i].append((generated[i], delta.tokens))
                    generated[i] += len(delta.text)
                    filters[i].feed(delta.text)
                    if early_stop and all(f.done for f in filters):
                        trace.engine_end = ENGINE_EARLY_STOP
                        break  # every candidate is complete: leaving the block aborts the engine request
                else:
                    trace.engine_end = ENGINE_FINISHED
        except asyncio.CancelledError:
            # The editor tests wait for this line to see cancel-previous happen in a real editor.
            log.debug("engine request %s cancelled after %d characters", request.request_id, sum(generated))
            raise
        finally:
            trace.engine_closed_ms = trace.since_start()
        log.debug("engine request %s done after %d characters", request.request_id, sum(generated))
        trace.tokens_generated = engine.generated_tokens(request.request_id)
        self.debounce.engine_latency(time.monotonic() - started)
        shown: list[str] = []
        for stream_filter, pieces in zip(filters, deltas):
            stream_filter.finish()
            text = stream_filter.result()
            if not text or text in shown:
                continue
            shown.append(text)
            shown_end = stream_filter.skipped + len(text)
            tokens_shown = sum(tokens for start, tokens in pieces if start < shown_end)
            self._counters.tokens_shown += tokens_shown
            trace.tokens_shown += tokens_shown
        if invoked:
            self._counters.candidates_returned += len(shown)
        return tuple(shown)


def _ms_since(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 1)
