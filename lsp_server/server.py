"""Builds the language server and registers the features. Nothing else lives here."""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from . import __version__
from .completion.completer import Completer
from .completion.context import RecentDocuments
from .hosting.engine_host import EngineHost
from .features import completion, documents, inline_completion, lifecycle, stats
from .protocol.guard import GuardedProtocol, report_server_error
from .completion.scheduler import Scheduler
from .settings import Settings, parse_settings
from .completion.counters import ServerCounters

log = logging.getLogger(__name__)

FEATURES = (lifecycle, documents, inline_completion, completion, stats)


class VllmProtocol(GuardedProtocol):
    def structure_message(self, data: dict[str, Any]) -> Any:
        # JSON-RPC makes `params` optional, and vscode-jsonrpc omits it for `sendRequest(method)`.
        # pygls 2.1 fails to read such a message for a custom method and never answers, so the
        # editor's `vllm-ls/stats` would hang: read a missing `params` as null.
        if "jsonrpc" in data and "method" in data and "params" not in data:
            data = {**data, "params": None}
        return super().structure_message(data)


class VllmLanguageServer(LanguageServer):
    """The server and the objects the features share (each with one job)."""

    def __init__(self, base_settings: dict[str, Any] | None = None):
        super().__init__("vllm-ls", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
                         protocol_cls=VllmProtocol)
        self.base_settings = dict(base_settings or {})
        self.settings, problems = parse_settings(None, self.base_settings)
        for problem in problems:
            log.warning("command line: %s", problem)
        self.counters = ServerCounters()
        self.host = EngineHost(
            notify=lambda method, payload: self.protocol.notify(method, payload),
            show_message=self._show_message,
            progress=self._progress_if_supported,
        )
        self.scheduler = Scheduler(
            cancel_previous=lambda: self.settings.cancel_previous,
            max_in_flight=lambda: self.settings.max_in_flight,
        )
        self.completer = Completer(self.host, self.counters, lambda: self.settings)
        self.recent = RecentDocuments()

    @property
    def position_encoding(self) -> str:
        return str(self.workspace.position_encoding or types.PositionEncodingKind.Utf16)

    def apply_settings(self, raw: Any) -> None:
        """Adopt client settings; bad fields fall back to defaults and the user is told which."""
        if raw is None:
            return
        self.settings, problems = parse_settings(raw, self.base_settings)
        log.info("settings: %s", self.settings.public_dict())
        if problems:
            log.warning("settings problems: %s", "; ".join(problems))
            self._show_message("vllm-ls settings: " + "; ".join(problems), error=False)

    def report_server_error(self, error: Exception, source: Any) -> None:
        report_server_error(error, source)

    def start_engine(self) -> None:
        self.host.start(self.settings)

    def _progress_if_supported(self) -> Any:
        window = self.client_capabilities.window
        return self.work_done_progress if window is not None and window.work_done_progress else None

    def _show_message(self, message: str, error: bool = True) -> None:
        kind = types.MessageType.Error if error else types.MessageType.Warning
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))
        self.window_log_message(types.LogMessageParams(type=kind, message=message))


def build_server(base_settings: dict[str, Any] | None = None) -> VllmLanguageServer:
    server = VllmLanguageServer(base_settings)
    for module in FEATURES:
        for method, options, handler in module.HANDLERS:
            server.feature(method, options)(handler)
    return server


__all__ = ["VllmLanguageServer", "build_server", "Settings"]
