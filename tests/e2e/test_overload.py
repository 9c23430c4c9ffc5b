"""The in-flight bound with the real engine (the shared embedded session): a request for another
document waits for a slot instead of aborting work someone is waiting for; the line is as long as
the bound and sheds its oldest waiter; a waiting request that is cancelled or outdated by a
keystroke never reaches the engine. Checked with the engine's own counters."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled

from .lsp_helpers import configure, inline, inline_params, insert, open_document, stats, wait_for

FIB = "def fibonacci(n):\n    "
# One slot, and requests long enough (no early stop) to arrange the others around them.
ONE_SLOT = {"scheduling.maxInFlight": 1, "generation.candidates": 1, "scheduling.debounceMs": 0, "generation.multiline": "always", "generation.maxTokens": 120,
            "generation.maxLines": 200, "generation.earlyStop": False, "scheduling.requestTimeoutMs": 300000,
            # An earlier test's speculation waiting for an idle engine would start in the first gap
            # and be preempted by these requests (an abort this test does not make): off, it gives up.
            "generation.speculate": False}
BOUND = 300


@pytest.fixture
async def one_slot(client):
    await configure(client, ONE_SLOT)
    # The session is shared: an earlier test's background stream or speculation would hold the slot.
    await _when(client, lambda s: s["engine_requests_in_flight"] == 0 and s["requests_waiting"] == 0,
                "earlier tests' engine work to end")
    yield client
    await configure(client, {})


async def _when(client, predicate, what):
    return await wait_for(lambda: _check(client, predicate), 60, what, interval=0.05)


async def _check(client, predicate):
    now = await stats(client)
    return now if predicate(now) else None


def _delta(after: dict, before: dict, name: str) -> int:
    return after[name] - before[name]


async def test_a_full_engine_makes_other_documents_wait_and_sheds_the_oldest_waiter(one_slot):
    client = one_slot
    a, b, c = (open_document(client, FIB) for _ in range(3))
    before = await stats(client)
    first = asyncio.ensure_future(inline(client, a, 1, 4, invoked=True))
    await _when(client, lambda s: s["engine_requests_in_flight"] == 1, "the first request in the engine")
    second = asyncio.ensure_future(inline(client, b, 1, 4, invoked=True))
    await _when(client, lambda s: s["requests_waiting"] == 1, "the second request to wait")
    third = asyncio.ensure_future(inline(client, c, 1, 4, invoked=True))

    # The line holds one: the second request is answered empty at once, the first keeps running.
    assert await asyncio.wait_for(second, 30) == []
    now = await stats(client)
    assert not first.done() and now["engine_requests_in_flight"] == 1 and now["requests_waiting"] == 1
    assert _delta(now, before, "requests_shed") == 1

    # The first finishes whole; then the third gets the slot and is served.
    assert (await asyncio.wait_for(first, BOUND))[0].strip()
    assert (await asyncio.wait_for(third, BOUND))[0].strip()
    after = await _when(client, lambda s: s["engine_requests_in_flight"] == 0, "the engine to be idle")
    assert _delta(after, before, "engine_requests_started") == 2, "the shed request never reached the engine"
    assert _delta(after, before, "engine_requests_aborted") == 0, "running work is not aborted for another document"
    assert after["requests_waiting"] == 0


async def test_a_waiting_request_cancelled_or_outdated_never_reaches_the_engine(one_slot):
    client = one_slot
    a, d, e = (open_document(client, FIB) for _ in range(3))
    before = await stats(client)
    running = asyncio.ensure_future(inline(client, a, 1, 4, invoked=True))
    await _when(client, lambda s: s["engine_requests_in_flight"] == 1, "a request in the engine")

    # The client cancels a waiting request: -32800, and the line is empty again.
    waiting = client.protocol.send_request("textDocument/inlineCompletion", inline_params(d, 1, 4, True),
                                           msg_id="wait-then-cancel")
    await _when(client, lambda s: s["requests_waiting"] == 1, "the request to wait")
    client.protocol.notify("$/cancelRequest", types.CancelParams(id="wait-then-cancel"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(asyncio.wrap_future(waiting) if not asyncio.isfuture(waiting) else waiting, 30)
    await _when(client, lambda s: s["requests_waiting"] == 0, "the line to empty")

    # A keystroke in a waiting request's document outdates it: answered empty at once.
    outdated = asyncio.ensure_future(inline(client, e, 1, 4, invoked=True))
    await _when(client, lambda s: s["requests_waiting"] == 1, "the request to wait")
    insert(client, e, 1, 4, "r")
    assert await asyncio.wait_for(outdated, 30) == []
    assert not running.done()

    assert (await asyncio.wait_for(running, BOUND))[0].strip()
    after = await _when(client, lambda s: s["engine_requests_in_flight"] == 0, "the engine to be idle")
    assert _delta(after, before, "engine_requests_started") == 1, "only the running request reached the engine"
    assert _delta(after, before, "engine_requests_aborted") == 0
    assert _delta(after, before, "completions_cancelled") == 1
    assert after["requests_waiting"] == 0
