"""LSP overhead: a request through the server against the same request made on the engine directly.

A probe is a quiet document with the cursor just after an opening parenthesis (a single-line
completion). Per probe and profile, with the profile's settings plus `debounceMs: 0`, one candidate
(greedy, so both sides generate the same tokens) and at most 16 tokens (the fixed costs of a request
weigh more in a short one, so this errs towards a higher ratio; it also keeps a profile without
early stop from spending minutes here):
1. warm-up: the server computes the prompt once (the prefix cache holds it, as it does for a
   keystroke in a file being typed in) and generates one token; the bench rebuilds the same prompt
   with the server's prompt builder and warms the direct engine with it the same way;
2. measured, `repeats` times, as pairs: an explicit inline request through the server, timed from
   sending it to its answer (the server's counters give the tokens the engine generated for it and
   the prompt's length), and a direct call with that prompt generating as many tokens with the same
   stop strings, timed from the call to its last token. Before each timed call the bench waits
   `QUIET_S`: vLLM's workers busy-poll for a second after their last step, and with the in-process
   engine the server's engine and the direct one share the cores, so whichever side ran second was
   measured up to 2x slower (seen on 2 cores). The pair's order alternates as well.
The overhead ratio is the median of the pairs' ratios: the two halves of a pair run seconds apart,
so load from elsewhere on the machine (which comes and goes) weighs on both alike. The medians of
each side are reported too.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lsprotocol import types

from engine.base import Sampling

from ..client import HeadlessClient
from ...completion.context import display_path
from ...settings import parse_settings
from .direct import DirectEngine
from .figures import percentile, stats_delta
from .profiles import Profile
from .replay import completion_texts, inline_params, settle
from .schedule import code_lines, line_offsets

PROBE_SETTINGS = {"scheduling.debounceMs": 0, "scheduling.debounce": "fixed", "generation.candidates": 1,
                  "generation.maxLineTokens": 16}
_WARM = {"generation.maxTokens": 1, "generation.maxLineTokens": 1}
#: Longer than vLLM's busy-poll after a step (1 s), so the other engine is idle when one is timed.
QUIET_S = 1.2
_MIN_CONTEXT_LINES = 20


@dataclass(frozen=True)
class Probe:
    name: str
    line: int
    text: str
    offset: int


def choose_probes(files: Sequence[tuple[str, str]], count: int, seed: int) -> list[Probe]:
    """`count` cursors just after the first `(` of a line of code that continues after it."""
    rng = random.Random(f"vllm-ls-bench-probes/{seed}")
    pool: list[Probe] = []
    for name, text in files:
        lines = text.split("\n")
        starts = line_offsets(text)
        for i in code_lines(lines):
            column = lines[i].find("(")
            if i >= _MIN_CONTEXT_LINES and column > 0 and len(lines[i][column + 1:].strip(") :")) >= 3:
                pool.append(Probe(name, i, text, starts[i] + column + 1))
    return rng.sample(pool, min(count, len(pool)))


async def measure(
    client: HeadlessClient, direct: DirectEngine, profile: Profile, base: dict[str, Any],
    probes: Sequence[Probe], timeout: float, repeats: int = 3,
) -> dict[str, Any]:
    settings_raw = profile.with_overrides(PROBE_SETTINGS)
    settings, _ = parse_settings(settings_raw, base)
    root = Path.cwd().as_uri()
    samples: list[dict[str, Any]] = []
    for number, probe in enumerate(probes):
        uri = f"file:///vllm-ls-bench/probe/{profile.name}/{number}/{probe.name}"
        client.open(uri, probe.text)
        try:
            await client.configure({**settings_raw, **_WARM})
            await _ask(client, uri, probe, timeout)
            await client.configure(settings_raw)
            prompt = await direct.prompt(settings, probe.text, probe.offset, display_path(uri, root))
            await direct.run(prompt.text, Sampling(max_tokens=1))
            sampling = Sampling(temperature=settings.generation.temperature,
                                stop=prompt.stop if settings.generation.early_stop else ())
            tokens = 0
            for repeat in range(repeats):
                if repeat % 2 and tokens:
                    # Direct first, as many tokens as the server's request before (greedy: the same ones).
                    await asyncio.sleep(QUIET_S)
                    timed = await direct.run(prompt.text, replace(sampling, max_tokens=tokens))
                    await asyncio.sleep(QUIET_S)
                    server_ms, answer, delta = await _ask_counted(client, uri, probe, timeout)
                    tokens = max(1, delta.get("engine_tokens_generated", 0))
                else:
                    await asyncio.sleep(QUIET_S)
                    server_ms, answer, delta = await _ask_counted(client, uri, probe, timeout)
                    tokens = max(1, delta.get("engine_tokens_generated", 0))
                    await asyncio.sleep(QUIET_S)
                    timed = await direct.run(prompt.text, replace(sampling, max_tokens=tokens))
                samples.append({
                    "probe": f"{probe.name}:{probe.line + 1}",
                    "server_ms": round(server_ms, 1),
                    "direct_ms": round(timed.ms, 1),
                    "ratio": round(server_ms / timed.ms, 3) if timed.ms else None,
                    "tokens": tokens,
                    "direct_tokens": timed.tokens,
                    "prompt_tokens": delta.get("prompt_tokens"),
                    "direct_prompt_tokens": timed.prompt_tokens,
                    "same_prompt": delta.get("prompt_tokens") == timed.prompt_tokens,
                    "completion": answer,
                })
        finally:
            client.close(uri)
    await client.configure(profile.settings)
    return summarize(samples)


def summarize(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The overhead ratio (the median of the pairs' ratios) and each side's median latency."""
    server = percentile([s["server_ms"] for s in samples], 50)
    direct = percentile([s["direct_ms"] for s in samples], 50)
    ratio = percentile([s["server_ms"] / s["direct_ms"] for s in samples if s["direct_ms"]], 50)
    return {
        "overhead_ratio": None if ratio is None else round(ratio, 3),
        "server_ms_p50": None if server is None else round(server, 1),
        "direct_ms_p50": None if direct is None else round(direct, 1),
        "probes": list(samples),
    }


async def _ask_counted(
    client: HeadlessClient, uri: str, probe: Probe, timeout: float,
) -> tuple[float, str, dict[str, int]]:
    """`_ask` with the server's counters around it (the engine idle before and after)."""
    before = await settle(client)
    server_ms, answer = await _ask(client, uri, probe, timeout)
    after = await settle(client)
    return server_ms, answer, stats_delta(before, after)


async def _ask(client: HeadlessClient, uri: str, probe: Probe, timeout: float) -> tuple[float, str]:
    started = time.perf_counter()
    _, future = client.send(types.TEXT_DOCUMENT_INLINE_COMPLETION,
                            inline_params(uri, probe.text, probe.offset, invoked=True))
    result = await asyncio.wait_for(future, timeout)
    elapsed = (time.perf_counter() - started) * 1000
    texts = completion_texts(result)
    return elapsed, texts[0] if texts else ""
