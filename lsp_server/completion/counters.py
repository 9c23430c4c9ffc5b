"""The server's own counters and the `vllm-ls/stats` payload (a contract other tools rely on).

Engine counters come from the engine's own accounting; the server adds what it received and showed.
`engine_tokens_generated - tokens_received` is what the engine computed that nobody read (work
after a cancel); `engine_tokens_generated - tokens_shown` is all wasted generation.
Counters may be added; these names are never renamed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from engine.base import EngineCounters


@dataclass
class ServerCounters:
    tokens_received: int = 0  # tokens in the deltas the server consumed
    tokens_shown: int = 0  # tokens in completions returned to the editor
    completions_requested: int = 0
    completions_returned: int = 0  # non-empty answers
    completions_empty: int = 0
    completions_from_cache: int = 0
    completions_superseded: int = 0  # answered empty because a newer request took over
    completions_cancelled: int = 0  # cancelled by the client ($/cancelRequest)
    requests_debounced: int = 0  # superseded before reaching the engine
    engine_errors: int = 0
    candidates_returned: int = 0  # distinct candidates returned for explicitly invoked requests
    debounce_ms: int = 0  # the debounce interval used last (adaptive or fixed)
    engine_rejected: int = 0  # turned away at once by an overloaded engine (HTTP 429/503)
    completions_timed_out: int = 0  # answered empty when requestTimeoutMs ran out (engine work aborted)
    messages_rejected: int = 0  # client messages answered with an error or dropped (malformed, invalid params)
    engine_restarts: int = 0  # the in-process engine rebuilt after it died
    requests_shed: int = 0  # answered empty: every engine slot taken and newer requests waiting (maxInFlight)
    requests_waiting: int = 0  # now, not since start: requests waiting for an engine slot (maxInFlight)
    handlers_pending: int = 0  # now, not since start: handlers running or held by pygls (0 when idle)


def stats_payload(
    server: ServerCounters, engine: EngineCounters, state: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
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
    payload.update(asdict(server))
    payload["engine_state"] = state
    payload.update(details or {})
    return payload
