"""How the completion pipeline reaches the engine: the one seam between `completion/` and whoever
owns the engine (`hosting.EngineHost` in the server, a plain wrapper in the bench).

The pipeline asks for a ready engine before each request and reports how the request went; the
owner decides what the user is told (a status, a popup once per episode) and when the engine is
rebuilt. Keeping this a protocol is what lets `completion/` know nothing of LSP.
"""

from __future__ import annotations

from typing import Protocol

from engine.base import Engine, EngineUnavailable


class EngineSource(Protocol):
    """The engine as the pipeline sees it."""

    def ready(self) -> Engine | None:
        """The engine if it can serve a request now; None while it loads, restarts or is down."""

    def request_failed(self, engine: Engine, error: EngineUnavailable) -> None:
        """An engine request failed (the engine's state says whether it is down, dead or busy)."""

    def request_succeeded(self, latency_ms: float) -> None:
        """An engine request went through in `latency_ms`, from the editor's request to the answer."""
