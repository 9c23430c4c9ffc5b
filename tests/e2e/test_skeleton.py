"""The walking skeleton over real LSP stdio against the real embedded engine."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled

from .lsp_helpers import (
    cancel_and_type,
    cancelled,
    configure,
    inline,
    inline_params,
    insert,
    open_document,
    stats,
    wait_for,
)

FIB = "def fibonacci(n):\n    "
# Cancelled mid-stream: no early answer (it would come before the cancel) and no speculation after
# an answer (these tests count engine requests). Stream reuse stays on where a test does not say.
LONG_RUNNING = {"generation.multiline": "always", "generation.maxTokens": 400, "generation.maxLines": 200,
                "generation.earlyStop": False, "scheduling.debounceMs": 0, "generation.answerEarly": False,
                "generation.speculate": False}


async def test_advertises_inline_completion(client):
    capabilities = client.init_result.capabilities
    assert capabilities.inline_completion_provider is not None
    assert capabilities.completion_provider is not None


async def test_inline_completion_continues_python(client):
    # One greedy candidate: an invoked request would otherwise sample several (test_prompts.py).
    await configure(client, {"generation.candidates": 1})
    uri = open_document(client, FIB)
    items = await inline(client, uri, 1, 4, invoked=True)
    assert len(items) == 1
    text = items[0]
    assert text.strip(), "expected a non-empty completion"
    # It continues the function body: code, not prose, and no repeat of the header.
    assert "def fibonacci" not in text.splitlines()[0]
    assert any(word in text for word in ("return", "if", "for", "while", "=")), text


async def test_completion_items_carry_the_same_suggestion(client):
    uri = open_document(client, FIB)
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=1, character=4),
    ))
    assert result.is_incomplete is True
    assert len(result.items) == 1
    item = result.items[0]
    assert item.text_edit.new_text.strip()
    assert item.text_edit.range.end == types.Position(line=1, character=4)


async def test_cancel_request_aborts_the_engine_request(client):
    await configure(client, LONG_RUNNING)
    uri = open_document(client, FIB)
    before = await wait_for(lambda: _settled(client), 60, "earlier tests' engine work to end")
    future = client.protocol.send_request("textDocument/inlineCompletion", inline_params(uri, 1, 4), msg_id="cancel-me")
    # Cancel mid-stream: once the engine has produced some tokens for this request.
    await wait_for(lambda: _engine_busy(client, before), 60, "the engine to start generating")
    client.protocol.notify("$/cancelRequest", types.CancelParams(id="cancel-me"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(asyncio.wrap_future(future) if not asyncio.isfuture(future) else future, 30)
    after = await wait_for(lambda: _settled(client), 30, "in-flight requests to drain")
    assert after["engine_requests_aborted"] == before["engine_requests_aborted"] + 1
    assert after["engine_requests_in_flight"] == 0
    assert after["completions_cancelled"] == before["completions_cancelled"] + 1
    received = after["tokens_received"] - before["tokens_received"]
    assert 0 < received < 400, "the request must have been cut short mid-stream"
    _assert_engine_core_stopped(before, after, received, stops=1)


async def test_a_cancel_and_the_next_keystroke_together_stop_the_engine_core_at_once(client):
    # What VS Code sends on every keystroke: $/cancelRequest for the previous request, the change,
    # the next request. The old request's engine work is cancelled twice (the client's cancel and
    # cancel-previous), a loop turn apart: the abort must still reach the engine core.
    # Without stream reuse: a keystroke that agrees with the old request's text would be served from
    # its stream (tests/e2e/test_streams.py); here the subject is the abort when it is not.
    await configure(client, {**LONG_RUNNING, "generation.reuseStream": False})
    uri = open_document(client, FIB)
    before = await wait_for(lambda: _settled(client), 60, "earlier tests' engine work to end")
    first = client.protocol.send_request("textDocument/inlineCompletion", inline_params(uri, 1, 4), msg_id="old")
    await wait_for(lambda: _engine_busy(client, before), 60, "the engine to start generating")
    await configure(client, {**LONG_RUNNING, "generation.reuseStream": False, "generation.maxTokens": 4})
    second = cancel_and_type(client, uri, "old", 1, 4, "r")
    await cancelled(first)
    await asyncio.wait_for(second, 60)
    after = await wait_for(lambda: _settled(client), 30, "in-flight requests to drain")
    received = after["tokens_received"] - before["tokens_received"]
    _assert_engine_core_stopped(before, after, received, stops=1)


async def test_burst_inside_debounce_reaches_engine_once(client):
    # No speculation after the last answer: it would be an engine request of its own.
    await configure(client, {"scheduling.debounceMs": 400, "generation.speculate": False})
    uri = open_document(client, "def add(a, b):\n    return ")
    before = await wait_for(lambda: _settled(client), 60, "earlier tests' engine work to end")
    tasks = []
    for i, ch in enumerate("a + b + 1 "):
        insert(client, uri, 1, 11 + i, ch)
        tasks.append(asyncio.ensure_future(inline(client, uri, 1, 12 + i)))
        await asyncio.sleep(0.02)
    results = await asyncio.gather(*tasks)
    after = await stats(client)
    assert after["engine_requests_started"] - before["engine_requests_started"] == 1
    assert after["requests_debounced"] - before["requests_debounced"] == 9
    assert all(r == [] for r in results[:-1]), "superseded requests are answered empty"


async def test_newer_request_aborts_the_older_ones_engine_work(client):
    # A newer request at the same place would be served from the older one's stream (reuse,
    # tests/e2e/test_streams.py): without reuse, cancel-previous is the subject.
    await configure(client, {**LONG_RUNNING, "generation.reuseStream": False})
    uri = open_document(client, FIB)
    before = await wait_for(lambda: _settled(client), 60, "earlier tests' engine work to end")
    first = asyncio.ensure_future(inline(client, uri, 1, 4))
    await wait_for(lambda: _engine_busy(client, before), 60, "the first request to reach the engine")
    await configure(client, {**LONG_RUNNING, "generation.reuseStream": False, "generation.maxTokens": 8})
    second = asyncio.ensure_future(inline(client, uri, 1, 4))
    assert await asyncio.wait_for(first, 30) == [], "the superseded request is answered, empty"
    await asyncio.wait_for(second, 60)
    after = await wait_for(lambda: _settled(client), 30, "in-flight requests to drain")
    assert after["engine_requests_started"] - before["engine_requests_started"] == 2
    assert after["engine_requests_aborted"] - before["engine_requests_aborted"] >= 1
    assert after["completions_superseded"] - before["completions_superseded"] == 1
    assert after["engine_requests_in_flight"] == 0


async def test_stats_contract(client):
    payload = await stats(client)
    for key in ("engine_requests_started", "engine_requests_finished", "engine_requests_aborted",
                "engine_requests_in_flight", "engine_tokens_generated", "tokens_received", "tokens_shown",
                "prompt_tokens", "prompt_tokens_cached", "completions_returned", "completions_from_cache",
                "requests_debounced"):
        assert isinstance(payload[key], int), key
    assert payload["engine_tokens_generated"] >= payload["tokens_received"] >= payload["tokens_shown"]
    # In-process, the engine core's own accounting too (engine/core_tally.py).
    for key in ("engine_core_tokens_generated", "engine_core_tokens_unread", "engine_core_tokens_after_stop",
                "engine_core_requests_stopped", "engine_core_requests_running"):
        assert isinstance(payload[key], int), key
    assert payload["engine_core_tokens_generated"] >= payload["tokens_received"]


#: Tokens the engine core may make for a stopped request that nobody reads, per candidate: the decode
#: step whose output was on its way when the stop came (measured: 0 on this machine). The core acts
#: on an abort before it turns the step in flight into outputs.
AFTER_STOP_BOUND = 1


def _assert_engine_core_stopped(before: dict, after: dict, received: int, stops: int, candidates: int = 1) -> None:
    """From the engine core's own accounting: the stopped requests cost at most the bound each."""
    def grew(key: str) -> int:
        return after[key] - before[key]

    print(f"engine core: generated {grew('engine_core_tokens_generated')}, received {received}, "
          f"unread {grew('engine_core_tokens_unread')}, after the stop {grew('engine_core_tokens_after_stop')}")
    assert grew("engine_core_requests_stopped") == stops
    assert grew("engine_core_tokens_unread") <= AFTER_STOP_BOUND * candidates * stops
    assert grew("engine_core_tokens_after_stop") <= grew("engine_core_tokens_unread")
    # Nothing the core made is unaccounted for: read, or unread by a stopped request.
    assert grew("engine_core_tokens_generated") == received + grew("engine_core_tokens_unread")


async def _engine_busy(client, before):
    now = await stats(client)
    return now["engine_requests_in_flight"] >= 1 and now["tokens_received"] > before["tokens_received"] + 5


async def _settled(client):
    now = await stats(client)
    return now if now["engine_requests_in_flight"] == 0 else None
