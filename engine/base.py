"""The engine seam: what every engine (in-process vLLM, remote OpenAI-compatible server) speaks.

Nothing here knows about LSP. Callers consume `Engine.stream()` inside `contextlib.aclosing(...)`;
leaving that block for any reason closes the stream, and closing is what aborts the request
inside vLLM (in-process: the generator's cleanup; remote: the HTTP connection).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import ClassVar


#: Receives loading progress: a message and an optional percentage.
ProgressCallback = Callable[[str, "int | None"], None]


class EngineState(enum.Enum):
    """Lifecycle of an engine, as the server reports it to the user."""

    STOPPED = "stopped"
    LOADING = "loading"
    READY = "ready"
    # Started and configured, but nothing can serve right now (every remote endpoint is down).
    # Unlike FAILED this heals by itself: the engine keeps checking in the background.
    UNAVAILABLE = "unavailable"
    FAILED = "failed"


#: Told about state changes the engine makes by itself (an endpoint went down or came back).
StateListener = Callable[[EngineState, str], None]


class EngineUnavailable(RuntimeError):
    """The engine cannot take a request now (loading, failed, down, overloaded).

    `retry_after` is a hint in seconds when the engine knows one (HTTP Retry-After).
    """

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Sampling:
    """How to sample one completion. `stop` strings end generation inside the engine."""

    max_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    n: int = 1
    seed: int | None = None


@dataclass(frozen=True)
class CompletionRequest:
    """One engine request. `prompt` is text or, when already tokenized, token ids."""

    request_id: str
    prompt: str | tuple[int, ...]
    sampling: Sampling = field(default_factory=Sampling)
    #: Requests with the same key prefer the same replica, whose prefix cache holds their prompt
    #: (the document's URI: consecutive keystrokes share almost all of their prompt).
    affinity: str | None = None


@dataclass(frozen=True)
class Delta:
    """A piece of generated text for candidate `index`, carrying `tokens` new tokens.

    The first delta of a request carries the prompt accounting (`prompt_tokens`,
    `cached_tokens`: how many prompt tokens the engine's prefix cache served).
    """

    text: str
    tokens: int
    index: int = 0
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    cached_tokens: int | None = None


@dataclass
class EngineCounters:
    """The engine's own accounting since start (the `vllm-ls/stats` contract builds on this)."""

    requests_started: int = 0
    requests_finished: int = 0
    requests_aborted: int = 0
    requests_failed: int = 0
    requests_in_flight: int = 0
    # From vLLM's own metrics, not from what the server happened to receive.
    tokens_generated: int = 0
    prompt_tokens: int = 0
    prompt_tokens_cached: int = 0
    # From the engine core itself, where the engine can see it (in-process: `core_tally.py`); None
    # where it cannot (a remote server's /metrics, counted in its frontend, is the closest there).
    core_tokens_generated: int | None = None  # every token the core made for our requests
    core_tokens_unread: int | None = None  # tokens of stopped requests nobody read
    core_tokens_after_stop: int | None = None  # of those, tokens that arrived after the stop
    core_requests_stopped: int | None = None  # streams left before the engine finished them
    core_requests_running: int | None = None  # now: requests the core holds (0: nothing more can come)

    #: Values of "now", not totals since start: not added up over engines replaced by a restart.
    CURRENT: ClassVar[tuple[str, ...]] = ("requests_in_flight", "core_requests_running")

    def plus(self, retired: EngineCounters) -> EngineCounters:
        """These counters with those of engines this one replaced added in (totals only)."""
        total = EngineCounters(**vars(self))
        for name, value in vars(retired).items():
            mine = getattr(self, name)
            if name in self.CURRENT or value is None:
                continue
            setattr(total, name, value if mine is None else mine + value)
        return total


class Engine(abc.ABC):
    """A source of streamed completions."""

    #: Short human name for status messages ("embedded SmolLM2-135M", "http://gpu:8000").
    name: str = "engine"
    _listener: StateListener | None = None

    def set_listener(self, listener: StateListener | None) -> None:
        """Receive the state changes the engine makes on its own, after `start()`."""
        self._listener = listener

    def _emit(self, state: EngineState, message: str) -> None:
        if self._listener is not None:
            self._listener(state, message)

    def wake(self) -> None:
        """Someone wanted a completion while the engine was UNAVAILABLE: check again soon."""

    async def refresh_counters(self) -> None:
        """Bring `counters()` up to date when they come from somewhere slow (a remote /metrics)."""

    def generated_tokens(self, request_id: str) -> int | None:
        """The engine's own count of tokens generated for a request whose stream has just ended, when it
        keeps one per request (in-process: the engine core's, as of the end of the stream)."""
        return None

    def details(self) -> dict[str, object]:
        """Extra, engine-specific facts for `vllm-ls/stats` (e.g. remote endpoints and their health)."""
        return {}

    @property
    @abc.abstractmethod
    def state(self) -> EngineState: ...

    @property
    def error(self) -> str | None:
        """Why the engine failed, when `state` is FAILED."""
        return None

    @property
    def died(self) -> bool:
        """The engine was serving and then stopped for good: a new one may serve again (unlike an
        engine that failed to start, whose configuration is the problem)."""
        return False

    @abc.abstractmethod
    async def start(self, progress: ProgressCallback | None = None) -> None:
        """Load or connect. Raises on failure (and leaves `state == FAILED`)."""

    @abc.abstractmethod
    def stream(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        """Stream deltas for `request`. Closing the iterator early aborts the request."""

    @abc.abstractmethod
    async def abort(self, request_id: str) -> None:
        """Abort a request; idempotent, and harmless for unknown or finished ids."""

    @abc.abstractmethod
    def counters(self) -> EngineCounters: ...

    @abc.abstractmethod
    async def tokenize(self, text: str) -> list[int]: ...

    async def count_tokens(self, texts: list[str]) -> list[int]:
        """Token counts of several texts (prompt budgeting). Engines with a batch tokenizer override this."""
        return [len(await self.tokenize(text)) for text in texts]

    @abc.abstractmethod
    async def health(self) -> bool:
        """True when the engine can serve a request now."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop the engine and every process it started. Idempotent."""

    def model_info(self) -> ModelInfo:
        """What prompt building needs to know about the model (template choice, context size)."""
        return ModelInfo()


@dataclass(frozen=True)
class ModelInfo:
    """Facts about the served model that the prompt builder uses."""

    name: str = ""
    max_model_len: int = 2048
    special_tokens: frozenset[str] = frozenset()
