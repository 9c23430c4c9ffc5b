"""Bad input over the real stdio pipe: broken framing, bytes that are not JSON, messages that are not
JSON-RPC, params that do not fit, documents that are not open or no longer match the editor's.
Each gets an LSP error (with the request's id) or an empty result and a log line, and the next
request is served normally.

The language server runs the remote engine against `peer.py` behaving well (it starts in a second
and completes deterministically); what is tested here is the server's reading of its input.
Document content (NUL, CRLF, surrogates, 10 MB) goes through the real tokenizer in test_faults_content.py.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from .lsp_helpers import (
    configure, expect_reply, frame, inline, insert, open_document, spawned, stats, wait_for, write_raw,
)

FIB = "def fibonacci(n):\n    "
SETTINGS = {"scheduling.debounceMs": 0, "generation.candidates": 1}
BOUND = 20


@pytest.fixture(scope="module")
def input_logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("input-logs")


@pytest.fixture(scope="module")
async def server(peer, input_logs):
    async with spawned(input_logs, "input", ["--engine-url", peer.url], SETTINGS) as client:
        await wait_for(lambda: any(s["state"] == "ready" for s in client.statuses), 30, "the engine")
        client.log_path = input_logs / "input.log"  # type: ignore[attr-defined]
        yield client


@pytest.fixture
async def then_served(server):
    """After the test's bad input: a normal completion in a fresh document is served."""
    yield
    uri = open_document(server, FIB)
    items = await asyncio.wait_for(inline(server, uri, 1, 4, invoked=True), BOUND)
    assert items and items[0].startswith("return n if n < 2"), items


def log_text(server) -> str:
    return server.log_path.read_text(errors="replace")


async def error_of(reply: asyncio.Future) -> JsonRpcException:
    with pytest.raises(JsonRpcException) as caught:
        await asyncio.wait_for(reply, BOUND)
    return caught.value


def request(msg_id, method: str, params) -> dict:
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}


def inline_params(uri: str, line, character, **extra) -> dict:
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": character},
            "context": {"triggerKind": 1}, **extra}


# -- JSON-RPC -------------------------------------------------------------------------------------

@pytest.mark.parametrize("position", [(-1, 0), (0, -4), (2**31, 0), ("one", 0), (None, 0)])
async def test_a_request_with_invalid_params_is_answered_with_its_id(server, then_served, position):
    uri = open_document(server, FIB)
    msg_id = f"bad-position-{position}"
    reply = expect_reply(server, msg_id)
    write_raw(server, frame(request(msg_id, "textDocument/inlineCompletion", inline_params(uri, *position))))
    error = await error_of(reply)
    assert error.code == -32602 and "position" in error.message, error


async def test_missing_and_mistyped_params_are_invalid_params(server, then_served):
    for msg_id, params in (("no-params", None), ("string-params", "hello"), ("no-uri", {"position": {}})):
        reply = expect_reply(server, msg_id)
        write_raw(server, frame(request(msg_id, "textDocument/completion", params)))
        assert (await error_of(reply)).code == -32602


async def test_bytes_that_are_not_json_get_a_parse_error(server, then_served):
    reply = expect_reply(server, None)
    write_raw(server, frame(b'{"jsonrpc": "2.0", "id": 5, "method": '))
    assert (await error_of(reply)).code == -32700
    reply = expect_reply(server, None)
    write_raw(server, frame(b'\xff\xfe{"not": "utf-8"}'))
    assert (await error_of(reply)).code == -32700
    assert "not JSON" in log_text(server)


@pytest.mark.parametrize("body", [b"[1, 2, 3]", b'"a string"', b"42", b"null",
                                  b'{"id": 7, "method": "vllm-ls/stats"}', b'{"jsonrpc": "2.0", "id": [1], "method": "x"}'])
async def test_what_is_not_a_json_rpc_message_is_an_invalid_request(server, then_served, body):
    message = json.loads(body)
    reply_id = message.get("id") if isinstance(message, dict) and isinstance(message.get("id"), int) else None
    reply = expect_reply(server, reply_id)
    write_raw(server, frame(body))
    assert (await error_of(reply)).code == -32600


async def test_an_unknown_method_is_method_not_found(server, then_served):
    reply = expect_reply(server, "unknown")
    write_raw(server, frame(request("unknown", "vllm-ls/no-such-thing", {})))
    assert (await error_of(reply)).code == -32601


# -- framing --------------------------------------------------------------------------------------

async def test_garbage_between_messages_is_skipped(server, then_served):
    write_raw(server, b"this is not a header\r\n\r\n")
    write_raw(server, b"Content-Type: text/plain\r\n\r\n")  # a header block without a length
    write_raw(server, b"junk without a line break")  # then a good message on the same line
    reply = expect_reply(server, "after-junk")
    write_raw(server, frame(request("after-junk", "vllm-ls/stats", None)))
    assert "engine_requests_started" in str(await asyncio.wait_for(reply, BOUND))
    assert "skipped" in log_text(server)


async def test_a_length_longer_than_the_message_loses_only_that_message(server, then_served):
    broken = json.dumps(request("swallowed", "vllm-ls/stats", None)).encode()
    reply = expect_reply(server, "next")
    write_raw(server, frame(broken, len(broken) + 500) + frame(request("next", "vllm-ls/stats", None)))
    payload = await asyncio.wait_for(reply, BOUND)  # not swallowed by the broken length
    assert "engine_requests_started" in str(payload)


async def test_a_length_shorter_than_the_message_gets_a_parse_error_and_the_rest_is_skipped(server, then_served):
    body = json.dumps(request("short", "vllm-ls/stats", None)).encode()
    parse_error = expect_reply(server, None)
    reply = expect_reply(server, "after-short")
    write_raw(server, frame(body, len(body) - 10) + frame(request("after-short", "vllm-ls/stats", None)))
    assert (await error_of(parse_error)).code == -32700
    await asyncio.wait_for(reply, BOUND)


async def test_an_absurd_length_is_refused_and_reading_goes_on(server, then_served):
    reply = expect_reply(server, "after-absurd")
    write_raw(server, b"Content-Length: 999999999999\r\n\r\n" + b"x" * 100_000)
    write_raw(server, frame(request("after-absurd", "vllm-ls/stats", None)))
    await asyncio.wait_for(reply, BOUND)
    assert "the limit is" in log_text(server)


# -- documents ------------------------------------------------------------------------------------

async def test_unknown_documents_get_empty_answers_and_no_popup(server, then_served):
    ghost = "file:///nowhere/ghost.py"
    before = len(server.messages)
    assert await inline(server, ghost, 0, 0) == []
    server.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=ghost, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text="x = 1\n")]))
    server.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=ghost)))
    await stats(server)  # handled in order: the notifications are done
    assert len(server.messages) == before, server.messages[before:]
    text = log_text(server)
    assert "not open: file:///nowhere/ghost.py" in text and "change to a document that is not open" in text


async def test_positions_past_the_end_are_clamped(server, then_served):
    uri = open_document(server, FIB)
    assert (await inline(server, uri, 1, 999, invoked=True))[0].startswith("return")
    assert (await inline(server, uri, 99, 0, invoked=True))[0].startswith("return")


async def test_an_edit_that_does_not_apply_stops_completions_until_the_full_text_comes(server, then_served):
    uri = open_document(server, FIB)
    server.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=40, character=0), end=types.Position(line=40, character=0)),
            text="lost")]))
    assert await inline(server, uri, 1, 4, invoked=True) == [], "the document no longer matches the editor's"
    assert "out of sync" in log_text(server)
    server.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=FIB)]))
    assert (await inline(server, uri, 1, 4, invoked=True))[0].startswith("return")


async def test_a_change_that_cannot_be_read_stops_completions_until_the_document_is_opened_again(server, then_served):
    uri = open_document(server, FIB)
    write_raw(server, frame({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
        "textDocument": {"uri": uri, "version": 2},
        "contentChanges": [{"range": {"start": {"line": -1, "character": 0}, "end": {"line": 0, "character": 0}},
                            "text": "x"}]}}))
    assert await inline(server, uri, 1, 4, invoked=True) == []
    server.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id="python", version=3, text=FIB)))
    assert (await inline(server, uri, 1, 4, invoked=True))[0].startswith("return")


async def test_edits_land_where_the_editor_put_them_despite_form_feeds(server, then_served, peer):
    # pygls would count the form feed and U+2028 as line breaks and put the edit on the wrong line.
    uri = open_document(server, "x = 1\x0c\u2028\ndef fibonacci(n):\n")
    insert(server, uri, 2, 0, "    ")
    await inline(server, uri, 2, 4, invoked=True)
    # The prompt is the text before the cursor (its last space left for the model to write).
    assert peer.seen.prompts[-1] == "x = 1\x0c\u2028\ndef fibonacci(n):\n   ", peer.seen.prompts[-1]


async def test_settings_of_the_wrong_type_are_named_and_completions_go_on(server, then_served):
    before = len(server.messages)
    await configure(server, {**SETTINGS, "scheduling.requestTimeoutMs": "soon", "scheduling.maxInFlight": -1})
    warning = [m.message for m in server.messages[before:]]
    assert len(warning) == 1 and "requestTimeoutMs" in warning[0] and "maxInFlight" in warning[0]
    await configure(server, SETTINGS)


async def test_stats_count_what_was_rejected(server):
    payload = await stats(server)
    assert payload["messages_rejected"] >= 15, payload["messages_rejected"]


# -- lifecycle (a server of its own) ---------------------------------------------------------------

async def test_requests_before_initialize_and_after_shutdown_are_answered(peer, input_logs):
    async with spawned(input_logs, "lifecycle", ["--engine-url", peer.url], initialized=False) as client:
        early = expect_reply(client, "early")
        write_raw(client, frame(request("early", "vllm-ls/stats", None)))
        assert (await error_of(early)).code == -32002
        from .lsp_helpers import initialize

        await initialize(client, SETTINGS)
        await client.shutdown_async(None)
        late = expect_reply(client, "late")
        write_raw(client, frame(request("late", "vllm-ls/stats", None)))
        assert (await error_of(late)).code == -32600
        client.exit(None)
        assert await asyncio.wait_for(client._server.wait(), BOUND) == 0
    assert "Traceback" not in (input_logs / "lifecycle.stderr").read_text(), sys.version
