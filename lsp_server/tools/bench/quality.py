"""Infill quality: holes completed through the server (one variant per settings profile) and by the
raw baseline on the same engine, scored against the removed text.

Through the server: one hole at a time, each in a document of its own that is the only one open (a
template that shows other open files must not see another copy of the file with the answer in it),
asked for as ghost text while typing is (an automatic inline request: one greedy candidate). The
whole suggestion is scored: `generation.answerEarly` is off for the holes (an early answer is the
first line of the same suggestion, whose other lines the typed-ahead cache serves once it is accepted).
Raw baseline: the direct engine with the text before the hole as the whole prompt (its last
`maxPromptTokens` tokens), up to `maxTokens` tokens, no stop strings and no post-processing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from lsprotocol import types

from ..client import HeadlessClient
from ...settings import Settings
from .direct import DirectEngine
from .holes import Hole
from .profiles import Profile
from .replay import completion_texts, inline_params
from ...completion.closers import doubles_closer
from ...completion.suffix import NearSuffix
from ...text import units_to_index
from .scoring import Score, score, summarize

RAW = "raw"
#: Times a hole is asked when the engine was not ready when it answered.
_ATTEMPTS = 3
_RAW_CONCURRENCY = 8
_CONTEXT_MARGIN = 8


#: A completion: its text and how many characters after the cursor it replaces.
Completion = tuple[str, int]


async def through_server(client: HeadlessClient, variant: Profile, holes: Sequence[Hole],
                         timeout: float, ready_timeout: float = 600.0) -> list[Completion]:
    # The text is scored, not the time: a request may take as long as the bench waits for it (on a
    # busy machine the 30 s default deadline answered some holes empty).
    await client.configure(variant.with_overrides({"scheduling.requestTimeoutMs": int(timeout * 1000),
                                                   "generation.answerEarly": False}))
    completions: list[Completion] = []
    for number, hole in enumerate(holes):
        for attempt in range(_ATTEMPTS):
            # An engine that died (on a machine short of memory the kernel kills its workers) answers
            # empty until it is back: that is no answer to score, so wait for it and ask again.
            await client.wait_ready(ready_timeout)
            seen = len(client.status_history)
            uri = f"file:///vllm-ls-bench/quality/{variant.name}/{number}/{attempt}/{hole.name}"
            client.open(uri, hole.text)
            try:
                _, future = client.send(types.TEXT_DOCUMENT_INLINE_COMPLETION,
                                        inline_params(uri, hole.text, hole.offset))
                result = await asyncio.wait_for(future, timeout)
            finally:
                client.close(uri)
            if all(status.get("state") == "ready" for status in client.status_history[seen:]):
                break
        texts = completion_texts(result)
        covered = _covered(hole, result.items[0].range) if texts else 0
        completions.append((texts[0], covered) if texts else ("", 0))
    return completions


def _covered(hole: Hole, item_range: types.Range | None) -> int:
    """Characters after the cursor the item's range covers (UTF-16 units → characters)."""
    if item_range is None or item_range.end.line != item_range.start.line:
        return 0
    units = item_range.end.character - item_range.start.character
    line_end = hole.text.find("\n", hole.offset)
    rest = hole.text[hole.offset: line_end if line_end != -1 else len(hole.text)]
    return units_to_index(rest, units)


async def raw(direct: DirectEngine, settings: Settings, holes: Sequence[Hole]) -> list[Completion]:
    info = direct.engine.model_info()
    max_tokens = settings.generation.max_tokens
    budget = max(16, min(settings.prompt.max_prompt_tokens, info.max_model_len - max_tokens - _CONTEXT_MARGIN))
    # Not timed: concurrent requests let the engine batch them.
    gate = asyncio.Semaphore(_RAW_CONCURRENCY)

    async def one(hole: Hole) -> str:
        async with gate:
            return await direct.raw(hole.text[: hole.offset], max_tokens, budget)

    return [(text, 0) for text in await asyncio.gather(*(one(hole) for hole in holes))]


KINDS = ("line", "block", "call")
#: Lines after the cursor whose re-typing the results count (the widest `suffixLines` the bench tried).
RETYPE_LINES = 8


def judge(hole: Hole, completion: Completion) -> Score:
    text, covered = completion
    covers = hole.text[hole.offset: hole.offset + covered]
    base = score(text, hole.expected + covers)
    line_start = hole.text.rfind("\n", 0, hole.offset) + 1
    line_end = hole.text.find("\n", hole.offset)
    line_suffix = hole.text[hole.offset + covered: line_end if line_end != -1 else len(hole.text)]
    near = NearSuffix(hole.text[line_end + 1:] if line_end != -1 else "", RETYPE_LINES)
    lines = (hole.text[line_start: hole.offset] + text).split("\n")
    blank = not hole.text[line_start: hole.offset].strip()
    retyped = sum(1 for number, line in enumerate(lines) if (number or blank) and near.retypes(line))
    doubled = doubles_closer(text, hole.text[line_start: hole.offset], line_suffix, "python")
    return replace(base, doubled=doubled, retyped=retyped)


def results(holes: Sequence[Hole], completions: dict[str, Sequence[Completion]],
            settings: dict[str, dict]) -> dict[str, Any]:
    """Scores per variant (by hole kind and overall) and every hole with what each variant wrote."""
    variants = []
    for name, texts in completions.items():
        scores = [judge(hole, completion) for completion, hole in zip(texts, holes)]
        variants.append({
            "variant": name,
            "settings": settings.get(name),
            **{kind: summarize(s for s, h in zip(scores, holes) if h.kind == kind) for kind in KINDS},
            "all": summarize(scores),
        })
    return {
        "holes": len(holes),
        "variants": variants,
        "cases": [
            {"hole": hole.label, "kind": hole.kind, "expected": hole.expected,
             "completions": {name: texts[i][0] for name, texts in completions.items()},
             "covered": {name: texts[i][1] for name, texts in completions.items() if texts[i][1]}}
            for i, hole in enumerate(holes)
        ],
    }
