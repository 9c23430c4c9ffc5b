"""The figures of a replay, from the server's counters and the client's own record. Pure.

Server side (`vllm-ls/stats`, sampled before and after the replay; the engine is idle at both):
- engine requests per 100 keystrokes: `engine_requests_started` / keystrokes × 100;
- the engine's own word (`engine_truth`): in-process the engine core's counters (`engine_core_*`),
  remote vLLM's `/metrics` read by the bench around the replay;
- waste ratio: 1 - `tokens_shown` / generated (engine work nobody was shown);
- tokens after a cancel: tokens the engine generated that nobody read, per request the server
  stopped before the engine finished it (a cancel, a newer keystroke, the post-processor knowing the
  answer, a deadline): in-process `engine_core_tokens_unread` / `engine_core_requests_stopped`,
  remote (vLLM's count - `tokens_received`) / `engine_requests_aborted`; None when nothing was stopped;
- prefix-cache hit ratio: `prompt_tokens_cached` / `prompt_tokens`.

Client side (the bench's record of every request). A completion is *shown* when the answer is
non-empty and arrives before the editor's next keystroke: after it, VS Code has cancelled the
request and Neovim drops answers for an older version of the buffer. After the last keystroke the
end of the pause the plan gives it plays that part (the bench still waits for every answer, but one
that comes later is not counted as shown).
- shown latency: per typing pause, the time from sending the `didChange` of the keystroke before the
  pause to the completion shown for it; pauses where none was shown before typing resumed have no
  latency and count as not served. This is the wait a user sees when they stop to look;
- pauses served: of the pauses, how many got a completion shown;
- shown while typing: completions shown at keystrokes inside a burst (mostly the typed-ahead cache
  answering as the user types what the suggestion said);
- completion latency: the keystroke-to-answer time of every non-empty answer, shown or too late;
- accepts: the user accepted a shown suggestion that agreed with what it meant to type (inserted in
  one edit, `acceptance.py`); accept latency is the time from that edit to the next completion shown
  at the new cursor (the user looks after an accept; an accept with nothing shown before the user
  types on has no latency and counts as not served). Accepted share: characters inserted by accepts
  of all characters inserted;
- tokens shown per engine token: `tokens_shown` / `engine_tokens_generated` (1 - waste);
- speculation share: `speculation_tokens` / generated, the engine work spent on speculation;
- accept latency by source (with the servers' traces, `--trace`): the accepts served from the
  typed-ahead cache (the next lines were already generated), from an engine stream still running
  (reused), or by a new engine request.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Outcomes of one request, as the client saw it.
COMPLETION, EMPTY, CANCELLED, ERROR, UNANSWERED = "completion", "empty", "cancelled", "error", "unanswered"


@dataclass
class RequestRecord:
    editor: int
    style: str
    index: int  # the keystroke's index in its editor's plan
    sent: float  # perf_counter when the keystroke's didChange was sent
    pause_after: bool
    answered: float | None = None
    outcome: str = UNANSWERED
    text: str = ""
    item: Any = None  # the first item answered (it carries the server's accept command)
    #: Until when an answer is still shown: the editor's next keystroke (when it was sent), or after
    #: the last keystroke the end of its planned pause.
    deadline: float | None = None
    #: The action was an accepted suggestion (Tab), not a typed key; `inserted` is what it inserted.
    accepted: bool = False
    inserted: str = ""
    #: perf_counter since when the user has seen this suggestion (`acceptance.seen_since`).
    seen_since: float | None = None
    #: The LSP request id (the server's trace record of it carries the same id).
    request_id: str = ""
    #: What the user did with it was reported to the server (didShowCompletion, the accept command).
    reported: bool = False

    @property
    def shown(self) -> bool:
        return (self.outcome == COMPLETION and self.answered is not None
                and (self.deadline is None or self.answered <= self.deadline))

    @property
    def latency_ms(self) -> float | None:
        return None if self.answered is None else (self.answered - self.sent) * 1000


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(values_ms: Sequence[float]) -> dict[str, Any]:
    p50, p95 = percentile(values_ms, 50), percentile(values_ms, 95)
    return {"p50": _round(p50), "p95": _round(p95), "n": len(values_ms)}


def stats_delta(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, int]:
    """Integer counters that grew (or not) between two `vllm-ls/stats` answers."""
    return {
        key: after[key] - before[key]
        for key in after
        if isinstance(after[key], int) and not isinstance(after[key], bool) and isinstance(before.get(key), int)
    }


def ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator <= 0 else numerator / denominator


def engine_truth(delta: Mapping[str, int], server_generated: float | None = None) -> dict[str, Any]:
    """What the engine generated and what of it nobody read, per request stopped before the engine
    finished it, from the engine's own accounting: in-process the engine core (`engine_core_*`:
    vLLM's frontend forgets a request when it is aborted), remote vLLM's `/metrics` as the bench read
    it (`server_generated`), else the server's `engine_tokens_generated`."""
    received = delta.get("tokens_received", 0)
    frontend = delta.get("engine_tokens_generated", 0)
    after_stop = None
    if "engine_core_tokens_unread" in delta:
        source, generated = "engine core", delta.get("engine_core_tokens_generated", 0)
        unread, stopped = delta["engine_core_tokens_unread"], delta.get("engine_core_requests_stopped", 0)
        after_stop = delta.get("engine_core_tokens_after_stop", 0)
    else:
        source = "vLLM /metrics" if server_generated is not None else "engine_tokens_generated"
        generated = int(server_generated) if server_generated is not None else frontend
        unread, stopped = max(0, generated - received), delta.get("engine_requests_aborted", 0)
    return {
        "source": source,
        "generated": generated,
        "received": received,
        "requests_stopped": stopped,
        "unread": unread,
        "unread_per_stop": _round(ratio(unread, stopped), 3),
        # In-process only: the part of `unread` that reached the server after the stop (the rest
        # was waiting in vLLM's queue, read late).
        "after_stop_per_stop": _round(ratio(after_stop, stopped), 3) if after_stop is not None else None,
        # The old figure, from vLLM's frontend counter: blind to work after an abort in-process.
        "frontend_unread_per_stop": _round(ratio(max(0, frontend - received), stopped), 3),
    }


def server_figures(delta: Mapping[str, int], keystrokes: int, server_generated: float | None = None) -> dict[str, Any]:
    truth = engine_truth(delta, server_generated)
    generated = truth["generated"]
    shown = delta.get("tokens_shown", 0)
    per_token = ratio(shown, generated)
    waste = ratio(generated - shown, generated)
    hit = ratio(delta.get("prompt_tokens_cached", 0), delta.get("prompt_tokens", 0))
    return {
        "engine_requests_per_100_keystrokes": _round(100 * delta.get("engine_requests_started", 0) / keystrokes, 2)
        if keystrokes else None,
        # Nothing generated wastes nothing.
        "waste_ratio": _round(_clamp(waste), 4) if waste is not None else 0.0,
        "tokens_shown_per_engine_token": _round(per_token, 4),
        # The share of the engine's work that went into speculation (None: the server does not speculate).
        "speculation_share": _round(ratio(delta["speculation_tokens"], generated), 4)
        if "speculation_tokens" in delta else None,
        # Tokens the engine made that nobody read, per request stopped early (None: none stopped).
        "tokens_after_cancel": truth["unread_per_stop"],
        "engine_truth": truth,
        "prefix_cache_hit_ratio": _round(_clamp(hit), 4) if hit is not None else None,
        # What the replay's typist reported: every suggestion on screen at its next keystroke is
        # shown; one that the text typed next begins with would have been taken (Tab).
        "acceptance": {
            "shown": delta.get("completions_shown", 0),
            "accepted": delta.get("completions_accepted", 0),
            "dismissed": delta.get("completions_dismissed", 0),
            "ratio": _round(ratio(delta.get("completions_accepted", 0), delta.get("completions_shown", 0)), 4),
        },
    }


def client_figures(records: Iterable[RequestRecord]) -> dict[str, Any]:
    items = list(records)
    outcomes = {name: sum(r.outcome == name for r in items) for name in (COMPLETION, EMPTY, CANCELLED, ERROR, UNANSWERED)}
    pauses = [r for r in items if r.pause_after and not r.accepted]
    served = [r.latency_ms for r in pauses if r.shown]
    accepts = [r for r in items if r.accepted]
    after_accept = [r.latency_ms for r in accepts if r.shown]
    inserted = sum(len(r.inserted) for r in items)
    accepted_chars = sum(len(r.inserted) for r in accepts)
    return {
        "shown_latency_ms": latency_summary(served),
        "pauses": {"total": len(pauses), "served": len(served)},
        "pauses_served_ratio": _round(ratio(len(served), len(pauses)), 4),
        "shown_while_typing": sum(r.shown for r in items if not r.pause_after and not r.accepted),
        "accept_latency_ms": latency_summary(after_accept),
        "accepts": {"total": len(accepts), "served": len(after_accept), "chars": accepted_chars},
        "accepted_share": _round(ratio(accepted_chars, inserted), 4),
        "completion_latency_ms": latency_summary([r.latency_ms for r in items
                                                  if r.outcome == COMPLETION and r.latency_ms is not None]),
        "requests": {
            "sent": len(items),
            # Every request gets an answer: a completion, an empty list or the cancellation error.
            "answered": len(items) - outcomes[UNANSWERED],
            "shown": sum(r.shown for r in items),
            **outcomes,
        },
    }


#: Where an answer came from, by the server's trace record of it (completion/trace.py).
SOURCES = ("cache", "stream", "engine")


def trace_source(trace: Mapping[str, Any]) -> str | None:
    """`cache`, `stream` (a live stream another request started, waited on without a debounce) or
    `engine` (a new engine request); None for an answer that showed nothing."""
    if trace.get("ended") == "cached":
        return "cache"
    if trace.get("ended") != "shown":
        return None
    if trace.get("engine_end") == "background" and trace.get("debounce_ms") is None:
        return "stream"
    return "engine"


def accept_latency_by_source(records: Iterable[RequestRecord], traces: Mapping[str, Mapping[str, Any]]
                             ) -> dict[str, dict[str, Any]]:
    """The accept latency of the accepts served, split by where their answer came from."""
    split: dict[str, list[float]] = {source: [] for source in SOURCES}
    for record in records:
        trace = traces.get(record.request_id)
        source = trace_source(trace) if trace is not None else None
        if record.accepted and record.shown and source is not None and record.latency_ms is not None:
            split[source].append(record.latency_ms)
    return {source: latency_summary(values) for source, values in split.items()}


def run_figures(delta: Mapping[str, int], records: Sequence[RequestRecord], keystrokes: int,
                server_generated: float | None = None) -> dict[str, Any]:
    figures = {**server_figures(delta, keystrokes, server_generated), **client_figures(records)}
    styles = sorted({r.style for r in records})
    if len(styles) > 1:
        figures["by_style"] = {style: client_figures(r for r in records if r.style == style) for style in styles}
    return figures


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)
