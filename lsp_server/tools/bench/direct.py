"""The direct engine call: the floor the server's overhead is measured against, and the engine behind
the raw infill baseline.

It is the engine the server builds from the same settings (`engine_host.build_engine`): in-process,
a second vLLM engine of the same configuration in the bench's process; remote, the same vLLM server.
Prompts are rebuilt with the server's own prompt builder (`Completer.prompt`), so a direct call sends
the very prompt the server sent; the prompt token counts of both are recorded to prove it.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from dataclasses import dataclass

from engine.base import CompletionRequest, EngineState, ProgressCallback, Sampling

from ...completion.completer import Completer
from ...hosting.engine_host import build_engine
from ...completion.prompt import Prompt
from ...settings import Settings
from ...completion.counters import ServerCounters


@dataclass(frozen=True)
class Timed:
    ms: float
    tokens: int
    prompt_tokens: int | None
    text: str


class DirectEngine:
    """The engine the server would build, called directly (the floor the LSP overhead is measured on)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.engine = build_engine(settings.engine)
        # Only its prompt builder is used: no host, no scheduler, no LSP.
        self._prompts = Completer(None, ServerCounters(), lambda: settings)  # type: ignore[arg-type]
        self._ids = itertools.count(1)

    @property
    def name(self) -> str:
        return self.engine.name

    async def start(self, progress: ProgressCallback | None = None) -> None:
        await self.engine.start(progress)
        if self.engine.state is not EngineState.READY:
            raise RuntimeError(f"the direct engine is {self.engine.state.value}: {self.engine.error}")

    async def prompt(self, settings: Settings, text: str, offset: int, path: str | None,
                     language: str = "python") -> Prompt:
        """The server's prompt for a document opened as `language` (the bench's client opens Python)."""
        return await self._prompts.prompt(self.engine, settings, text, offset, path, (), language)

    async def run(self, prompt: str | tuple[int, ...], sampling: Sampling) -> Timed:
        """One request, streamed to its end: the time from asking to the last token."""
        request = CompletionRequest(f"vllm-ls-bench-{next(self._ids)}", prompt, sampling)
        tokens, pieces, prompt_tokens = 0, [], None
        started = time.perf_counter()
        async with contextlib.aclosing(self.engine.stream(request)) as stream:
            async for delta in stream:
                if delta.prompt_tokens is not None and prompt_tokens is None:
                    prompt_tokens = delta.prompt_tokens
                tokens += delta.tokens
                pieces.append(delta.text)
        return Timed((time.perf_counter() - started) * 1000, tokens, prompt_tokens, "".join(pieces))

    async def raw(self, before: str, max_tokens: int, budget: int) -> str:
        """The raw baseline: the last `budget` tokens of the text before the cursor, nothing else in
        the prompt, and the engine's text as it comes (no stop strings, no post-processing)."""
        ids = await self.engine.tokenize(before)
        return (await self.run(tuple(ids[-budget:]), Sampling(max_tokens=max_tokens))).text

    async def close(self) -> None:
        await self.engine.close()
