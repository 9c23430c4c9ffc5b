"""The record of one completion request, for the user who asks "why was this slow, why did nothing
show": what was asked, what the engine did, how it ended and where the time went.

The feature handler creates a `Trace` per request and sets how it ended; the completer fills in the
rest as the request passes each stage. One JSON object per completion: logged at debug level
(`-vv`) and, with `serve --trace FILE`, appended to FILE (`vllm-ls bench --trace` collects them).
Times are milliseconds from the request's arrival (`answer_ms` is the whole wait).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger("vllm_ls.trace")

#: How a completion ended, as the user saw it.
SHOWN = "shown"  # a non-empty answer
EMPTY = "empty"  # answered, nothing to suggest
CACHED = "cached"  # answered from the typed-ahead cache, no engine request
SUPERSEDED = "superseded"  # a newer request of the document took over (answered empty)
CANCELLED = "cancelled"  # the client cancelled it ($/cancelRequest)
DEADLINE = "deadline"  # requestTimeoutMs ran out (answered empty, engine work aborted)
SHED = "shed"  # every engine slot taken and newer requests waiting (answered empty)
ERROR = "error"  # the engine failed or was unavailable (answered empty)

#: How the engine request ended (None: no engine request was made).
ENGINE_FINISHED = "finished"  # the engine ended it (token limit, a stop string, end of text)
ENGINE_EARLY_STOP = "early stop"  # the post-processor knew the answer and stopped the engine
ENGINE_STOPPED = "stopped"  # stopped from outside: superseded, cancelled, deadline
ENGINE_BACKGROUND = "background"  # still running when the request was answered (completion/streams.py)


@dataclass
class Trace:
    id: str  # the LSP request id
    document: str
    trigger: str  # "automatic" (typing) or "invoked" (the user asked)
    started: float = field(default_factory=time.monotonic, repr=False)
    ended: str | None = None
    engine_request: str | None = None
    engine_end: str | None = None
    prompt_tokens: int | None = None
    prompt_tokens_cached: int | None = None
    #: The engine's own count when the stream ended, where it keeps one (in-process: the engine core).
    tokens_generated: int | None = None
    tokens_received: int = 0
    tokens_shown: int = 0
    debounce_ms: float | None = None  # waited for the debounce (or until superseded in it)
    prompt_ms: float | None = None  # built the prompt (token counts from the engine's tokenizer)
    queue_ms: float | None = None  # waited for an engine slot (maxInFlight)
    first_token_ms: float | None = None  # from the engine request to its first text
    answer_ms: float | None = None
    #: When the reason to stop arrived (a cancel, a newer request, the deadline) and when the
    #: engine stream was closed (remote: the connection hung up), both from the request's arrival.
    stop_reason_ms: float | None = None
    engine_closed_ms: float | None = None
    error: str | None = None

    def saw(self, delta: Any, engine_started: float) -> None:
        """A delta of the engine stream arrived (`engine_started`: the request's monotonic start)."""
        self.tokens_received += delta.tokens
        if self.first_token_ms is None:
            self.first_token_ms = round((time.monotonic() - engine_started) * 1000, 1)
        if delta.prompt_tokens is not None:
            self.prompt_tokens = delta.prompt_tokens
        if delta.cached_tokens is not None:
            self.prompt_tokens_cached = delta.cached_tokens

    def stop_reason_at(self, when: float | None) -> None:
        """The reason to stop arrived at monotonic `when` (None: unknown)."""
        if when is not None and self.stop_reason_ms is None:
            self.stop_reason_ms = round((when - self.started) * 1000, 1)

    def since_start(self) -> float:
        return round((time.monotonic() - self.started) * 1000, 1)

    def finish(self, ended: str) -> None:
        """The request is answered (or cancelled): how it ended, and when."""
        if self.ended is None:
            self.ended = ended
        self.answer_ms = self.since_start()

    def record(self) -> dict[str, Any]:
        record = asdict(self)
        del record["started"]
        return record

    def line(self) -> str:
        return json.dumps(self.record(), separators=(",", ":"))


class TraceLog:
    """Where finished traces go: the debug log always, and a JSON-lines file when one is given."""

    def __init__(self, path: str | None = None):
        self.path = path
        self._file = open(path, "a", encoding="utf-8", buffering=1) if path else None  # noqa: SIM115

    def write(self, trace: Trace) -> None:
        if self._file is None and not log.isEnabledFor(logging.DEBUG):
            return  # nobody reads it: not even the JSON is made
        line = trace.line()
        log.debug("completion %s", line)
        if self._file is not None:
            self._file.write(line + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
