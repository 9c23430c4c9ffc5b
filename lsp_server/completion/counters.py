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
    # Engine streams that outlive their request (completion/streams.py).
    completions_answered_early: int = 0  # answered at a complete line, before the block was complete
    completions_from_stream: int = 0  # served by a stream another request started (no engine request)
    background_streams_started: int = 0  # streams that went on with nobody waiting for them
    background_tokens: int = 0  # tokens those streams received while nobody waited for them
    background_streams_finished: int = 0  # of those, ended by the engine (end of text, token limit)
    background_streams_aborted: int = 0  # of those, aborted; by reason:
    background_streams_aborted_contradicted: int = 0  # a keystroke contradicted what it generated
    background_streams_aborted_superseded: int = 0  # a newer request of its document needed the engine
    background_streams_aborted_complete: int = 0  # its block was complete (early stop)
    background_streams_aborted_overload: int = 0  # a request waited for its engine slot
    background_streams_aborted_closed: int = 0  # its document closed, or the server shut down
    background_streams_aborted_timeout: int = 0  # a request waiting on it ran out of requestTimeoutMs
    background_streams_aborted_unwanted: int = 0  # nobody could use it any more (settings turned off)
    background_streams_aborted_cancelled: int = 0  # the client cancelled its request and no keystroke took it over
    # Speculation (completion/speculation.py): streams at the text after accepting a suggestion.
    speculations_started: int = 0
    speculations_finished: int = 0  # ended by the engine or complete: their lines are in the cache
    speculations_aborted: int = 0  # stopped: a keystroke, a request that needed the engine, a close
    speculation_tokens: int = 0  # tokens the engine generated for them
    streams_running: int = 0  # now, not since start: engine streams being read, in the background or not
    # What the user did with the suggestions, as editors report it (completion/offers.py).
    completions_shown: int = 0  # drawn on screen (textDocument/didShowCompletion), once per suggestion
    completions_accepted: int = 0  # taken whole (the item's accept command)
    completions_partially_accepted: int = 0  # taken in part (textDocument/didPartiallyAcceptCompletion)
    completions_dismissed: int = 0  # shown, then replaced or closed without any acceptance
    characters_accepted: int = 0  # characters of suggestions taken, whole or in part

