"""`vllm-ls/stats`: counters since start (the contract is in `lsp_server/contract.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..contract import STATS_REQUEST, stats_payload

if TYPE_CHECKING:
    from ..server import VllmLanguageServer

METHOD = STATS_REQUEST


async def stats(ls: VllmLanguageServer, params: Any) -> dict[str, Any]:
    """The `vllm-ls/stats` answer: the engine's and the server's counters (lsp_server/contract.py)."""
    await ls.host.refresh_counters()
    ls.counters.messages_rejected = ls.protocol.rejected
    ls.counters.engine_restarts = ls.host.supervisor.restarts
    ls.counters.handlers_pending = ls.protocol.handlers_pending - 1  # not counting this request
    ls.counters.requests_waiting = ls.scheduler.waiting
    ls.counters.streams_running = len(ls.completer.streams)
    details = ls.host.engine.details() if ls.host.engine is not None else {}
    # Not counters: the event loop's lag over the last minute (lsp_server/loop_lag.py).
    return {**stats_payload(ls.counters, ls.host.counters(), ls.host.state.value, details), **ls.loop_lag.summary()}


HANDLERS = ((METHOD, None, stats),)
