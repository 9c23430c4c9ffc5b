"""A headless LSP client that drives a `vllm-ls` server subprocess over stdio, exactly as an editor
does. `vllm-ls complete`, `vllm-ls check` and `vllm-ls bench` are built on it: they never take a
shortcut into the engine.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from .. import __version__
from ..contract import STATS_REQUEST, STATUS_NOTIFICATION



def server_command(
    engine_urls: Sequence[str] = (), model: str | None = None, extra: Sequence[str] = ()
) -> list[str]:
    """The command that starts this installation's server with the given engine flags."""
    cmd = [sys.executable, "-m", "lsp_server"]
    for url in engine_urls:
        cmd += ["--engine-url", url]
    if model:
        cmd += ["--model", model]
    return [*cmd, *extra, "serve"]


class ServerFailed(RuntimeError):
    """The server or its engine could not be used; the message says why."""


class HeadlessClient:
    def __init__(
        self,
        command: Sequence[str],
        settings: dict[str, Any] | None = None,
        stderr: TextIO | None = None,
        env: dict[str, str] | None = None,
        on_status: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.command = list(command)
        self.settings = settings or {}
        self.status: dict[str, Any] = {"state": "starting", "message": "starting the server"}
        self.status_history: list[dict[str, Any]] = []
        self.messages: list[str] = []
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self._stderr = stderr
        self._env = env
        self._on_status = on_status
        self._status_changed = asyncio.Event()
        self._versions: dict[str, int] = {}
        self._client = LanguageClient("vllm-ls-headless", __version__)
        self._stderr_task: asyncio.Task | None = None
        self._request_ids = itertools.count(1)

        @self._client.feature(STATUS_NOTIFICATION)
        def _on_status(params: Any) -> None:
            self.status = _plain(params)
            self.status_history.append(self.status)
            self._status_changed.set()
            if self._on_status is not None:
                self._on_status(self.status)

        @self._client.feature(types.WINDOW_SHOW_MESSAGE)
        def _on_message(params: types.ShowMessageParams) -> None:
            self.messages.append(params.message)

        @self._client.feature(types.WINDOW_LOG_MESSAGE)
        def _on_log(params: types.LogMessageParams) -> None:
            pass

    @property
    def raw(self) -> LanguageClient:
        return self._client

    @property
    def pid(self) -> int | None:
        server = self._client._server
        return server.pid if server is not None else None

    async def start(self, wait_ready: float | None = 600.0) -> None:
        """Start the server, initialize the session and (optionally) wait for the engine to be ready."""
        await self._client.start_io(*self.command, env=self._env)
        server = self._client._server
        if server is not None and server.stderr is not None:
            self._stderr_task = asyncio.create_task(self._drain_stderr(server.stderr))
        # Through request(): a server that dies while starting fails here instead of hanging.
        initialize = self.request(types.INITIALIZE, types.InitializeParams(
            process_id=None,
            root_uri=Path.cwd().as_uri(),
            capabilities=types.ClientCapabilities(
                window=types.WindowClientCapabilities(work_done_progress=False),
                general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf16]),
            ),
            initialization_options=self.settings,
        ), wait_ready)
        try:
            await initialize
        except TimeoutError:
            raise ServerFailed(f"the server did not answer `initialize` within {wait_ready:.0f} s:\n"
                               + self.stderr_text()) from None
        self._client.initialized(types.InitializedParams())
        if wait_ready is not None:
            await self.wait_ready(wait_ready)

    async def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.status.get("state") != "ready":
            if self.status.get("state") == "failed":
                raise ServerFailed(f"the engine failed: {self.status.get('message')}")
            if self._client._server is not None and self._client._server.returncode is not None:
                raise ServerFailed(f"the server exited ({self._client._server.returncode}):\n" + self.stderr_text())
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServerFailed(f"the engine was not ready after {timeout:.0f} s ({self.status.get('message')})")
            self._status_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._status_changed.wait(), min(remaining, 1.0))

    def open(self, uri: str, text: str, language_id: str = "python") -> None:
        self._versions[uri] = 1
        self._client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=language_id, version=1, text=text),
        ))

    def replace(self, uri: str, text: str) -> None:
        """Send the whole new text of a document (a full-document change)."""
        self._versions[uri] += 1
        self._client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self._versions[uri]),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        ))

    def edit(self, uri: str, start: types.Position, end: types.Position, new_text: str) -> None:
        """Send one incremental change, as editors do per keystroke."""
        self._versions[uri] += 1
        self._client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self._versions[uri]),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=start, end=end), text=new_text,
            )],
        ))

    async def inline_completion(
        self, uri: str, line: int, character: int, invoked: bool = False, timeout: float | None = None
    ) -> list[str]:
        result = await self.request(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked if invoked
                else types.InlineCompletionTriggerKind.Automatic,
            ),
        ), timeout)
        items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
        return [item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value for item in items]

    async def completion(
        self, uri: str, line: int, character: int, invoked: bool = False, timeout: float | None = None
    ) -> list[types.CompletionItem]:
        """`textDocument/completion` items. Not invoked: the re-request an editor sends while the user
        types on after an incomplete list (the kind of request that asks without a keypress)."""
        result = await self.request(types.TEXT_DOCUMENT_COMPLETION, types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.CompletionContext(
                trigger_kind=types.CompletionTriggerKind.Invoked if invoked
                else types.CompletionTriggerKind.TriggerForIncompleteCompletions,
            ),
        ), timeout)
        return result.items if isinstance(result, types.CompletionList) else list(result or [])

    async def request(self, method: str, params: Any, timeout: float | None = None) -> Any:
        """One request. Raises TimeoutError after `timeout` s, and ServerFailed if the server exits
        first; either way, and on cancellation, the server is told with `$/cancelRequest` as an
        editor would, so it stops the engine work nobody waits for any more."""
        msg_id, future = self.send(method, params)
        exited = asyncio.ensure_future(self._exited())
        try:
            done, _ = await asyncio.wait({future, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if future in done:
                return future.result()
            if exited in done:
                raise ServerFailed(f"the server exited ({exited.result()}) during {method}:\n" + self.stderr_text())
            raise TimeoutError(f"no answer to {method} within {timeout:g} s")
        except BaseException:
            if not future.done():
                self.cancel(msg_id)
            raise
        finally:
            exited.cancel()

    def send(self, method: str, params: Any) -> tuple[str, asyncio.Future]:
        """Send a request without waiting: its id (for `cancel`) and the future of its answer.
        `vllm-ls bench` keeps many of these outstanding, as editors do while the user types."""
        msg_id = f"headless-{next(self._request_ids)}"
        future = asyncio.wrap_future(self._client.protocol.send_request(method, params, msg_id=msg_id))
        # Retrieve a late answer's exception so asyncio does not log it as never retrieved.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        return msg_id, future

    def notify(self, method: str, params: Any) -> None:
        """Send a notification (`vllm-ls bench` reports what its typist did with a suggestion)."""
        self._client.protocol.notify(method, params)

    def cancel(self, msg_id: str) -> None:
        """`$/cancelRequest` for a request sent earlier; the server still answers it (with -32800)."""
        self._client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))

    async def configure(self, settings: dict[str, Any]) -> None:
        """Replace the client settings (`workspace/didChangeConfiguration`) and wait until the server
        has them: requests are handled in order, so the answer to a stats request proves it."""
        self._client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=settings))
        await self.stats()

    def close(self, uri: str) -> None:
        self._versions.pop(uri, None)
        self._client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
        ))

    async def stats(self) -> dict[str, Any]:
        return _plain(await self._client.protocol.send_request_async(STATS_REQUEST, None))

    async def _exited(self) -> int | None:
        server = self._client._server
        if server is None:  # not ours to watch: never report an exit
            await asyncio.get_running_loop().create_future()
        return await server.wait()

    async def stop(self) -> None:
        """shutdown + exit, as an editor does; kill the server if it does not leave in time."""
        server = self._client._server
        try:
            if server is not None and server.returncode is None:
                await asyncio.wait_for(self._client.shutdown_async(None), 60)
                self._client.exit(None)
                await asyncio.wait_for(server.wait(), 30)
        except (TimeoutError, ConnectionError, RuntimeError):
            if server is not None and server.returncode is None:
                server.kill()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._client.stop(), 10)
            if self._stderr_task is not None:
                self._stderr_task.cancel()

    def stderr_text(self) -> str:
        return "".join(self.stderr_tail)

    async def _drain_stderr(self, stream: asyncio.StreamReader) -> None:
        # The server's stderr must be read, or a chatty engine fills the pipe and blocks.
        while line := await stream.readline():
            text = line.decode("utf-8", "replace")
            self.stderr_tail.append(text)
            if self._stderr is not None:
                self._stderr.write(text)
                self._stderr.flush()


def _plain(value: Any) -> Any:
    """pygls hands custom payloads over as attribute objects; turn them into dicts and lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "_asdict"):  # a namedtuple: check before tuple
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return {k: _plain(v) for k, v in vars(value).items()}
    return value
