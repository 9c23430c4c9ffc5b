"""The custom protocol vllm-ls speaks beside LSP: its method names and their payloads.

- `vllm-ls/status` (server → client notification): the engine's state for a status bar:
  `{"state", "message", "engine", "lastLatencyMs"}`; `state` is one of loading, ready, failed,
  unavailable, overloaded, degraded, restarting.
- `vllm-ls/stats` (client → server request, no params): integer counters since start. A contract
  other tools rely on: `engine_requests_started`, `engine_requests_finished`,
  `engine_requests_aborted`, `engine_requests_in_flight`, `engine_tokens_generated` (the engine's
  own accounting), `tokens_received`, `tokens_shown`, `prompt_tokens`, `prompt_tokens_cached`,
  `completions_returned`, `completions_from_cache`, `requests_debounced`, and more. Counters may be
  added; these names are never renamed. `engine_tokens_generated - tokens_shown` is all wasted
  generation.
  What the engine computed that nobody read: in-process, vLLM's frontend (which counts
  `engine_tokens_generated` there) forgets a request when it is aborted, so it cannot see the work
  done after a stop; the engine core's own outputs can, and `engine_core_tokens_unread` (of
  `engine_core_tokens_generated`) counts it (engine/core_tally.py). With a remote server it is
  `engine_tokens_generated - tokens_received`: that server's frontend counts until it sees the
  connection close.
  `completions_shown`, `completions_accepted`, `completions_partially_accepted`,
  `completions_dismissed` and `characters_accepted` count what editors reported the user did.
- `textDocument/didShowCompletion`, `textDocument/didPartiallyAcceptCompletion` (client → server
  notifications) and the command `vllm-ls.acceptCompletion` that every item carries with its id:
  what the user did with a suggestion (features/outcomes.py).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from engine.base import EngineCounters

from .completion.counters import ServerCounters

STATUS_NOTIFICATION = "vllm-ls/status"
STATS_REQUEST = "vllm-ls/stats"

# What the user did with a suggestion (features/outcomes.py): the names Copilot's language server
# uses, so editors written for it report here unchanged. Items carry ACCEPT_COMMAND with their id.
ACCEPT_COMMAND = "vllm-ls.acceptCompletion"
DID_SHOW_COMPLETION = "textDocument/didShowCompletion"  # {"item": <the item>}
DID_PARTIALLY_ACCEPT_COMPLETION = "textDocument/didPartiallyAcceptCompletion"  # {"item", "acceptedLength"}


def stats_payload(
    server: ServerCounters, engine: EngineCounters, state: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The `vllm-ls/stats` answer: the engine's counters, then the server's, then the engine's state
    and its details (remote endpoints and their health)."""
    payload: dict[str, Any] = {
        "engine_requests_started": engine.requests_started,
        "engine_requests_finished": engine.requests_finished,
        "engine_requests_aborted": engine.requests_aborted,
        "engine_requests_failed": engine.requests_failed,
        "engine_requests_in_flight": engine.requests_in_flight,
        "engine_tokens_generated": engine.tokens_generated,
        "prompt_tokens": engine.prompt_tokens,
        "prompt_tokens_cached": engine.prompt_tokens_cached,
    }
    # The engine core's own accounting, where the engine has one (in-process: engine/core_tally.py).
    for key, value in (
        ("engine_core_tokens_generated", engine.core_tokens_generated),
        ("engine_core_tokens_unread", engine.core_tokens_unread),
        ("engine_core_tokens_after_stop", engine.core_tokens_after_stop),
        ("engine_core_requests_stopped", engine.core_requests_stopped),
        ("engine_core_requests_running", engine.core_requests_running),
    ):
        if value is not None:
            payload[key] = value
    payload.update(asdict(server))
    payload["engine_state"] = state
    payload.update(details or {})
    return payload
