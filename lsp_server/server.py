"""The composition root: builds the language server from its parts and registers the features.
Nothing else lives here."""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from . import __version__
from .completion.completer import Completer
from .completion.context import RecentDocuments
from .completion.counters import ServerCounters
from .completion.scheduler import Scheduler
from .completion.speculation import Speculation
from .completion.offers import Offers
from .completion.trace import TraceLog
from .features import completion, documents, inline_completion, lifecycle, outcomes, stats
from .hosting.engine_host import EngineHost
from .loop_lag import LoopLag
from .protocol.guard import GuardedProtocol, report_server_error
from .settings import Settings, parse_settings

log = logging.getLogger(__name__)

FEATURES = (lifecycle, documents, inline_completion, completion, stats, outcomes)


class VllmLanguageServer(LanguageServer):
    """The server and the objects the features share (each with one job)."""

    protocol: GuardedProtocol

    def __init__(self, base_settings: dict[str, Any] | None = None, trace_file: str | None = None):
        super().__init__("vllm-ls", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
                         protocol_cls=GuardedProtocol)
        self.base_settings = dict(base_settings or {})
        self._deprecations_logged: set[str] = set()
        self.settings: Settings = self._parse(None, "command line")
        self.counters = ServerCounters()
        self.host = EngineHost(
            notify=lambda method, payload: self.protocol.notify(method, payload),
            show_message=self._show_message,
            progress=self._progress_if_supported,
        )
        self.scheduler = Scheduler(
            cancel_previous=lambda: self.settings.scheduling.cancel_previous,
            max_in_flight=lambda: self.settings.scheduling.max_in_flight,
        )
        self.completer = Completer(self.host, self.counters, lambda: self.settings)
        self.speculation = Speculation(self.completer, self.scheduler, self.host, self.counters,
                                       lambda: self.settings, self._document_text)
        self.offers = Offers(self.counters)
        self.recent = RecentDocuments()
        self.traces = TraceLog(trace_file)  # one record per completion (completion/trace.py)
        self.loop_lag = LoopLag()

    @property
    def position_encoding(self) -> str:
        return str(self.workspace.position_encoding or types.PositionEncodingKind.Utf16)

    def apply_settings(self, raw: Any) -> None:
        """Adopt client settings; bad fields fall back to defaults and the user is told which."""
        if raw is None:
            return
        self.settings = self._parse(raw, "settings")
        log.info("settings: %s", self.settings.public_dict())

    def _parse(self, raw: Any, source: str) -> Settings:
        deprecations: list[str] = []
        settings, problems = parse_settings(raw, self.base_settings, deprecations)
        for note in deprecations:
            if note not in self._deprecations_logged:  # once per old key, not at every change
                self._deprecations_logged.add(note)
                log.warning("%s: %s", source, note)
        if problems:
            log.warning("%s problems: %s", source, "; ".join(problems))
            if raw is not None:
                self._show_message("vllm-ls settings: " + "; ".join(problems), error=False)
        return settings

    def _document_text(self, uri: str) -> str | None:
        document = self.protocol.documents.get(uri, quiet=True)
        return document.source if document is not None else None

    def report_server_error(self, error: Exception, source: Any) -> None:
        report_server_error(error, source)

    def start_engine(self) -> None:
        self.host.start(self.settings.engine)

    def _progress_if_supported(self) -> Any:
        window = self.client_capabilities.window
        return self.work_done_progress if window is not None and window.work_done_progress else None

    def _show_message(self, message: str, error: bool = True) -> None:
        kind = types.MessageType.Error if error else types.MessageType.Warning
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))
        self.window_log_message(types.LogMessageParams(type=kind, message=message))


def build_server(base_settings: dict[str, Any] | None = None, trace_file: str | None = None) -> VllmLanguageServer:
    """A server ready to serve, with `base_settings` (e.g. from the command line) under the editor's;
    `trace_file` gets a JSON line per completion."""
    server = VllmLanguageServer(base_settings, trace_file)
    for module in FEATURES:
        for method, options, handler in module.HANDLERS:
            server.feature(method, options)(handler)
        for name, handler in getattr(module, "COMMANDS", ()):
            server.command(name)(handler)
    return server


__all__ = ["VllmLanguageServer", "build_server", "Settings"]
