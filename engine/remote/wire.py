"""Pure helpers for talking to a vLLM OpenAI-compatible server: nothing here does I/O.

- `LineSplitter`: a response body's lines, bounded in length and in total.
- `SseDecoder`: the `text/event-stream` framing of `/v1/completions` with `stream: true`.
- `ChunkReader`: completion chunks → per-choice deltas with token counts (from continuous usage).
- `StopMatcher`: stop strings the server cannot take (vLLM accepts at most 4), applied client-side.
- `parse_retry_after`, `parse_prometheus`, `error_message`: small parsers for headers and bodies.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: vLLM's `/v1/completions` answers HTTP 400 to more stop strings than this.
MAX_SERVER_STOPS = 4

DONE = "[DONE]"


class WireError(ValueError):
    """The server sent something we cannot read (not JSON, an error event, ...)."""


class LineSplitter:
    """Text chunks in, complete lines out (without their line break), never holding more than
    `max_line` characters of an unfinished line nor reading more than `max_total` characters in
    all: a server that sends an endless line or an endless body gets a WireError, not our memory."""

    def __init__(self, max_line: int = 1 << 20, max_total: int = 16 << 20):
        self.max_line = max_line
        self.max_total = max_total
        self.total = 0
        self._pending = ""

    def feed(self, text: str) -> list[str]:
        self.total += len(text)
        if self.total > self.max_total:
            raise WireError(f"the response is larger than {self.max_total} characters")
        lines = (self._pending + text).split("\n")
        self._pending = lines.pop()
        if len(self._pending) > self.max_line:
            raise WireError(f"the server sent a line longer than {self.max_line} characters")
        return [line.rstrip("\r") for line in lines]

    def close(self) -> list[str]:
        """The stream ended: an unfinished last line still counts."""
        pending, self._pending = self._pending, ""
        return [pending.rstrip("\r")] if pending else []


class SseDecoder:
    """Lines of an event stream in, `data` payloads out (one per event).

    Follows the framing rules that matter for completions: `data:` fields of one event are joined
    with newlines, an empty line ends the event, lines starting with `:` are comments, other fields
    (`event:`, `id:`, `retry:`) are ignored.
    """

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        """One line without its line break; returns the event's data when the line ends an event."""
        line = line.rstrip("\r\n")
        if not line:
            return self._flush()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None

    def close(self) -> str | None:
        """The stream ended: an event not terminated by an empty line still counts."""
        return self._flush()

    def _flush(self) -> str | None:
        if not self._data:
            return None
        data, self._data = "\n".join(self._data), []
        return data


@dataclass(frozen=True)
class ChunkDelta:
    """New text of one choice in one chunk."""

    index: int
    text: str
    tokens: int
    finish_reason: str | None = None
    prompt_tokens: int | None = None  # on the first delta of the request, when the server reports it


@dataclass
class ChunkReader:
    """Turns parsed completion chunks into deltas, tracking per-choice token counts.

    With `stream_options.continuous_usage_stats` vLLM puts the cumulative `completion_tokens` of the
    chunk's choice in every chunk, so a delta's token count is exact (text held back for stop
    strings still counts its tokens). Without it, each chunk counts as one token (one decode step).
    The final usage chunk (no choices) carries `prompt_tokens_details.cached_tokens` when the server
    runs with `--enable-prompt-tokens-details`.
    """

    cumulative: dict[int, int] = field(default_factory=dict)
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    completion_tokens: int | None = None  # the server's final count, from the usage chunk
    _prompt_reported: bool = False

    def read(self, payload: str) -> list[ChunkDelta]:
        try:
            chunk = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise WireError(f"the server sent a stream event that is not JSON: {payload[:120]!r}") from exc
        if not isinstance(chunk, dict):
            raise WireError(f"the server sent an unexpected stream event: {payload[:120]!r}")
        if "error" in chunk:
            raise WireError(f"the server reported an error mid-stream: {error_message(chunk)}")
        usage = chunk.get("usage") if isinstance(chunk.get("usage"), dict) else None
        if usage is not None and self.prompt_tokens is None and isinstance(usage.get("prompt_tokens"), int):
            self.prompt_tokens = usage["prompt_tokens"]
        choices = chunk.get("choices") or []
        if not choices:
            if usage is not None:  # the final usage chunk
                details = usage.get("prompt_tokens_details")
                if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
                    self.cached_tokens = details["cached_tokens"]
                if isinstance(usage.get("completion_tokens"), int):
                    self.completion_tokens = usage["completion_tokens"]
            return []
        deltas = []
        for choice in choices:
            index = int(choice.get("index", 0))
            total = usage.get("completion_tokens") if usage is not None else None
            before = self.cumulative.get(index, 0)
            if isinstance(total, int) and len(choices) == 1:
                tokens = max(0, total - before)
                self.cumulative[index] = max(before, total)
            else:
                tokens = 1
                self.cumulative[index] = before + 1
            prompt = None
            if not self._prompt_reported and self.prompt_tokens is not None:
                prompt, self._prompt_reported = self.prompt_tokens, True
            deltas.append(ChunkDelta(
                index=index, text=str(choice.get("text") or ""), tokens=tokens,
                finish_reason=choice.get("finish_reason"), prompt_tokens=prompt,
            ))
        return deltas


class StopMatcher:
    """Client-side stop strings for one choice, applied incrementally to streamed text.

    `feed()` returns the text that is safe to pass on and whether a stop string was hit. Text that
    could be the start of a stop string is held back until the next delta settles it; `flush()`
    releases it when the stream ends without a stop.
    """

    def __init__(self, stops: Iterable[str]):
        self._stops = tuple(s for s in stops if s)
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> tuple[str, bool]:
        if self.stopped:
            return "", True
        if not self._stops:
            return text, False
        buffer = self._pending + text
        cut = first_stop(buffer, self._stops)
        if cut is not None:
            self.stopped, self._pending = True, ""
            return buffer[:cut], True
        keep = _longest_partial_stop(buffer, self._stops)
        self._pending = buffer[len(buffer) - keep:] if keep else ""
        return buffer[: len(buffer) - keep], False

    def flush(self) -> str:
        pending, self._pending = self._pending, ""
        return "" if self.stopped else pending


def first_stop(text: str, stops: Iterable[str], start: int = 0) -> int | None:
    """Where `text` ends at a stop string found from `start`, or None.

    The stop that *completes* first wins (ties: the longer one), as when a server checks stops
    token by token. That makes the cut independent of how a stream was chunked.
    """
    hits = [(i + len(stop), i) for stop in stops if stop and (i := text.find(stop, start)) != -1]
    return min(hits)[1] if hits else None


def _longest_partial_stop(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest end of `text` that is a proper beginning of some stop string."""
    best = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:k]):
                best = k
                break
    return best


def split_stops(stops: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(stops the server applies, stops we apply ourselves): the server takes at most 4."""
    unique = tuple(dict.fromkeys(s for s in stops if s))
    return unique[:MAX_SERVER_STOPS], unique[MAX_SERVER_STOPS:]


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date. None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if now is None:
        import time

        now = time.time()
    return max(0.0, when.timestamp() - now)


_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+\S+)?$")


def parse_prometheus(text: str, names: Iterable[str]) -> dict[str, float]:
    """Sum of every sample of each metric in `names` (across labels: engines, models) in the text
    exposition format. Metrics that are absent are absent from the result."""
    wanted = set(names)
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line.strip())
        if match is None or match.group(1) not in wanted:
            continue
        try:
            value = float(match.group(3))
        except ValueError:
            continue
        if math.isfinite(value):
            totals[match.group(1)] = totals.get(match.group(1), 0.0) + value
    return totals


def error_message(body: Any, limit: int = 300) -> str:
    """The human part of an OpenAI-style error body (`{"error": {"message": ...}}` or
    `{"message": ...}` or plain text), shortened."""
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except json.JSONDecodeError:
            text = body.strip()
            return text[:limit] + ("…" if len(text) > limit else "")
    message: Any = body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            message = error.get("message") or error.get("detail") or error
        elif isinstance(error, str):
            message = error
        if isinstance(body.get("detail"), str):
            message = body["detail"]
    text = message if isinstance(message, str) else json.dumps(message)[:limit]
    text = text.strip()
    return text[:limit] + ("…" if len(text) > limit else "")
