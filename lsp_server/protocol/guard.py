"""Every message from the client is read defensively, and every request gets an answer.

pygls 2.1 leaves a client waiting forever in several cases: a request whose params do not
deserialize (a negative line number) raises inside its reader and no response is sent; a request
after `shutdown` is dropped silently; bytes that are not JSON are only logged. Its documents split
lines where LSP does not (form feed, U+2028) and so apply edits to the wrong line, a `didChange`
for a document that is not open pops up an error in the editor, and its logs print whole messages
(document text, settings) on any failure. Here:

- framing is `framing.FrameDecoder` (it finds its way back after broken headers and lengths);
- a body that is not JSON gets -32700 (Parse error) with a null id, as JSON-RPC asks;
- something that is not a JSON-RPC message gets -32600 (Invalid request), with its id if it has one;
- a request whose params do not fit its method gets -32602 (Invalid params) with its id;
- a request before `initialize` gets -32002, and after `shutdown` -32600;
- documents are kept exactly as LSP defines them (`documents.Documents`), out-of-sync ones refused;
- log lines name the method, the id and what was wrong, never the message's content.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cattrs.errors import BaseValidationError
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage
from pygls.protocol.language_server import lsp_method

from .documents import Documents
from .framing import Frame, FrameDecoder

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_NOT_INITIALIZED = -32002

#: A request's id: JSON-RPC allows a number or a string (null only in our error replies).
_ID_TYPES = (int, str)


class InvalidMessage(Exception):
    """A message that cannot be handled, with the JSON-RPC error code to answer it with."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


class GuardedProtocol(LanguageServerProtocol):
    """pygls' language server protocol with the guards described in the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.rejected = 0  # messages answered with an error or dropped (vllm-ls/stats)
        self.cancelled_at: dict[Any, float] = {}  # request id → when its $/cancelRequest arrived
        self.documents = Documents(lambda: self.workspace)

    # -- handlers -------------------------------------------------------------------------------

    @property
    def handlers_pending(self) -> int:
        """Handler futures pygls holds (running requests and notifications): 0 when idle."""
        return len(self._request_futures)

    def _execute_handler(self, msg_id, handler, callback, args=None, kwargs=None):  # noqa: ANN001
        # pygls 2.1 files every handler's future under its message id so that a $/cancelRequest
        # can find it, but only a request's answer removes it again: the future of every
        # notification handler (and of every user handler a built-in one hands over to) stays
        # forever. That is a Task and a Future per keystroke (the soak test saw RSS grow by
        # ~0.4 MiB/s). Done is done: drop it then.
        def drop(future) -> None:  # noqa: ANN001
            if self._request_futures.get(msg_id) is future:
                del self._request_futures[msg_id]

        def forget(future) -> None:  # noqa: ANN001
            try:
                # Later, not now: pygls' shutdown cancels the futures while iterating over them.
                asyncio.get_running_loop().call_soon(drop, future)
            except RuntimeError:
                drop(future)
            callback(future)

        return super()._execute_handler(msg_id, handler, forget, args, kwargs)

    # -- reading --------------------------------------------------------------------------------

    def receive(self, body: bytes) -> None:
        """Handle one framed message body."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            self._reject(None, PARSE_ERROR, f"the message is not JSON ({_brief(exc)})", f"{len(body)} bytes")
            return
        if not isinstance(data, dict):
            # A JSON-RPC batch is an array; LSP does not use batches.
            self._reject(None, INVALID_REQUEST, f"a message must be a JSON object, not {_json_type(data)}", "")
            return
        method, msg_id = data.get("method"), data.get("id")
        has_id = "id" in data
        if has_id and (not isinstance(msg_id, _ID_TYPES) or isinstance(msg_id, bool)):
            self._reject(None, INVALID_REQUEST, f"an id must be a number or a string, not {_json_type(msg_id)}",
                         str(method)[:80])
            return
        reply_id = msg_id if has_id and "method" in data else None  # responses get no reply
        if data.get("jsonrpc") != "2.0":
            self._reject(reply_id, INVALID_REQUEST, 'the message lacks "jsonrpc": "2.0"', str(method)[:80])
            return
        if "method" in data and not isinstance(method, str):
            self._reject(reply_id, INVALID_REQUEST, "the method must be a string", "")
            return
        if "method" not in data and not has_id:
            self._reject(None, INVALID_REQUEST, "the message is neither a request, a notification nor a response", "")
            return
        if self._workspace is None and has_id and method not in (None, types.INITIALIZE):
            self._reject(msg_id, SERVER_NOT_INITIALIZED, "the server is not initialized yet", str(method)[:80])
            return
        try:
            message = self.structure_message(data)
        except InvalidMessage as exc:
            self._reject(reply_id, exc.code, str(exc), f"{method} (id {msg_id})" if has_id else str(method))
            if method == types.TEXT_DOCUMENT_DID_CHANGE:
                self._lost_change(data, str(exc))
            return
        try:
            self.handle_message(message)
        except (InvalidMessage, JsonRpcException) as exc:
            self._reject(reply_id, getattr(exc, "code", INTERNAL_ERROR), str(exc), str(method))
        except Exception as exc:  # noqa: BLE001 - one bad message must not end the session
            log.debug("handling %s failed", method, exc_info=True)
            self._reject(reply_id, INTERNAL_ERROR, f"the server failed to handle it: {_brief(exc)}", str(method))

    def structure_message(self, data: dict[str, Any]) -> Any:
        """The typed message for a parsed JSON object (which `receive` has checked is JSON-RPC)."""
        if "jsonrpc" not in data:
            return data  # not a message: pygls' JSON reader passes nested objects through here too
        if "method" in data and "params" not in data:
            # JSON-RPC makes `params` optional, and vscode-jsonrpc omits it for `sendRequest(method)`.
            # pygls 2.1 fails to read such a message for a custom method and never answers (the
            # editor's `vllm-ls/stats` would hang): read a missing `params` as null.
            data = {**data, "params": None}
        method = data.get("method")
        if "id" in data and "error" in data:
            kind: Any = types.ResponseErrorMessage
        elif "id" in data and method is not None:
            kind = self.get_message_type(method) or JsonRPCRequestMessage
        elif "id" in data:
            kind = self._result_types.pop(data["id"], None) or JsonRPCResponseMessage
        else:
            kind = self.get_message_type(method) or JsonRPCNotification
        try:
            return self._converter.structure(data, kind)
        except (BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise InvalidMessage(INVALID_PARAMS, f"invalid params: {_validation_summary(exc)}") from None

    def handle_message(self, message: Any) -> None:
        """Refuse what the session's state does not allow (before initialize, after shutdown)."""
        method = getattr(message, "method", None)
        is_request = method is not None and hasattr(message, "id")
        if self._shutdown and method != types.EXIT:
            if is_request:
                raise InvalidMessage(INVALID_REQUEST, "the server is shutting down")
            log.warning("ignored %s after shutdown", method)
            return
        if self._workspace is None and method is not None and method not in (types.INITIALIZE, types.EXIT):
            if is_request:
                raise InvalidMessage(SERVER_NOT_INITIALIZED, "the server is not initialized yet")
            log.warning("ignored %s before initialize", method)
            return
        super().handle_message(message)

    def _handle_response(self, msg_id, result=None, error=None):  # noqa: ANN001, ANN202
        # A reply to a request of ours we stopped waiting for (a progress token asked for while the
        # engine loads, then the load was cancelled at shutdown): pygls would set a result on the
        # cancelled future, which raises. The reply is simply late; drop it.
        future = self._request_futures.get(msg_id)
        if future is not None and future.done():
            del self._request_futures[msg_id]
            log.debug("a reply to request %s came after we stopped waiting for it", msg_id)
            return
        super()._handle_response(msg_id, result, error)

    def _handle_cancel_notification(self, msg_id):  # noqa: ANN001, ANN202
        # A cancel for a request already answered is normal: VS Code cancels the previous
        # keystroke's request before every keystroke, answered or not. pygls logs a warning for
        # each (one per keystroke in the default log); it is not news.
        if msg_id not in self._request_futures:
            log.debug("cancel for request %s, already answered", msg_id)
            return
        # When the reason to stop arrived, for the request's trace (taken by the handler at once).
        self.cancelled_at[msg_id] = time.monotonic()
        while len(self.cancelled_at) > 256:  # entries of requests that were not completions
            del self.cancelled_at[next(iter(self.cancelled_at))]
        super()._handle_cancel_notification(msg_id)

    def _reject(self, msg_id: int | str | None, code: int, reason: str, what: str) -> None:
        self.rejected += 1
        log.warning("rejected a message%s: %s", f" ({what})" if what else "", reason)
        if msg_id is None and code not in (PARSE_ERROR, INVALID_REQUEST):
            return  # a notification or a response: nobody waits for an answer
        # A plain object: lsprotocol's converter leaves out a null id, and JSON-RPC requires it
        # (a reply without an id reads as a broken notification to clients).
        self._send_data({"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": reason}})

    # -- documents ------------------------------------------------------------------------------
    # pygls' built-in handlers would split lines where LSP does not; these keep the store exact and
    # then hand over to the features' own handlers, as pygls' do.

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams):
        self.documents.opened(params.text_document)
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_OPEN)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        if not self.documents.changed(params):
            return
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams):
        self.documents.closed(params.text_document.uri)
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CLOSE)) is not None:
            yield handler, (params,), None

    def _lost_change(self, data: dict[str, Any], reason: str) -> None:
        """A didChange that could not even be read: its document may now differ from the editor's."""
        params = data.get("params")
        document = params.get("textDocument") if isinstance(params, dict) else None
        uri = document.get("uri") if isinstance(document, dict) else None
        if isinstance(uri, str) and self._workspace is not None:
            self.documents.lost_change(uri, f"a change could not be read ({reason[:120]})")


def report_server_error(error: Exception, source: Any) -> None:
    """pygls' report for errors outside a request: one log line, no popup (pygls' default shows
    every failed notification to the user), and no message content."""
    log.warning("%s: %s", getattr(source, "__name__", source), _brief(error))
    log.debug("details", exc_info=error)


async def serve(read: Callable[[], Awaitable[bytes]], protocol: GuardedProtocol) -> None:
    """Read messages until the client closes the stream."""
    decoder = FrameDecoder()
    while True:
        try:
            data = await read()
        except (ConnectionError, OSError) as exc:
            log.info("the connection to the client failed: %s", _brief(exc))
            return
        if not data:
            return
        for event in decoder.feed(data):
            if isinstance(event, Frame):
                protocol.receive(event.body)
            else:
                protocol.rejected += 1
                log.warning("skipped %d bytes on the input: %s", event.size, event.reason)


def _brief(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:limit]


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number",
            type(None): "null", dict: "an object"}.get(type(value), type(value).__name__)


def _validation_summary(exc: BaseException, limit: int = 300) -> str:
    """The innermost reasons of a cattrs validation error, with the attribute path they concern."""
    reasons: list[str] = []

    def walk(error: BaseException, path: str) -> None:
        if isinstance(error, BaseValidationError):
            notes = getattr(error, "__notes__", None) or []
            for child, note in zip(error.exceptions, _pad(notes, len(error.exceptions))):
                walk(child, path + _attribute(note))
        else:
            text = str(error).strip()
            if isinstance(error, KeyError):
                text = f"missing {text}"
            reasons.append(f"{path.lstrip('.') or 'params'}: {text}" if path else text)

    walk(exc, "")
    summary = "; ".join(dict.fromkeys(reasons)) or _brief(exc)
    return summary[:limit]


def _pad(notes: list[Any], n: int) -> list[str]:
    # cattrs adds one note per sub-exception, in order ("Structuring class X @ attribute y").
    texts = [str(note) for note in notes]
    return (texts + [""] * n)[:n] if len(texts) != n else texts


def _attribute(note: str) -> str:
    if "@ attribute " in note:
        return "." + note.rsplit("@ attribute ", 1)[1].strip()
    if "@ index " in note:
        return f"[{note.rsplit('@ index ', 1)[1].strip()}]"
    return ""
