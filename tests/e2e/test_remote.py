"""The remote engine over real LSP stdio against a real vLLM OpenAI server on 127.0.0.1.

One vLLM server (the embedded model, CPU settings) serves every test in this module; it requires an
API key, which the language servers get from the environment or from their settings. Each test
starts its own language server (cheap: no engine inside) with `-vv --log-file`, and every log
they write lands in one directory that the last test searches for the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled

from engine.base import CompletionRequest, EngineState, Sampling
from engine.remote import RemoteEngine, RemoteEngineConfig

from .lsp_helpers import (
    cancel_and_type,
    cancelled,
    configure,
    initialize,
    inline,
    inline_params,
    make_client,
    open_document,
    server_command,
    stats,
    wait_for,
)
from .vllm_server import Relay, VllmServer, free_port, self_signed_certificate, start_vllm_server, wait_healthy

pytestmark = pytest.mark.remote

FIB = "def fibonacci(n):\n    "
# Cancelled mid-stream: no early answer (it would come before the cancel), no takeover of the stream
# by the next keystroke's request, no speculation after an answer (these tests count the requests).
LONG_RUNNING = {"generation.multiline": "always", "generation.maxTokens": 400, "generation.maxLines": 200,
                "generation.earlyStop": False, "scheduling.debounceMs": 0, "generation.answerEarly": False,
                "generation.reuseStream": False, "generation.speculate": False}
# Requests that run to their end on the server (vLLM counts only those in vllm:request_success).
SHORT = {"generation.maxTokens": 8, "generation.maxLineTokens": 8, "scheduling.debounceMs": 0, "generation.earlyStop": False, "generation.candidates": 1}
# One candidate per invoked request: these tests count items and tokens of a single completion.
ONE = {"scheduling.debounceMs": 0, "generation.candidates": 1}
API_KEY = "vllm-ls-test-" + secrets.token_hex(16)  # fresh per run: a hit in a log can only be a leak
WRONG_KEY = "vllm-ls-wrong-" + secrets.token_hex(16)


@pytest.fixture(scope="module")
def remote_logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("remote-logs")


@pytest.fixture(scope="module")
async def vllm_server(remote_logs: Path) -> AsyncIterator[VllmServer]:
    # The key reaches vLLM through its environment, not its command line (which it logs).
    # At most 3 request slots (an invoked request asks for 3 candidates = 3 slots): beyond that
    # vLLM answers 503, which the overload test needs.
    server = start_vllm_server(remote_logs / "vllm-server.log", {"VLLM_API_KEY": API_KEY},
                               "--max-num-queued-reqs", "3")
    try:
        await wait_healthy(server, timeout=600)
        yield server
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def lsp_session(
    logs: Path, name: str, urls: list[str], settings: dict | None = None, env: dict[str, str] | None = None,
):
    """A language server on the remote engine; stderr and `--log-file` (at -vv) go to `logs`."""
    flags = [flag for url in urls for flag in ("--engine-url", url)]
    command = server_command(*flags, "-v", log_file=logs / f"{name}.log")
    # bash only redirects the server's stderr into a file we can search, then becomes the server.
    wrapped = ["bash", "-c", 'exec "$@" 2>>"$0"', str(logs / f"{name}.stderr"), *command]
    client = make_client()
    base_env = {k: v for k, v in os.environ.items() if k != "VLLM_API_KEY"}
    await client.start_io(*wrapped, env={**base_env, **(env or {})})
    try:
        await initialize(client, settings or {})
        yield client
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.shutdown_session(), 30)
        await client.stop()


def last_status(client, state: str | None = None) -> dict | None:
    for status in reversed(client.statuses):
        if state is None or status.get("state") == state:
            return status
    return None


async def wait_status(client, state: str, timeout: float, after: int = 0) -> dict:
    def seen() -> dict | None:
        for status in client.statuses[after:]:
            if status.get("state") == state:
                return status
        return None

    return await wait_for(seen, timeout, f"a {state!r} status (have {client.statuses[-3:]})")


async def _engine_busy(client, before) -> bool:
    now = await stats(client)
    return now["engine_requests_in_flight"] >= 1 and now["tokens_received"] > before["tokens_received"] + 5


async def _settled(client) -> dict | None:
    now = await stats(client)
    return now if now["engine_requests_in_flight"] == 0 else None


async def _server_idle(server: VllmServer) -> dict | None:
    metrics = await server.metrics()
    return metrics if metrics["vllm:num_requests_running"] == 0 else None


def _delta(after: dict, before: dict, key: str) -> float:
    return after[key] - before[key]


async def test_completion_over_lsp_through_the_remote_engine(vllm_server, remote_logs):
    async with lsp_session(remote_logs, "completion", [vllm_server.url], ONE,
                           env={"VLLM_API_KEY": API_KEY}) as client:
        ready = await wait_status(client, "ready", 60)
        assert "smollm2" in ready["message"]
        uri = open_document(client, FIB)
        server_before, before = await vllm_server.metrics(), await stats(client)
        items = await inline(client, uri, 1, 4, invoked=True)
        assert len(items) == 1 and items[0].strip(), items
        assert "def fibonacci" not in items[0].splitlines()[0]
        assert any(word in items[0] for word in ("return", "if", "for", "while", "=")), items[0]
        after = await wait_for(lambda: _settled(client), 30, "the request to end")
        server_after = await wait_for(lambda: _server_idle(vllm_server), 30, "the vLLM server to be idle")

        assert _delta(after, before, "engine_requests_started") == 1
        received = _delta(after, before, "tokens_received")
        generated = _delta(after, before, "engine_tokens_generated")
        server_generated = _delta(server_after, server_before, "vllm:generation_tokens_total")
        print(f"received {received}, engine_tokens_generated {generated}, server counted {server_generated}")
        assert 0 < _delta(after, before, "tokens_shown") <= received <= generated <= server_generated
        # The server prefilled our prompt, and our stats say how long it was.
        assert _delta(after, before, "prompt_tokens") == _delta(server_after, server_before, "vllm:prompt_tokens_total") > 0
        endpoints = after["engine_endpoints"]
        assert [(e["url"], e["healthy"], e["served"]) for e in endpoints] == [(vllm_server.url, True, 1)]


async def test_cancel_mid_stream_stops_the_servers_generation(vllm_server, remote_logs):
    async with lsp_session(remote_logs, "cancel", [vllm_server.url], LONG_RUNNING,
                           env={"VLLM_API_KEY": API_KEY}) as client:
        await wait_status(client, "ready", 60)
        uri = open_document(client, FIB)
        server_before, before = await vllm_server.metrics(), await stats(client)
        future = client.protocol.send_request("textDocument/inlineCompletion", inline_params(uri, 1, 4),
                                              msg_id="cancel-me")
        await wait_for(lambda: _engine_busy(client, before), 60, "the server to stream tokens")
        client.protocol.notify("$/cancelRequest", types.CancelParams(id="cancel-me"))
        with pytest.raises(JsonRpcRequestCancelled):
            await asyncio.wait_for(asyncio.wrap_future(future) if not asyncio.isfuture(future) else future, 30)
        after = await wait_for(lambda: _settled(client), 30, "in-flight requests to drain")
        server_after = await wait_for(lambda: _server_idle(vllm_server), 30, "vllm:num_requests_running == 0")

        received = _delta(after, before, "tokens_received")
        server_generated = _delta(server_after, server_before, "vllm:generation_tokens_total")
        print(f"received {received}, server generated {server_generated}")
        assert 0 < received < 400, "the request must have been cut short mid-stream"
        # The server acts on the closed connection after the decode step in flight: at most one more.
        assert server_generated - received <= 1, f"the server kept generating: {server_generated} vs {received}"
        assert _delta(after, before, "engine_requests_aborted") == 1
        assert after["engine_requests_in_flight"] == 0
        assert _delta(after, before, "completions_cancelled") == 1
        # Our stats carry the server's own count.
        assert _delta(after, before, "engine_tokens_generated") == server_generated

        # And it stays stopped: a short follow-up grows the server's counter by exactly its own tokens.
        await configure(client, {**LONG_RUNNING, "generation.maxTokens": 6})
        follow_before = await stats(client)
        await inline(client, uri, 1, 4)
        follow_after = await wait_for(lambda: _settled(client), 30, "the follow-up to end")
        server_final = await wait_for(lambda: _server_idle(vllm_server), 30, "the vLLM server to be idle")
        assert _delta(follow_after, follow_before, "engine_requests_finished") == 1
        assert (_delta(server_final, server_after, "vllm:generation_tokens_total")
                == _delta(follow_after, follow_before, "tokens_received") == 6)


async def test_endpoint_down_at_start_then_up_without_restarting(vllm_server, remote_logs):
    relay = Relay(int(vllm_server.url.rsplit(":", 1)[1]))  # its port answers only once opened
    try:
        async with lsp_session(remote_logs, "down-then-up", [relay.url], ONE,
                               env={"VLLM_API_KEY": API_KEY}) as client:
            down = await wait_status(client, "unavailable", 60)
            assert relay.url in down["message"] and "retrying" in down["message"]
            uri = open_document(client, FIB)
            for _ in range(3):
                assert await inline(client, uri, 1, 4, invoked=True) == []
            payload = await stats(client)
            assert payload["engine_state"] == "unavailable"
            assert payload["completions_empty"] == 3 and payload["engine_requests_started"] == 0
            assert last_status(client, "failed") is None, "a down endpoint is not a failure"
            warnings = [m for m in client.messages if "paused" in m.message]
            assert len(warnings) == 1 and warnings[0].type == types.MessageType.Warning, client.messages

            seen = len(client.statuses)
            await relay.open()
            # Recovery comes from the background checks: no request needed, no restart.
            await wait_status(client, "ready", 60, after=seen)
            items = await inline(client, uri, 1, 4, invoked=True)
            assert len(items) == 1 and items[0].strip()
            assert len([m for m in client.messages if "paused" in m.message]) == 1
    finally:
        await relay.close()


async def test_two_endpoints_one_dead_all_served_by_the_live_one(vllm_server, remote_logs):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with lsp_session(remote_logs, "replicas", [dead, vllm_server.url], SHORT,
                           env={"VLLM_API_KEY": API_KEY}) as client:
        await wait_status(client, "ready", 60)
        assert any("1 of 2 endpoints healthy" in s["message"] and dead in s["message"] for s in client.statuses)
        server_before = await vllm_server.metrics()
        # Different documents: by placement some of them would prefer the dead endpoint.
        for i in range(4):
            uri = open_document(client, FIB, name=f"replica{i}")
            items = await inline(client, uri, 1, 4, invoked=True)
            assert len(items) == 1 and items[0].strip(), f"document {i} got no completion"
        payload = await wait_for(lambda: _settled(client), 30, "the requests to end")
        server_after = await wait_for(lambda: _server_idle(vllm_server), 30, "the vLLM server to be idle")
        by_url = {e["url"]: e for e in payload["engine_endpoints"]}
        assert by_url[dead]["healthy"] is False and by_url[dead]["served"] == 0
        assert by_url[vllm_server.url]["served"] == 4
        assert _delta(server_after, server_before, "vllm:request_success_total") == 4
        assert payload["engine_requests_failed"] == 0


async def test_overloaded_server_is_answered_at_once_with_empty_and_a_status(vllm_server, remote_logs):
    async with lsp_session(remote_logs, "overload", [vllm_server.url], SHORT,
                           env={"VLLM_API_KEY": API_KEY}) as client:
        await wait_status(client, "ready", 60)
        uri = open_document(client, FIB)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        # ignore_eos: a blocker that ends early frees its slot, and the request under test is served.
        body = {"model": "smollm2", "prompt": FIB, "max_tokens": 1500, "stream": True, "ignore_eos": True}
        async with httpx.AsyncClient(timeout=60, headers=headers) as http, contextlib.AsyncExitStack() as stack:
            blockers = []
            for _ in range(3):  # the server takes 3 requests at most (--max-num-queued-reqs 3)
                response = await stack.enter_async_context(
                    http.stream("POST", f"{vllm_server.url}/v1/completions", json=body))
                assert response.status_code == 200
                lines = response.aiter_lines()
                await wait_for(lambda lines=lines: _next_data(lines), 60, "a blocker to stream")
                blockers.append(lines)
            before = await stats(client)
            assert await inline(client, uri, 1, 4, invoked=True) == []
            after = await stats(client)
            # Answered while all blockers still run: nothing waited for capacity.
            for lines in blockers:
                assert await _next_data(lines)
        assert _delta(after, before, "engine_rejected") == 1
        assert _delta(after, before, "engine_requests_failed") == 1
        assert after["engine_endpoints"][0]["rejected"] == 1
        busy = last_status(client)
        assert busy["state"] == "overloaded" and "overloaded" in busy["message"], busy
        assert last_status(client, "failed") is None
        await wait_for(lambda: _server_idle(vllm_server), 30, "the blockers to be aborted")
        # Capacity is back: completions resume (after the endpoint's short overload pause).
        await wait_for(lambda: inline(client, uri, 1, 4, invoked=True), 30, "completions to resume")


async def _next_data(lines) -> bool:
    async for line in lines:
        if line.startswith("data:"):
            return True
    return False


class _Read:
    tokens = 0


async def _streaming(engine: RemoteEngine, request_id: str, tokens: int) -> tuple[asyncio.Task, _Read]:
    """A task streaming a long generation (400 tokens), returned once it has read `tokens` of them."""
    read, streaming = _Read(), asyncio.Event()

    async def consume() -> None:
        request = CompletionRequest(request_id, FIB, Sampling(max_tokens=400))
        async with contextlib.aclosing(engine.stream(request)) as stream:
            async for delta in stream:
                read.tokens += delta.tokens
                if read.tokens >= tokens:
                    streaming.set()

    consumer = asyncio.create_task(consume())
    await asyncio.wait_for(streaming.wait(), 60)
    return consumer, read


async def test_engine_abort_by_request_id_stops_the_server(vllm_server):
    """`Engine.abort(request_id)` from another task ends the stream and the server's work."""
    engine = RemoteEngine(RemoteEngineConfig(urls=(vllm_server.url,), api_key=API_KEY))
    await engine.start()
    try:
        server_before = await vllm_server.metrics()
        consumer, read = await _streaming(engine, "abort-me", tokens=5)
        await engine.abort("abort-me")
        await asyncio.wait_for(consumer, 30)  # the stream ends, quietly
        server_after = await wait_for(lambda: _server_idle(vllm_server), 30, "vllm:num_requests_running == 0")
        server_generated = _delta(server_after, server_before, "vllm:generation_tokens_total")
        assert 5 <= read.tokens < 400 and server_generated - read.tokens <= 1, (read.tokens, server_generated)
        await engine.refresh_counters()
        counters = engine.counters()
        assert (counters.requests_aborted, counters.requests_in_flight, counters.requests_failed) == (1, 0, 0)
        assert counters.tokens_generated == server_generated
        await engine.abort("abort-me")  # idempotent, and harmless for ids never seen
        await engine.abort("never-seen")
    finally:
        await engine.close()


#: Tokens vLLM may generate for a stopped request that we never read: the decode step in flight when
#: the connection closed (the server acts on it before the next one). Measured: 0 on this machine.
AFTER_STOP_BOUND = 1


@pytest.mark.parametrize("turns", [0, 1, 2])
async def test_a_stream_cancelled_again_while_it_unwinds_still_hangs_up(vllm_server, turns):
    """A second cancel `turns` loop turns after the first (VS Code's $/cancelRequest, then the next
    keystroke's cancel-previous): httpx used to leave the socket open, and vLLM generated to
    max_tokens for nobody (vLLM's own counter says what it did)."""
    engine = RemoteEngine(RemoteEngineConfig(urls=(vllm_server.url,), api_key=API_KEY))
    await engine.start()
    try:
        server_before = await vllm_server.metrics()
        consumer, read = await _streaming(engine, f"twice-{turns}", tokens=3)
        consumer.cancel()
        for _ in range(turns):
            await asyncio.sleep(0)
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        server_after = await wait_for(lambda: _server_idle(vllm_server), 60, "vllm:num_requests_running == 0")
        server_generated = _delta(server_after, server_before, "vllm:generation_tokens_total")
        print(f"received {read.tokens}, the server generated {server_generated}")
        assert 3 <= read.tokens < 400
        assert server_generated - read.tokens <= AFTER_STOP_BOUND, (read.tokens, server_generated)
        assert engine.counters().requests_in_flight == 0
    finally:
        await engine.close()


async def test_a_cancel_and_the_next_keystroke_together_stop_the_server_at_once(vllm_server, remote_logs):
    """VS Code on every keystroke: $/cancelRequest for the old request, the change, the next request."""
    async with lsp_session(remote_logs, "cancel-and-type", [vllm_server.url], LONG_RUNNING,
                           env={"VLLM_API_KEY": API_KEY}) as client:
        await wait_status(client, "ready", 60)
        uri = open_document(client, FIB)
        server_before, before = await vllm_server.metrics(), await stats(client)
        old = client.protocol.send_request("textDocument/inlineCompletion", inline_params(uri, 1, 4), msg_id="old")
        await wait_for(lambda: _engine_busy(client, before), 60, "the server to stream tokens")
        await configure(client, {**LONG_RUNNING, "generation.maxTokens": 4})
        new = cancel_and_type(client, uri, "old", 1, 4, "r")
        await cancelled(old)
        await asyncio.wait_for(new, 60)
        after = await wait_for(lambda: _settled(client), 30, "in-flight requests to drain")
        server_after = await wait_for(lambda: _server_idle(vllm_server), 60, "vllm:num_requests_running == 0")
        received = _delta(after, before, "tokens_received")
        server_generated = _delta(server_after, server_before, "vllm:generation_tokens_total")
        print(f"received {received}, the server generated {server_generated}")
        assert _delta(after, before, "engine_requests_aborted") == 1
        assert server_generated - received <= AFTER_STOP_BOUND, (received, server_generated)


async def test_stop_strings_beyond_the_servers_four_end_the_request_early(vllm_server):
    """vLLM takes 4 stop strings; a fifth is ours: the text is cut there and the server stops."""
    engine = RemoteEngine(RemoteEngineConfig(urls=(vllm_server.url,), api_key=API_KEY))
    await engine.start()
    try:
        async def complete(stops: tuple[str, ...], max_tokens: int) -> tuple[str, str | None, int]:
            text, finish, tokens = "", None, 0
            request = CompletionRequest(f"stops-{len(stops)}", FIB, Sampling(max_tokens=max_tokens, stop=stops))
            async with contextlib.aclosing(engine.stream(request)) as stream:
                async for delta in stream:
                    text, finish, tokens = text + delta.text, delta.finish_reason or finish, tokens + delta.tokens
            return text, finish, tokens

        free_text, _, _ = await complete((), 24)  # greedy: the same text comes again
        # A stop the model reaches after some tokens: the first 3 letters of a later word.
        words = [m.group()[:3] for m in re.finditer(r"[A-Za-z_]{3,}", free_text)]
        stop = next((w for w in words if free_text.index(w) > len(free_text) // 3), None)
        assert stop is not None, free_text
        never = ("<never-1>", "<never-2>", "<never-3>", "<never-4>")
        server_before = await vllm_server.metrics()
        text, finish, tokens = await complete((*never, stop), 200)
        server_after = await wait_for(lambda: _server_idle(vllm_server), 30, "the vLLM server to be idle")
        assert text == free_text[: free_text.index(stop)] and finish == "stop"
        assert _delta(server_after, server_before, "vllm:generation_tokens_total") - tokens <= 1
        assert engine.counters().requests_finished == 2
    finally:
        await engine.close()


async def test_tls_is_verified_and_a_ca_bundle_makes_a_private_ca_work(vllm_server, remote_logs, tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    relay = Relay(int(vllm_server.url.rsplit(":", 1)[1]), tls=tls)  # https in front of the server
    await relay.open()
    try:
        async with lsp_session(remote_logs, "tls-untrusted", [relay.url], {"scheduling.debounceMs": 0},
                               env={"VLLM_API_KEY": API_KEY}) as client:
            down = await wait_status(client, "unavailable", 60)
            assert "certificate verify failed" in down["message"], down
            uri = open_document(client, FIB)
            assert await inline(client, uri, 1, 4, invoked=True) == []
        # Selected by settings this time, not by --engine-url.
        async with lsp_session(remote_logs, "tls-ca-bundle", [],
                               {**ONE, "engine.url": relay.url, "engine.remote.caBundle": str(cert)},
                               env={"VLLM_API_KEY": API_KEY}) as client:
            ready = await wait_status(client, "ready", 60)
            assert f"on vLLM at {relay.url}" in ready["message"], ready  # the remote engine, over https
            uri = open_document(client, FIB)
            items = await inline(client, uri, 1, 4, invoked=True)
            assert len(items) == 1 and items[0].strip()
    finally:
        await relay.close()


async def test_a_missing_ca_bundle_is_a_clear_failure():
    engine = RemoteEngine(RemoteEngineConfig(urls=("https://127.0.0.1:9",), ca_bundle="/nonexistent/ca.pem"))
    with pytest.raises(Exception, match="CA bundle /nonexistent/ca.pem does not exist"):
        await engine.start()
    assert engine.state is EngineState.FAILED and "does not exist" in (engine.error or "")
    await engine.close()


async def test_the_api_key_never_reaches_a_log(vllm_server, remote_logs):
    """Runs last: searches every log this module's servers wrote (the vLLM server's included)."""
    # The key from settings this time (the other tests pass it in the environment).
    async with lsp_session(remote_logs, "key-in-settings", [vllm_server.url],
                           {"engine.remote.apiKey": API_KEY, "scheduling.debounceMs": 0}) as client:
        await wait_status(client, "ready", 60)
        uri = open_document(client, FIB)
        assert (await inline(client, uri, 1, 4, invoked=True))[0].strip()  # the key was used
        await configure(client, {"engine.remote.apiKey": API_KEY, "scheduling.debounceMs": 0, "generation.maxTokens": "not a number"})
        statuses, messages = list(client.statuses), [m.message for m in client.messages + client.log_messages]
    async with lsp_session(remote_logs, "wrong-key", [vllm_server.url], {}, env={"VLLM_API_KEY": WRONG_KEY}) as client:
        failed = await wait_status(client, "failed", 60)
        assert "rejected the API key" in failed["message"] and "401" in failed["message"]
        statuses += client.statuses
        messages += [m.message for m in client.messages + client.log_messages]

    for text in [str(s) for s in statuses] + messages:
        assert API_KEY not in text and WRONG_KEY not in text, text
    files = sorted(p for p in remote_logs.iterdir() if p.is_file())
    assert any(p.name == "key-in-settings.log" for p in files) and any(p.suffix == ".stderr" for p in files)
    assert any("DEBUG" in p.read_text(errors="replace") for p in files if p.suffix == ".log"), "logs at -vv"
    for path in files:
        content = path.read_bytes()
        assert API_KEY.encode() not in content, f"the API key is in {path}"
        assert WRONG_KEY.encode() not in content, f"the (wrong) API key is in {path}"
