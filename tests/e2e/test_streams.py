"""Answer early, keep going in the background, reuse the stream being typed through: over real LSP
against the real embedded engine. Every path that starts engine work is stopped here (a
contradicting keystroke, didClose, $/cancelRequest, shutdown) and checked from the engine's own
accounting: nothing left running (`engine_requests_in_flight` and the engine core's
`engine_core_requests_running` back to 0), each engine request ended as aborted or finished as it
should, and at most a decode step generated that the server never read, counted by the engine core
itself (`engine_core_tokens_unread`: vLLM's frontend forgets an aborted request)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psutil
import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled

from .lsp_helpers import configure, inline, inline_params, insert, open_document, spawned, stats, wait_for, wait_ready

FIB = "def fibonacci(n):\n    "
#: A block (its first line answers early), short enough to finish within a test.
#: The deadline is long: on a 2-core machine shared with other engines the first request of a cold
#: engine has taken more than the default 30 s.
#: No speculation: it would start engine work of its own after each answer (tests/e2e/test_speculation.py).
BLOCK = {"scheduling.debounceMs": 0, "scheduling.requestTimeoutMs": 180000, "generation.multiline": "always",
         "generation.maxTokens": 64, "generation.maxLines": 12, "generation.speculate": False}
#: A keystroke no model writes there: it contradicts whatever the stream generated.
FORM_FEED = "\x0c"
#: A background that runs long enough to be caught running: no early stop, a high token limit.
LONG = {**BLOCK, "generation.maxTokens": 240, "generation.maxLines": 200, "generation.earlyStop": False}


def delta(after: dict, before: dict, key: str) -> int:
    return after[key] - before[key]


async def settled(client, timeout: float = 120) -> dict:
    """Stats once no engine stream runs and the engine has nothing in flight."""
    async def idle():
        now = await stats(client)
        idle = now["engine_requests_in_flight"] == 0 and now["streams_running"] == 0
        return now if idle and now["engine_core_requests_running"] == 0 else None

    return await wait_for(idle, timeout, "engine streams to end")


async def in_the_background(client, before: dict, tokens: int = 4) -> dict:
    """Stats once a stream runs with nobody waiting for it and has read `tokens` more tokens there."""
    async def running():
        now = await stats(client)
        busy = now["streams_running"] >= 1 and now["engine_requests_in_flight"] >= 1
        return now if busy and now["background_tokens"] >= before["background_tokens"] + tokens else None

    return await wait_for(running, 120, "a stream to run in the background")


def assert_stopped_within_a_step(after: dict, before: dict, stopped: int = 1) -> None:
    """The engine core stopped `stopped` requests, each within a decode step of the server's stop."""
    generated = delta(after, before, "engine_core_tokens_generated")
    received = delta(after, before, "tokens_received")
    unread = delta(after, before, "engine_core_tokens_unread")
    assert delta(after, before, "engine_core_requests_stopped") == stopped
    assert unread <= stopped, f"the engine core generated {generated} tokens, the server read {received}"
    assert generated == received + unread


def close(client, uri: str) -> None:
    client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))


async def test_the_first_line_is_answered_early_and_the_rest_of_the_block_comes_from_the_cache(client):
    await configure(client, BLOCK)
    uri = open_document(client, FIB)
    before = await settled(client)
    first = await inline(client, uri, 1, 4)
    assert len(first) == 1 and first[0].strip() and "\n" not in first[0], first
    after = await settled(client)
    assert delta(after, before, "completions_answered_early") == 1
    assert delta(after, before, "background_streams_started") == 1
    assert delta(after, before, "engine_requests_started") == 1
    ended = delta(after, before, "background_streams_finished") + delta(after, before, "background_streams_aborted")
    assert ended == 1 and delta(after, before, "engine_requests_aborted") + delta(after, before, "engine_requests_finished") == 1
    assert delta(after, before, "background_tokens") > 0
    # The block ends by the post-processor (an abort) or at the token limit (the engine's own end).
    assert_stopped_within_a_step(after, before, stopped=delta(after, before, "engine_requests_aborted"))

    # The user accepts the first line: the next lines were generated meanwhile, no engine call.
    insert(client, uri, 1, 4, first[0])
    rest = await inline(client, uri, 1, 4 + len(first[0]))
    final = await settled(client)
    print(f"\nanswered {first[0]!r}, then from the cache {rest!r}")
    assert len(rest) == 1 and rest[0].startswith("\n") and rest[0].strip(), rest
    assert delta(final, after, "engine_requests_started") == 0
    assert delta(final, after, "completions_from_cache") == 1
    assert delta(final, after, "tokens_shown") > 0, "the background's tokens count as shown once they are"


async def test_a_contradicting_keystroke_stops_the_background_stream(client):
    await configure(client, LONG)
    uri = open_document(client, FIB)
    before = await settled(client)
    first = await inline(client, uri, 1, 4)
    assert len(first) == 1
    await in_the_background(client, before)
    insert(client, uri, 1, 4, FORM_FEED)
    after = await settled(client)
    assert delta(after, before, "background_streams_aborted_contradicted") == 1
    assert delta(after, before, "engine_requests_aborted") == 1
    assert delta(after, before, "engine_requests_finished") == 0
    assert delta(after, before, "engine_requests_failed") == 0
    assert_stopped_within_a_step(after, before)


async def test_closing_the_document_stops_its_background_stream(client):
    await configure(client, LONG)
    uri = open_document(client, FIB)
    before = await settled(client)
    assert len(await inline(client, uri, 1, 4)) == 1
    await in_the_background(client, before)
    close(client, uri)
    after = await settled(client)
    assert delta(after, before, "background_streams_aborted_closed") == 1
    assert delta(after, before, "engine_requests_aborted") == 1
    assert delta(after, before, "engine_requests_finished") == 0
    assert_stopped_within_a_step(after, before)


async def test_a_keystroke_that_agrees_is_served_from_the_stream_until_one_contradicts_it(client):
    # The typed-ahead cache is off: only the running stream can serve the second request.
    await configure(client, {**LONG, "scheduling.cache": False})
    uri = open_document(client, FIB)
    before = await settled(client)
    first = await inline(client, uri, 1, 4)
    assert len(first) == 1 and len(first[0]) >= 2, first
    await in_the_background(client, before)
    insert(client, uri, 1, 4, first[0][0])
    served = await inline(client, uri, 1, 5)
    assert len(served) == 1 and served[0].startswith(first[0][1:]), served
    during = await stats(client)
    assert delta(during, before, "engine_requests_started") == 1, "no second engine request"
    assert delta(during, before, "completions_from_stream") == 1
    assert during["streams_running"] == 1, "the stream goes on"

    insert(client, uri, 1, 5, FORM_FEED)
    after = await settled(client)
    assert delta(after, before, "background_streams_aborted_contradicted") == 1
    assert delta(after, before, "engine_requests_started") == 1
    assert delta(after, before, "engine_requests_aborted") == 1
    assert_stopped_within_a_step(after, before)


async def waiting_request(client, uri: str, msg_id: str, before: dict):
    """An automatic request that waits on its stream (the deadline keeps it from answering early)."""
    future = client.protocol.send_request("textDocument/inlineCompletion", inline_params(uri, 1, 4), msg_id=msg_id)

    async def generating():
        now = await stats(client)
        return now["streams_running"] >= 1 and now["tokens_received"] >= before["tokens_received"] + 4

    await wait_for(generating, 120, "the stream to generate")
    return future


async def cancelled(client, future, msg_id: str) -> None:
    client.protocol.notify("$/cancelRequest", types.CancelParams(id=msg_id))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(asyncio.wrap_future(future) if not asyncio.isfuture(future) else future, 60)


async def test_a_cancelled_request_leaves_its_stream_to_the_next_keystroke_which_contradicts_it(client):
    # VS Code cancels its outstanding request before every keystroke; the keystroke decides.
    await configure(client, {**LONG, "generation.answerDeadlineMs": 60000})
    uri = open_document(client, FIB)
    before = await settled(client)
    future = await waiting_request(client, uri, "cancel-then-type", before)
    await cancelled(client, future, "cancel-then-type")
    assert (await stats(client))["streams_running"] == 1, "nobody waits for it, but the next keystroke may"
    insert(client, uri, 1, 4, FORM_FEED)
    after = await settled(client)
    assert delta(after, before, "completions_cancelled") == 1
    assert delta(after, before, "background_streams_aborted_contradicted") == 1
    assert delta(after, before, "engine_requests_aborted") == 1
    assert delta(after, before, "engine_requests_finished") == 0
    assert_stopped_within_a_step(after, before)


async def test_a_cancelled_request_leaves_its_stream_to_the_next_request_until_the_document_closes(client):
    await configure(client, {**LONG, "generation.answerDeadlineMs": 60000, "scheduling.cache": False})
    uri = open_document(client, FIB)
    before = await settled(client)
    future = await waiting_request(client, uri, "cancel-then-ask", before)
    await cancelled(client, future, "cancel-then-ask")
    # The editor asks again at the same place (nothing typed): it waits on the same stream.
    again = client.protocol.send_request("textDocument/inlineCompletion", inline_params(uri, 1, 4), msg_id="asked-again")

    async def attached():
        now = await stats(client)
        return now["streams_running"] == 1 and now["handlers_pending"] >= 1

    await wait_for(attached, 60, "the second request to wait")
    close(client, uri)
    answer = await asyncio.wait_for(asyncio.wrap_future(again) if not asyncio.isfuture(again) else again, 60)
    assert not answer.items, "its document closed under it: answered empty"
    after = await settled(client)
    assert delta(after, before, "engine_requests_started") == 1, "the second request asked no engine"
    assert delta(after, before, "background_streams_aborted_closed") == 1
    assert delta(after, before, "engine_requests_aborted") == 1
    assert_stopped_within_a_step(after, before)


async def test_loading_then_ready_then_shutdown_stops_every_stream_before_the_engine(tmp_path: Path):
    """A server's whole life (one engine start): answered empty at once while the engine loads,
    loading reported through $/progress, ready; then shutdown with a stream running in the
    background stops that stream, then the engine and every process it started."""
    async with spawned(tmp_path, "streams", [], LONG) as client:
        # initialize has returned although the model takes tens of seconds to load.
        uri = open_document(client, FIB)
        assert await inline(client, uri, 1, 4) == [], "a loading engine answers empty at once"
        assert any(s["state"] == "loading" for s in client.statuses)
        await wait_ready(client)
        kinds = [type(v).__name__ for reports in client.progress_reports.values() for v in reports]
        assert "WorkDoneProgressBegin" in kinds and "WorkDoneProgressEnd" in kinds
        before = await stats(client)
        assert len(await inline(client, uri, 1, 4)) == 1
        await in_the_background(client, before)
        server = psutil.Process(client._server.pid)
        children = server.children(recursive=True)
        assert children, "the in-process engine runs vLLM's engine-core process"
        await asyncio.wait_for(client.shutdown_session(), 120)
        await asyncio.wait_for(client._server.wait(), 60)
        _, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, f"processes left after shutdown: {alive}"
    log = (tmp_path / "streams.log").read_text()
    # Logged by the shutdown handler from the engine's own count, after closing the streams.
    assert "shutdown: 1 engine streams aborted; engine requests in flight: 0" in log, log[-2000:]
