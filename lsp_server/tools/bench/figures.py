"""The figures of a replay, from the server's counters and the client's own record. Pure.

Server side (`vllm-ls/stats`, sampled before and after the replay; the engine is idle at both):
- engine requests per 100 keystrokes: `engine_requests_started` / keystrokes × 100;
- waste ratio: 1 - `tokens_shown` / `engine_tokens_generated` (engine work nobody was shown);
- tokens after a cancel: (`engine_tokens_generated` - `tokens_received`) / `engine_requests_aborted`,
  the tokens the engine computed after the server stopped reading, per request it stopped (a cancel,
  a newer keystroke, or the post-processor knowing the answer); None when nothing was stopped;
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
- completion latency: the keystroke-to-answer time of every non-empty answer, shown or too late.
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
    #: Until when an answer is still shown: the editor's next keystroke (when it was sent), or after
    #: the last keystroke the end of its planned pause.
    deadline: float | None = None

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


def server_figures(delta: Mapping[str, int], keystrokes: int) -> dict[str, Any]:
    generated = delta.get("engine_tokens_generated", 0)
    received = delta.get("tokens_received", 0)
    shown = delta.get("tokens_shown", 0)
    aborted = delta.get("engine_requests_aborted", 0)
    waste = ratio(generated - shown, generated)
    after_cancel = ratio(max(0, generated - received), aborted)
    hit = ratio(delta.get("prompt_tokens_cached", 0), delta.get("prompt_tokens", 0))
    return {
        "engine_requests_per_100_keystrokes": _round(100 * delta.get("engine_requests_started", 0) / keystrokes, 2)
        if keystrokes else None,
        # Nothing generated wastes nothing.
        "waste_ratio": _round(_clamp(waste), 4) if waste is not None else 0.0,
        "tokens_after_cancel": _round(after_cancel, 3),
        "prefix_cache_hit_ratio": _round(_clamp(hit), 4) if hit is not None else None,
    }


def client_figures(records: Iterable[RequestRecord]) -> dict[str, Any]:
    items = list(records)
    outcomes = {name: sum(r.outcome == name for r in items) for name in (COMPLETION, EMPTY, CANCELLED, ERROR, UNANSWERED)}
    pauses = [r for r in items if r.pause_after]
    served = [r.latency_ms for r in pauses if r.shown]
    return {
        "shown_latency_ms": latency_summary(served),
        "pauses": {"total": len(pauses), "served": len(served)},
        "shown_while_typing": sum(r.shown for r in items if not r.pause_after),
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


def run_figures(delta: Mapping[str, int], records: Sequence[RequestRecord], keystrokes: int) -> dict[str, Any]:
    figures = {**server_figures(delta, keystrokes), **client_figures(records)}
    styles = sorted({r.style for r in records})
    if len(styles) > 1:
        figures["by_style"] = {style: client_figures(r for r in records if r.style == style) for style in styles}
    return figures


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)
