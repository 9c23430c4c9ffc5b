"""Shared helpers for end-to-end tests over real LSP stdio against the real server and engine."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient
from pytest_lsp.client import make_test_lsp_client

_uris = itertools.count(1)


def server_command(*flags: str, log_file: Path | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "lsp_server", "-v"]
    if log_file is not None:
        cmd += ["--log-file", str(log_file)]
    return [*cmd, *flags, "serve"]


def make_client() -> LanguageClient:
    """A pytest-lsp client that also records `vllm-ls/status` notifications."""
    client = make_test_lsp_client()
    client.statuses = []  # type: ignore[attr-defined]

    @client.feature("vllm-ls/status")
    def _status(ls: LanguageClient, params: Any) -> None:
        client.statuses.append(_plain(params))  # type: ignore[attr-defined]

    return client


def _plain(value: Any) -> Any:
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


async def initialize(client: LanguageClient, settings: dict | None = None, spec: str = "visual-studio-code") -> None:
    from pytest_lsp import client_capabilities

    client.init_result = await client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities(spec),
        initialization_options=settings or {},
        root_uri=Path.cwd().as_uri(),
    ))


async def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


async def wait_ready(client: LanguageClient, timeout: float = 600) -> dict:
    def ready() -> dict | None:
        for status in reversed(client.statuses):  # type: ignore[attr-defined]
            if status.get("state") == "failed":
                raise AssertionError(f"engine failed: {status.get('message')}")
            if status.get("state") == "ready":
                return status
        return None

    return await wait_for(ready, timeout, "the engine to be ready", interval=0.5)


async def stats(client: LanguageClient) -> dict[str, Any]:
    result = await client.protocol.send_request_async("vllm-ls/stats", None)
    return _plain(result)


async def configure(client: LanguageClient, settings: dict[str, Any]) -> None:
    """Replace the client settings (didChangeConfiguration) and wait until the server has them."""
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=settings))
    await stats(client)  # requests are handled in order: the notification has been processed


def open_document(client: LanguageClient, text: str, language_id: str = "python", name: str | None = None) -> str:
    uri = (Path.cwd() / f"{name or f'doc{next(_uris)}'}.py").as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language_id, version=1, text=text),
    ))
    client._versions = getattr(client, "_versions", {})  # type: ignore[attr-defined]
    client._versions[uri] = 1  # type: ignore[attr-defined]
    return uri


def insert(client: LanguageClient, uri: str, line: int, character: int, text: str) -> None:
    """Insert `text` at a position with an incremental change, as an editor does per keystroke."""
    client._versions[uri] += 1  # type: ignore[attr-defined]
    pos = types.Position(line=line, character=character)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=client._versions[uri]),  # type: ignore[attr-defined]
        content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=pos, end=pos), text=text)],
    ))


def inline_params(uri: str, line: int, character: int, invoked: bool = False) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Invoked if invoked else types.InlineCompletionTriggerKind.Automatic,
        ),
    )


async def inline(client: LanguageClient, uri: str, line: int, character: int, invoked: bool = False) -> list[str]:
    result = await client.text_document_inline_completion_async(inline_params(uri, line, character, invoked))
    items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
    return [item.insert_text for item in items]


@contextlib.asynccontextmanager
async def spawned(
    logs: Path, name: str, flags: list[str], settings: dict | None = None, env: dict[str, str] | None = None,
    initialized: bool = True,
):
    """A language server of its own (not the shared session): `--log-file` and stderr go to `logs`.
    Shut down at the end unless the test ended it itself."""
    command = server_command(*flags, "-v", log_file=logs / f"{name}.log")
    # bash only redirects the server's stderr into a file we can search, then becomes the server.
    wrapped = ["bash", "-c", 'exec "$@" 2>>"$0"', str(logs / f"{name}.stderr"), *command]
    client = make_client()
    base_env = {k: v for k, v in os.environ.items() if k != "VLLM_API_KEY"}
    await client.start_io(*wrapped, env={**base_env, **(env or {})})
    try:
        if initialized:
            await initialize(client, settings or {})
        yield client
    finally:
        if client._server.returncode is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.shutdown_session(), 30)
        if client._server.returncode is None:
            client._server.kill()
        await client.stop()


def expect_reply(client: LanguageClient, msg_id: Any) -> asyncio.Future:
    """A future for the server's answer to a request written as raw bytes (or to none: `msg_id`
    None receives answers with a null id, such as parse errors)."""
    future: concurrent.futures.Future = concurrent.futures.Future()
    client.protocol._request_futures[msg_id] = future
    return asyncio.wrap_future(future)


def write_raw(client: LanguageClient, data: bytes) -> None:
    """Bytes straight onto the server's stdin, between the client's own messages."""
    client._server.stdin.write(data)


def frame(body: bytes | dict, length: int | None = None) -> bytes:
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body) if length is None else length, body)


def cancel_and_type(client: LanguageClient, uri: str, cancel_id: str, line: int, character: int, text: str) -> asyncio.Future:
    """What VS Code sends for a keystroke while a request is outstanding, back to back: its
    `$/cancelRequest`, the change, and the next request (at the new cursor); returns that request."""
    client.protocol.notify("$/cancelRequest", types.CancelParams(id=cancel_id))
    insert(client, uri, line, character, text)
    return asyncio.ensure_future(inline(client, uri, line, character + len(text)))


async def cancelled(request: Any, timeout: float = 30) -> None:
    """Wait for a request sent with `client.protocol.send_request` to be answered with -32800."""
    from pygls.exceptions import JsonRpcRequestCancelled

    future = request if asyncio.isfuture(request) else asyncio.wrap_future(request)
    try:
        await asyncio.wait_for(future, timeout)
    except JsonRpcRequestCancelled:
        return
    raise AssertionError("the request was answered, not cancelled")
