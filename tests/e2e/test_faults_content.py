"""Documents that are hard to handle, through the real tokenizer and engine (the shared embedded
session): NUL bytes, CRLF and lone CR, surrogate pairs at the cursor, lone surrogates, a 10 MB
document, a 1 MB line. Each gets an answer in bounded time and the next completion is normal.
And the deadline: a completion that runs longer than `requestTimeoutMs` is answered empty and its
engine work is aborted (checked with vLLM's own token counter)."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types

from .lsp_helpers import configure, inline, insert, open_document, stats, wait_for

FIB = "def fibonacci(n):\n    "
BOUND = 120  # seconds; a cold prompt of 1500 tokens takes a few seconds on two cores


def close(client, uri: str) -> None:
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))


@pytest.fixture
async def then_normal(client):
    yield
    await configure(client, {"generation.candidates": 1, "scheduling.debounceMs": 0})
    uri = open_document(client, FIB)
    items = await asyncio.wait_for(inline(client, uri, 1, 4, invoked=True), BOUND)
    close(client, uri)
    assert items and items[0].strip(), "a normal completion after the odd document"


async def complete_in(client, text: str, line: int, character: int) -> list[str]:
    uri = open_document(client, text)
    try:
        return await asyncio.wait_for(inline(client, uri, line, character, invoked=True), BOUND)
    finally:
        close(client, uri)


@pytest.fixture
async def one(client):
    await configure(client, {"generation.candidates": 1, "scheduling.debounceMs": 0, "generation.maxTokens": 16})
    return client


@pytest.mark.parametrize("text, line, character", [
    ("x = '\x00\x00'\ndef fibonacci(n):\n    ", 2, 4),  # NUL bytes
    ("import os\r\n\r\ndef fibonacci(n):\r\n    ", 3, 4),  # CRLF
    ("import os\r\rdef fibonacci(n):\r    ", 3, 4),  # lone CR
    ("s = '😀😀'\ndef f():\n    return '😀", 2, 13),  # cursor inside a surrogate pair (13 of 8+2+2+...)
    ("s = '\ud83d'\ndef fibonacci(n):\n    ", 2, 4),  # a lone surrogate, as JSON can carry it
    ("x = 1\x0c\u2028\x85\ndef fibonacci(n):\n    ", 2, 4),  # characters only Python calls line breaks
])
async def test_odd_characters_get_an_answer(one, then_normal, text, line, character):
    result = await complete_in(one, text, line, character)
    assert isinstance(result, list)


async def test_a_10_mb_document_is_completed_and_edited(one, then_normal):
    body = "".join(f"def function_{i}(x):\n    return x * {i}\n\n" for i in range(220_000))
    assert len(body) > 10_000_000
    uri = open_document(one, body + FIB)
    try:
        last = body.count("\n") + 1
        assert isinstance(await asyncio.wait_for(inline(one, uri, last, 4, invoked=True), BOUND), list)
        insert(one, uri, 1, 4, "return x + 0 and ")  # an edit near the top of 10 MB
        assert isinstance(await asyncio.wait_for(inline(one, uri, 1, 21, invoked=True), BOUND), list)
        payload = await stats(one)
        assert payload["engine_requests_in_flight"] == 0
    finally:
        close(one, uri)


async def test_a_1_mb_line_is_completed(one, then_normal):
    line = "var a=[" + ",".join(str(i) for i in range(170_000)) + "];var b="
    assert len(line) > 1_000_000
    assert isinstance(await complete_in(one, line, 0, len(line)), list)


async def test_a_completion_past_its_deadline_is_answered_empty_and_its_engine_work_aborted(client, then_normal):
    await configure(client, {"generation.multiline": "always", "generation.maxTokens": 400, "generation.maxLines": 200, "generation.earlyStop": False,
                             "scheduling.debounceMs": 0, "scheduling.requestTimeoutMs": 1500, "generation.candidates": 1})
    uri = open_document(client, FIB)
    before = await stats(client)
    assert await asyncio.wait_for(inline(client, uri, 1, 4, invoked=True), BOUND) == []
    after = await wait_for(lambda: _settled(client), 30, "the engine request to end")
    close(client, uri)
    assert after["completions_timed_out"] - before["completions_timed_out"] == 1
    assert after["engine_requests_aborted"] - before["engine_requests_aborted"] == 1
    received = after["tokens_received"] - before["tokens_received"]
    assert received < 400, "cut short"
    # The engine core's own count (vLLM's frontend forgets an aborted request): at most the decode
    # step that was on its way when the deadline struck.
    unread = after["engine_core_tokens_unread"] - before["engine_core_tokens_unread"]
    assert after["engine_core_requests_stopped"] - before["engine_core_requests_stopped"] == 1
    assert unread <= 1, f"the engine went on after the deadline: {unread} tokens nobody read"
    generated = after["engine_core_tokens_generated"] - before["engine_core_tokens_generated"]
    assert generated == received + unread


async def _settled(client):
    now = await stats(client)
    return now if now["engine_requests_in_flight"] == 0 else None
