"""What the completion pipeline counts: requests, how they ended, and tokens received and shown.

These are the server's half of `vllm-ls/stats` (`lsp_server/contract.py` joins them with the
engine's own accounting). Counters may be added; names are never renamed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServerCounters:
    """Counters since start, kept by the pipeline and the features (plus a few gauges: "now")."""
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
    # What the user did with the suggestions, as editors report it (completion/offers.py).
    completions_shown: int = 0  # drawn on screen (textDocument/didShowCompletion), once per suggestion
    completions_accepted: int = 0  # taken whole (the item's accept command)
    completions_partially_accepted: int = 0  # taken in part (textDocument/didPartiallyAcceptCompletion)
    completions_dismissed: int = 0  # shown, then replaced or closed without any acceptance
    characters_accepted: int = 0  # characters of suggestions taken, whole or in part

