"""Infill quality: holes completed through the server (one variant per settings profile) and by the
raw baseline on the same engine, scored against the removed text.

Through the server: one hole at a time, each in a document of its own that is the only one open (a
template that shows other open files must not see another copy of the file with the answer in it),
asked for as ghost text while typing is (an automatic inline request: one greedy candidate).
Raw baseline: the direct engine with the text before the hole as the whole prompt (its last
`maxPromptTokens` tokens), up to `maxTokens` tokens, no stop strings and no post-processing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from lsprotocol import types

from ..client import HeadlessClient
from ...settings import Settings
from .direct import DirectEngine
from .holes import Hole
from .profiles import Profile
from .replay import completion_texts, inline_params
from .scoring import score, summarize

RAW = "raw"
_RAW_CONCURRENCY = 8
_CONTEXT_MARGIN = 8


async def through_server(client: HeadlessClient, variant: Profile, holes: Sequence[Hole], timeout: float) -> list[str]:
    await client.configure(variant.settings)
    completions = []
    for number, hole in enumerate(holes):
        uri = f"file:///vllm-ls-bench/quality/{variant.name}/{number}/{hole.name}"
        client.open(uri, hole.text)
        try:
            _, future = client.send(types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, hole.text, hole.offset))
            texts = completion_texts(await asyncio.wait_for(future, timeout))
        finally:
            client.close(uri)
        completions.append(texts[0] if texts else "")
    return completions


async def raw(direct: DirectEngine, settings: Settings, holes: Sequence[Hole]) -> list[str]:
    info = direct.engine.model_info()
    max_tokens = settings.generation.max_tokens
    budget = max(16, min(settings.prompt.max_prompt_tokens, info.max_model_len - max_tokens - _CONTEXT_MARGIN))
    # Not timed: concurrent requests let the engine batch them.
    gate = asyncio.Semaphore(_RAW_CONCURRENCY)

    async def one(hole: Hole) -> str:
        async with gate:
            return await direct.raw(hole.text[: hole.offset], max_tokens, budget)

    return list(await asyncio.gather(*(one(hole) for hole in holes)))


def results(holes: Sequence[Hole], completions: dict[str, Sequence[str]], settings: dict[str, dict]) -> dict[str, Any]:
    """Scores per variant (by hole kind and overall) and every hole with what each variant wrote."""
    variants = []
    for name, texts in completions.items():
        scores = [score(text, hole.expected) for text, hole in zip(texts, holes)]
        variants.append({
            "variant": name,
            "settings": settings.get(name),
            **{kind: summarize(s for s, h in zip(scores, holes) if h.kind == kind) for kind in ("line", "block")},
            "all": summarize(scores),
        })
    return {
        "holes": len(holes),
        "variants": variants,
        "cases": [
            {"hole": hole.label, "kind": hole.kind, "expected": hole.expected,
             "completions": {name: texts[i] for name, texts in completions.items()}}
            for i, hole in enumerate(holes)
        ],
    }
