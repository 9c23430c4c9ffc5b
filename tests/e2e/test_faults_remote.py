"""Remote engine faults over real LSP: the server behind `engineUrl` refuses, hangs, fails, rejects,
sends broken or endless streams. Each time the editor gets an empty answer in bounded time, at most
one popup per episode, the details in its log, and the engine work is abandoned; then a normal
completion succeeds.

One language server (remote engine, no model inside: it starts in a second) talks to one
misbehaving peer (`peer.py`, a real HTTP server on 127.0.0.1) for the whole module; tests switch
the peer's behaviour. The last test searches every log for the API key the server used.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from pathlib import Path

import pytest
from lsprotocol import types

from .lsp_helpers import configure, inline, open_document, spawned, stats, wait_for

API_KEY = "vllm-ls-fault-" + secrets.token_hex(16)  # fresh per run: a hit in a log can only be a leak
FIB = "def fibonacci(n):\n    "
# A short deadline keeps the hanging cases quick; one candidate even when invoked.
SETTINGS = {"scheduling.debounceMs": 0, "scheduling.requestTimeoutMs": 2000, "generation.candidates": 1}
BOUND = 20  # seconds: generous against a busy machine, far below "hangs"


@pytest.fixture(scope="module")
def fault_logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fault-logs")


@pytest.fixture(scope="module")
async def remote(peer, fault_logs):
    async with spawned(fault_logs, "remote-faults", ["--engine-url", peer.url], SETTINGS,
                       env={"VLLM_API_KEY": API_KEY}) as client:
        await wait_for(lambda: any(s["state"] == "ready" for s in client.statuses), 30, "the remote engine")
        client.fib = open_document(client, FIB)  # type: ignore[attr-defined]
        yield client


@pytest.fixture
async def fault(remote, peer):
    """Yields a function that makes the peer misbehave; afterwards the peer behaves again and a
    normal completion must succeed (the server recovered by itself)."""

    def inject(mode: str) -> None:
        peer.mode = mode

    yield inject
    peer.mode = "ok"
    await peer.listen()
    items = await wait_for(lambda: inline(remote, remote.fib, 1, 4, invoked=True), 60, "a completion after the fault")
    assert items[0].startswith("return n if n < 2"), items
    after = await wait_for(lambda: _settled(remote), BOUND, "no engine request in flight")
    assert after["engine_requests_in_flight"] == 0


async def _settled(client):
    now = await stats(client)
    return now if now["engine_requests_in_flight"] == 0 else None


def popups(client, text: str) -> list[str]:
    return [m.message for m in client.messages if text in m.message]


def logged(client, text: str) -> list[str]:
    return [m.message for m in client.log_messages if text in m.message]


async def empty_answer(client) -> None:
    assert await asyncio.wait_for(inline(client, client.fib, 1, 4, invoked=True), BOUND) == []


async def test_http_500_is_answered_empty_with_one_popup_for_many_failures(remote, peer, fault):
    fault("500")
    before = await stats(remote)
    for _ in range(5):
        await empty_answer(remote)
    after = await stats(remote)
    assert after["engine_requests_failed"] - before["engine_requests_failed"] == 5
    failing = popups(remote, "completions are failing")
    assert len(failing) == 1 and "HTTP 500" in failing[0], remote.messages
    assert logged(remote, "internal failure injected by the test"), "the server's own words reach the log"
    assert remote.statuses[-1]["state"] == "degraded"


async def test_rejected_with_429_is_answered_at_once_and_retried_after_the_pause(remote, peer, fault):
    fault("429")
    before = await stats(remote)
    await empty_answer(remote)
    after = await stats(remote)
    assert after["engine_rejected"] - before["engine_rejected"] == 1
    assert remote.statuses[-1]["state"] == "overloaded"
    assert len(popups(remote, "overloaded")) == 1
    assert after["engine_endpoints"][0]["rejected"] >= 1


async def test_a_server_that_never_answers_costs_one_deadline_and_the_request_is_dropped(remote, peer, fault):
    fault("hang")
    before = await stats(remote)
    gone = peer.seen.client_gone
    await empty_answer(remote)
    after = await wait_for(lambda: _settled(remote), BOUND, "the hung request to be abandoned")
    assert after["completions_timed_out"] - before["completions_timed_out"] == 1
    assert after["engine_requests_aborted"] - before["engine_requests_aborted"] == 1
    # The connection was closed: that is how vLLM learns to abort the request.
    await wait_for(lambda: peer.seen.client_gone > gone, BOUND, "the peer to see the client leave")
    assert logged(remote, "longer than 2.0 s")


async def test_a_stream_that_trickles_forever_is_cut_at_the_deadline(remote, peer, fault):
    fault("drip")
    before = await stats(remote)
    gone = peer.seen.client_gone
    await empty_answer(remote)
    after = await wait_for(lambda: _settled(remote), BOUND, "the dripping request to be abandoned")
    assert after["completions_timed_out"] - before["completions_timed_out"] == 1
    assert after["tokens_received"] > before["tokens_received"], "it was streaming when it was cut"
    await wait_for(lambda: peer.seen.client_gone > gone, BOUND, "the peer to see the client leave")


async def test_a_stream_event_that_is_not_json_fails_the_request(remote, peer, fault):
    fault("malformed")
    before = await stats(remote)
    await empty_answer(remote)
    after = await stats(remote)
    assert after["engine_requests_failed"] - before["engine_requests_failed"] == 1
    assert logged(remote, "not JSON")


async def test_a_stream_without_its_end_marker_fails_the_request(remote, peer, fault):
    fault("no-done")
    before = await stats(remote)
    await empty_answer(remote)
    after = await stats(remote)
    assert after["engine_requests_failed"] - before["engine_requests_failed"] == 1
    assert logged(remote, "before the server said it was done")


async def test_a_stream_cut_off_mid_body_marks_the_server_down_until_it_answers_again(remote, peer, fault):
    fault("truncated")
    seen = len(remote.statuses)
    await empty_answer(remote)
    states = [s["state"] for s in remote.statuses[seen:]]
    assert "unavailable" in states, states
    assert len(popups(remote, "completions are paused")) == 1
    # Recovery needs no request: the background check finds the server answering again.
    peer.mode = "ok"
    await wait_for(lambda: any(s["state"] == "ready" for s in remote.statuses[seen:]), BOUND, "ready again")


async def test_an_endless_line_is_refused_without_reading_it_all(remote, peer, fault):
    fault("oversize")
    sent = peer.seen.bytes_sent
    await empty_answer(remote)
    await wait_for(lambda: _settled(remote), BOUND, "the request to end")
    assert logged(remote, "longer than")
    # The engine stopped reading at its 1 MiB line limit; the peer could only push what the
    # socket buffers took beyond that.
    assert peer.seen.bytes_sent - sent < 16 << 20


async def test_a_refused_connection_pauses_completions_with_one_warning_and_they_resume(remote, peer, fault):
    await peer.refuse()
    seen = len(remote.statuses)
    for _ in range(3):
        await empty_answer(remote)
    await wait_for(lambda: any(s["state"] == "unavailable" for s in remote.statuses[seen:]), BOUND,
                   "the unavailable status")
    assert len(popups(remote, "completions are paused")) == 1, "one warning for all outages in a short time"
    await peer.listen()
    await wait_for(lambda: any(s["state"] == "ready" for s in remote.statuses[seen:]), 60, "ready again")


async def test_a_key_echoed_by_the_server_is_redacted_from_what_the_editor_sees(remote, peer, fault):
    fault("echo-key")
    await empty_answer(remote)
    assert f"Bearer {API_KEY}" in peer.seen.authorization, "the key was sent to the server"
    assert logged(remote, "bad auth Bearer ***")
    for text in [m.message for m in remote.messages + remote.log_messages] + [str(s) for s in remote.statuses]:
        assert API_KEY not in text, text


async def test_the_api_key_is_in_no_log(remote, peer, fault_logs):
    """Runs last in this module: every log the server wrote, at -vv, after every fault above."""
    await configure(remote, {**SETTINGS, "engine.remote.apiKey": API_KEY})  # in settings too, as a client may send it
    files = sorted(p for p in fault_logs.iterdir() if p.is_file())
    assert {p.suffix for p in files} == {".log", ".stderr"}
    assert any("bad auth" in p.read_text(errors="replace") for p in files), "the echoed error was logged"
    for path in files:
        assert API_KEY.encode() not in path.read_bytes(), f"the API key is in {path}"
    with contextlib.suppress(AttributeError):
        assert types.MessageType.Error not in {m.type for m in remote.messages}, remote.messages
