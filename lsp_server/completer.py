"""One completion, start to end: debounce → prompt → engine stream → post-processing → counters.

The engine stream is consumed inside `contextlib.aclosing`: leaving it for any reason (the
post-processor says "complete", a newer request supersedes this one, the client cancels) closes the
stream, and closing is what aborts the request inside the engine.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from engine.base import CompletionRequest, Engine, EngineState, EngineUnavailable, Sampling
from engine.templates import choose as choose_template

from .budget import TokenBudget
from .engine_host import EngineHost
from .postprocess import StreamFilter
from .prompt import Prompt, PromptOptions, build_prompt
from .scheduler import Turn
from .settings import Settings
from .stats import ServerCounters

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Completion:
    text: str  # inserted at the cursor; empty means "nothing to suggest"
    latency_ms: float = 0.0
    from_cache: bool = False


EMPTY = Completion("")


class Completer:
    _request_ids = itertools.count(1)

    def __init__(self, host: EngineHost, counters: ServerCounters, settings: Callable[[], Settings]):
        self._host = host
        self._counters = counters
        self._settings = settings
        self.budget = TokenBudget()
        self._budget_engine: Engine | None = None

    async def complete(self, text: str, offset: int, turn: Turn) -> Completion:
        """The completion for `text` at `offset`; raises Superseded or CancelledError when overtaken."""
        started = time.perf_counter()
        settings = self._settings()
        if self._host.ready() is None:
            return EMPTY  # loading or failed: the host has already told the user
        await turn.debounce(settings.debounce_ms / 1000)
        engine = self._host.ready()
        if engine is None:
            return EMPTY
        info = engine.model_info()
        template = choose_template(info.name, info.special_tokens)

        def build(max_prefix_chars: int) -> Prompt:
            return build_prompt(text, offset, template, PromptOptions(
                max_prefix_chars=max_prefix_chars,
                max_suffix_chars=settings.max_suffix_chars,
                multiline=settings.multiline,
                max_tokens=settings.max_tokens,
                max_line_tokens=settings.max_line_tokens,
            ))

        if engine is not self._budget_engine:
            self._budget_engine = engine
            self.budget.reset()
        try:
            prompt = await self.budget.fit(build, settings.max_prefix_chars, info.max_model_len, engine.count_tokens)
            shown = await turn.run(lambda: self._generate(engine, prompt, settings, turn.uri))
        except EngineUnavailable as exc:
            self._counters.engine_errors += 1
            log.warning("engine request failed: %s", exc)
            if engine.state is EngineState.FAILED:
                self._host.report_failure(engine.error or str(exc))
            elif engine.state is EngineState.UNAVAILABLE:
                self._host.report_unavailable(engine.error or str(exc))
            elif exc.retry_after is not None:
                self._counters.engine_rejected += 1
                self._host.report_busy(str(exc))
            return EMPTY
        latency = (time.perf_counter() - started) * 1000
        self._host.last_latency_ms = round(latency, 1)
        return Completion(shown, latency_ms=latency)

    async def _generate(self, engine: Engine, prompt: Prompt, settings: Settings, uri: str) -> str:
        early_stop = settings.early_stop
        request = CompletionRequest(
            request_id=f"vllm-ls-{next(self._request_ids)}",
            affinity=uri,
            prompt=prompt.text,
            sampling=Sampling(
                max_tokens=prompt.max_tokens,
                temperature=settings.temperature,
                # Without early stop (the bench's naive profile) the engine runs to its limit.
                stop=prompt.stop if early_stop else (),
            ),
        )
        stream_filter = StreamFilter(
            multiline=prompt.multiline,
            line_prefix=prompt.line_prefix,
            line_suffix=prompt.line_suffix,
            suffix=prompt.suffix,
            max_lines=settings.max_lines,
            heal=prompt.heal,
        )
        delta_starts: list[tuple[int, int]] = []  # (offset in the generated text, tokens)
        generated = 0
        async with contextlib.aclosing(engine.stream(request)) as stream:
            async for delta in stream:
                if delta.index != 0:
                    continue
                self._counters.tokens_received += delta.tokens
                delta_starts.append((generated, delta.tokens))
                generated += len(delta.text)
                if stream_filter.feed(delta.text) and early_stop:
                    break  # complete: leaving the block aborts the engine request
        shown = stream_filter.result()
        shown_end = stream_filter.skipped + len(shown)
        self._counters.tokens_shown += sum(tokens for start, tokens in delta_starts if start < shown_end) if shown else 0
        return shown
