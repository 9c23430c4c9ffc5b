"""Prompts that are good and cheap, over real LSP against the real embedded engine: the prefix cache
serves consecutive keystrokes, typing along a suggestion needs no engine, a completed line stops the
engine, explicit requests return several candidates (and cancel like any other)."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled

from .lsp_helpers import configure, inline, inline_params, insert, open_document, stats, wait_for

FAST_LINES = {"scheduling.debounceMs": 0, "generation.multiline": "never", "generation.maxLineTokens": 4, "scheduling.cache": False}


def module_of_about_200_lines() -> str:
    """Plausible Python: a few helpers per shape, so the model sees real code, about 200 lines."""
    parts = ['"""Inventory helpers."""\n\nimport math\nfrom dataclasses import dataclass\n\n']
    for i, noun in enumerate(["apple", "bolt", "cable", "drill", "engine", "filter", "gear", "hinge",
                              "inlet", "joint", "knob", "lever", "motor", "nozzle", "outlet", "pulley",
                              "quill", "rivet", "spring", "tube"]):
        parts.append(
            f"\n@dataclass\nclass {noun.title()}:\n    name: str\n    weight: float = {i + 1}.5\n\n\n"
            f"def total_{noun}_weight(items: list[{noun.title()}]) -> float:\n"
            f"    return sum(item.weight for item in items) * {i + 2}\n\n"
        )
    parts.append("\ndef summary(items):\n    heaviest = max(items, key=lambda item: item.weight)\n    total = ")
    return "".join(parts)


def end_of(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines) - 1, len(lines[-1])


def delta(after: dict, before: dict, key: str) -> int:
    return after[key] - before[key]


async def settled(client) -> dict:
    async def idle():
        now = await stats(client)
        return now if now["engine_requests_in_flight"] == 0 else None

    return await wait_for(idle, 30, "in-flight engine requests to drain")


async def test_consecutive_keystrokes_are_served_from_the_prefix_cache(client):
    await configure(client, FAST_LINES)
    text = module_of_about_200_lines()
    assert 180 <= text.count("\n") <= 230
    uri = open_document(client, text)
    line, col = end_of(text)
    await inline(client, uri, line, col)  # the first request fills the prefix cache
    before = await stats(client)
    for ch in "sum(":
        insert(client, uri, line, col, ch)
        col += 1
        await inline(client, uri, line, col)
    after = await settled(client)
    requests = delta(after, before, "engine_requests_started")
    prompt_tokens = delta(after, before, "prompt_tokens")
    cached = delta(after, before, "prompt_tokens_cached")
    assert requests == 4, "every keystroke reached the engine (typed-ahead cache off)"
    assert prompt_tokens / requests > 1000, "a ~200-line file makes a long prompt"
    print(f"\nprefix cache: {cached}/{prompt_tokens} prompt tokens over {requests} keystrokes = {cached / prompt_tokens:.3f}")
    assert cached / prompt_tokens >= 0.9, f"prefix cache served {cached} of {prompt_tokens} prompt tokens"


async def test_typing_the_suggestion_is_answered_from_the_typed_ahead_cache(client):
    # With the defaults otherwise: typing the suggestion by hand must cost no engine request, the
    # speculation after the first answer included (it is made once and survives the typing).
    await configure(client, {"scheduling.debounceMs": 0, "generation.multiline": "never"})
    text = "def area_of_circle(radius):\n    return "
    uri = open_document(client, text)
    line, col = end_of(text)
    first = await inline(client, uri, line, col)
    assert len(first) == 1 and len(first[0].strip()) >= 3, first
    suggestion = first[0]
    before = await settled(client)
    for i, ch in enumerate(suggestion[:3]):
        insert(client, uri, line, col + i, ch)
        assert await inline(client, uri, line, col + i + 1) == [suggestion[i + 1:]]
    after = await stats(client)
    assert delta(after, before, "completions_from_cache") == 3
    assert delta(after, before, "engine_requests_started") == 0
    # Deleting back into the suggestion still hits.
    client._versions[uri] += 1
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=client._versions[uri]),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=line, character=col + 2),
                              end=types.Position(line=line, character=col + 3)),
            text="")],
    ))
    assert await inline(client, uri, line, col + 2) == [suggestion[2:]]
    final = await stats(client)
    assert delta(final, before, "completions_from_cache") == 4
    assert delta(final, before, "engine_requests_started") == 0


async def test_single_line_request_stops_the_engine_at_the_line_break(client):
    text = "def add(a, b):\n    return a + b\n\n\ndef multiply(a, b):\n    return "
    line, col = end_of(text)
    single = {"scheduling.debounceMs": 0, "generation.multiline": "never", "generation.maxLineTokens": 24, "scheduling.cache": False}

    # Without early stop the engine runs on past the line break to its limit: the model's output
    # for this line does not end at the line.
    await configure(client, {**single, "generation.earlyStop": False})
    before = await settled(client)
    naive = await inline(client, open_document(client, text), line, col)
    after = await settled(client)
    naive_generated = delta(after, before, "engine_core_tokens_generated")
    assert len(naive) == 1 and "\n" not in naive[0]
    assert naive_generated > delta(after, before, "tokens_shown") + 2

    await configure(client, single)
    before = await settled(client)
    early = await inline(client, open_document(client, text), line, col)
    after = await settled(client)
    generated = delta(after, before, "engine_core_tokens_generated")
    shown = delta(after, before, "tokens_shown")
    print(f"\nsingle line {early}: naive generated {naive_generated}, early stop generated {generated}, "
          f"shown {shown}")
    assert early == naive, "stopping early changes the cost, not the answer"
    # The tokens of the line, the token that holds the line break, and at most one step more.
    assert generated <= shown + 1 + 1, f"generated {generated} tokens for a {shown}-token line"
    assert generated < naive_generated


async def test_block_ends_by_the_post_processor_and_the_engine_stops(client):
    text = "def add(a, b):\n    return a + b\n\n\ndef multiply(a, b):\n    "
    line, col = end_of(text)
    block = {"scheduling.debounceMs": 0, "generation.multiline": "always", "generation.maxTokens": 48, "generation.maxLines": 20, "scheduling.cache": False}

    await configure(client, {**block, "generation.earlyStop": False})
    before = await settled(client)
    naive = await inline(client, open_document(client, text), line, col)
    after = await settled(client)
    naive_generated = delta(after, before, "engine_core_tokens_generated")

    await configure(client, block)
    before = await settled(client)
    early = await inline(client, open_document(client, text), line, col)
    after = await settled(client)
    generated = delta(after, before, "engine_core_tokens_generated")
    received = delta(after, before, "tokens_received")
    print(f"\nblock {early}: naive generated {naive_generated}, early stop generated {generated}, received {received}")
    assert early == naive and early, "the block the post-processor cut is the same either way"
    # No engine stop string can see a dedent: only the streaming post-processor ended this request.
    assert received < naive_generated, "the stream was left before the engine's token limit"
    # The engine core's own count: within a step of the post-processor's decision.
    assert delta(after, before, "engine_core_requests_stopped") == 1
    assert delta(after, before, "engine_core_tokens_unread") <= 1
    assert generated - received == delta(after, before, "engine_core_tokens_unread")


async def test_invoked_request_returns_distinct_candidates(client):
    await configure(client, {"scheduling.debounceMs": 0, "generation.multiline": "never", "generation.candidates": 3, "generation.maxLineTokens": 12})
    text = "import os\n\n\ndef list_python_files(folder):\n    return "
    line, col = end_of(text)
    before = await settled(client)
    items = await inline(client, open_document(client, text), line, col, invoked=True)
    after = await settled(client)
    print(f"\ncandidates: {items}")
    assert 1 <= len(items) <= 3 and len(set(items)) == len(items) and all(i.strip() for i in items)
    assert delta(after, before, "engine_requests_started") == 1, "one engine request, n candidates"
    assert delta(after, before, "candidates_returned") == len(items)


async def test_cancelling_an_invoked_request_aborts_all_its_candidates(client):
    await configure(client, {"scheduling.debounceMs": 0, "generation.multiline": "always", "generation.maxTokens": 400, "generation.maxLines": 200,
                             "generation.earlyStop": False, "generation.candidates": 3})
    uri = open_document(client, "def fibonacci(n):\n    ")
    before = await settled(client)
    future = client.protocol.send_request(
        "textDocument/inlineCompletion", inline_params(uri, 1, 4, invoked=True), msg_id="cancel-candidates")

    async def busy():
        now = await stats(client)
        return now["engine_requests_in_flight"] >= 1 and now["tokens_received"] > before["tokens_received"] + 6

    await wait_for(busy, 60, "the engine to generate candidates")
    client.protocol.notify("$/cancelRequest", types.CancelParams(id="cancel-candidates"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(asyncio.wrap_future(future) if not asyncio.isfuture(future) else future, 30)
    after = await settled(client)
    assert delta(after, before, "engine_requests_aborted") == 1
    generated = delta(after, before, "engine_core_tokens_generated")
    received = delta(after, before, "tokens_received")
    unread = delta(after, before, "engine_core_tokens_unread")
    print(f"\ncancelled candidates: the engine core generated {generated}, received {received}, unread {unread}")
    assert 0 < received < 3 * 400
    # From the engine core's own count, candidates included: at most one step per candidate.
    assert delta(after, before, "engine_core_requests_stopped") == 1
    assert unread <= 3, f"after the cancel at most one step per candidate: {unread} tokens nobody read"
    assert generated == received + unread


async def test_adaptive_debounce_learns_the_interval_from_keystrokes(client):
    text = "def add(a, b):\n    return "
    uri = open_document(client, text)
    line, col = end_of(text)
    await configure(client, {**FAST_LINES, "scheduling.debounce": "adaptive"})
    await inline(client, uri, line, col)  # a first engine latency to learn from
    # A fixed interval this long would show in the counter; the learned one is at most 750 ms.
    await configure(client, {**FAST_LINES, "scheduling.debounce": "adaptive", "scheduling.debounceMs": 5000})
    tasks = []
    for i, ch in enumerate("a + b * c - d"):
        insert(client, uri, line, col + i, ch)
        tasks.append(asyncio.ensure_future(inline(client, uri, line, col + i + 1)))
        await asyncio.sleep(0.03)  # the typing rhythm the server learns from
    results = await asyncio.gather(*tasks)
    after = await settled(client)
    print(f"\nadaptive debounce: last interval {after['debounce_ms']} ms")
    assert after["debounce_ms"] <= 750, "the learned interval, not the fixed 5000 ms"
    assert all(r == [] for r in results[:-1]), "the burst's superseded requests are answered empty"
