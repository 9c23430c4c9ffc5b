"""The remote engine: one or more vLLM OpenAI-compatible servers, reached over httpx.

Cancellation: a completion is one streaming `POST /v1/completions`, run as an `Exchange`
(exchange.py). Leaving the stream early (the caller closes it: a cancel, a newer keystroke, the
post-processor saying "complete") hangs up the connection at once, synchronously, and vLLM aborts
a request whose client has gone: the same guarantee as the in-process engine, over the network.
The prompt (FIM or prefix-only) is built by the caller; vLLM rejects `suffix` for normal models.

Replicas: requests go to healthy endpoints (see `replicas.py` for placement). A request is retried
on the next endpoint only before its first token arrives; after that a broken stream is an error,
because a retry would repeat text the editor has already been given. 429/503 answers are not
waited on: the endpoint is skipped until its Retry-After and, if no other endpoint can take the
request, the caller gets `EngineUnavailable` at once.

State: READY while some endpoint is healthy; UNAVAILABLE while none is (a background task keeps
checking them with backoff, see probe.py, and the engine becomes READY again by itself); FAILED
only for errors a retry cannot fix (the server rejects the API key, a TLS CA bundle that does not
exist, ...).

Secrets: the API key is only ever put in the Authorization header. It is never part of a name, a
message, an exception or a repr.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..base import (
    CompletionRequest,
    Delta,
    Engine,
    EngineCounters,
    EngineState,
    EngineUnavailable,
    ModelInfo,
    ProgressCallback,
)
from . import probe, tokenizer
from .exchange import Exchange, fetch
from .replicas import Endpoint, HealthPolicy, Replicas
from .scraper import Scraper
from .wire import (
    DONE,
    ChunkReader,
    LineSplitter,
    SseDecoder,
    StopMatcher,
    WireError,
    error_message,
    parse_retry_after,
    split_stops,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteEngineConfig:
    urls: tuple[str, ...]
    #: Served model name to request; None: the first model the server lists.
    model: str | None = None
    # repr=False: a config printed in a log or a traceback must not carry the key.
    api_key: str | None = field(default=None, repr=False)
    #: A CA bundle (PEM file) to verify the servers' certificates with, instead of the system's.
    ca_bundle: str | None = None
    verify_tls: bool = True
    #: Connecting to a server on the network should be quick; a slow connect means it is down.
    connect_timeout: float = 3.0
    #: Longest silence inside a response: the first token waits for queueing and prefill.
    read_timeout: float = 30.0
    #: A local tokenizer (a `tokenizer.json`, or a directory with one) for exact token budgets
    #: without a round trip to `/tokenize`.
    tokenizer: str | None = None
    health: HealthPolicy = field(default_factory=HealthPolicy)
    max_connections: int = 64
    #: Most characters of one completion response: n candidates x max_tokens chunks of a few
    #: hundred bytes stay far below it; a server streaming without end does not.
    max_response_chars: int = 16 << 20


class RemoteEngine(Engine):
    def __init__(self, config: RemoteEngineConfig):
        if not config.urls:
            raise ValueError("the remote engine needs at least one URL")
        self.config = config
        urls = [url.rstrip("/") for url in config.urls]
        self._where = f"vLLM at {urls[0]}" + (f" (+{len(urls) - 1} more)" if len(urls) > 1 else "")
        self.name = self._where
        self._replicas = Replicas(urls, config.health)
        self._state = EngineState.STOPPED
        self._error: str | None = None
        self._client: httpx.AsyncClient | None = None
        self._model: str | None = config.model
        self._model_info = ModelInfo(name=config.model or "")
        self._model_known = False
        self._local_tokenizer: Any = None
        self._counters = EngineCounters()
        self._scraper = Scraper(urls, self._fetch, self._probe_timeout())
        self._calls: dict[str, _Call] = {}
        self._exchanges: set[asyncio.Task] = set()  # exchange tasks still finishing after a hang-up
        self._health_task: asyncio.Task | None = None
        self._wake = asyncio.Event()

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def state(self) -> EngineState:
        return self._state

    @property
    def error(self) -> str | None:
        return self._error

    def model_info(self) -> ModelInfo:
        return self._model_info

    async def start(self, progress: ProgressCallback | None = None) -> None:
        report = progress or (lambda message, percentage=None: None)
        self._state, self._error = EngineState.LOADING, None
        try:
            self._client = httpx.AsyncClient(
                headers={"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else None,
                verify=self._tls(),
                timeout=httpx.Timeout(self.config.read_timeout, connect=self.config.connect_timeout),
                limits=httpx.Limits(max_connections=self.config.max_connections,
                                    max_keepalive_connections=self.config.max_connections),
                follow_redirects=False,
            )
            if self.config.tokenizer:
                self._local_tokenizer = await asyncio.to_thread(tokenizer.load_tokenizer, self.config.tokenizer)
            report(f"connecting to {self.name}", 10)
            await asyncio.gather(*(self._check(endpoint) for endpoint in self._replicas.endpoints))
            if self._state is EngineState.FAILED:
                raise EngineUnavailable(self._error or "the remote engine failed")
        except BaseException as exc:
            self._state = EngineState.FAILED
            self._error = self._error or _describe(exc)
            await self._close_client()
            raise
        self._state = EngineState.READY if self._usable() else EngineState.UNAVAILABLE
        if self._state is EngineState.UNAVAILABLE:
            self._error = self._down_message()
        self._health_task = asyncio.create_task(self._health_loop(), name="vllm-ls remote health")
        report(self._status_message(), 100)

    def _tls(self) -> ssl.SSLContext | bool:
        if not self.config.verify_tls:
            return False
        if self.config.ca_bundle:
            path = os.path.expanduser(self.config.ca_bundle)
            if not os.path.isfile(path):
                raise EngineUnavailable(f"the CA bundle {path} does not exist")
            return ssl.create_default_context(cafile=path)
        return True

    async def close(self) -> None:
        self._state = EngineState.STOPPED
        tasks = [t for t in (self._health_task, *self._scraper.forget_tasks()) if t is not None]
        self._health_task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for call in list(self._calls.values()):
            call.abort()
        if self._exchanges:
            await asyncio.wait(self._exchanges, timeout=5)
        await self._close_client()

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _fetch(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if self._client is None:
            raise httpx.ConnectError("the remote engine is stopped")
        return await fetch(self._client, method, url, **kwargs)

    # -- health -----------------------------------------------------------------------------------

    def wake(self) -> None:
        if self._replicas.wake():
            self._wake.set()

    async def health(self) -> bool:
        return self._state is EngineState.READY and self._replicas.any_healthy

    async def _health_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._replicas.seconds_until_due())
            self._wake.clear()
            due = self._replicas.due()
            if due:
                await asyncio.gather(*(self._check(endpoint) for endpoint in due))
            if self._state is EngineState.FAILED:
                return

    async def _check(self, endpoint: Endpoint) -> None:
        """Probe one endpoint (`/health`, and `/v1/models` until the model is known)."""
        try:
            await probe.check_health(self._fetch, endpoint.url, self._probe_timeout())
            if not self._model_known:
                await self._learn_model(endpoint)
        except probe.Fatal as exc:
            self._fail(str(exc))
            return
        except (probe.Down, httpx.HTTPError, WireError, ValueError) as exc:
            if self._replicas.mark_down(endpoint, _describe(exc)):
                log.warning("%s is down: %s", endpoint.url, _describe(exc))
                self._changed()
            return
        if self._replicas.mark_up(endpoint):
            log.info("%s is up", endpoint.url)
            self._changed()

    def _probe_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(min(self.config.read_timeout, 10.0), connect=self.config.connect_timeout)

    async def _learn_model(self, endpoint: Endpoint) -> None:
        async def special(model: str) -> frozenset[str]:
            if self._local_tokenizer is not None:
                return tokenizer.special_tokens(self._local_tokenizer)
            return await probe.special_tokens(self._fetch, endpoint.url, model, self._probe_timeout())

        served = await probe.served_model(self._fetch, endpoint.url, self.config.model, self._probe_timeout(), special)
        self._model, self._model_info = served.model, served.info
        self.name = f"{self._model} on {self._where}"
        self._model_known = True
        log.info("%s serves %s (max_model_len %d)", endpoint.url, self._model, self._model_info.max_model_len)

    def _fail(self, message: str) -> None:
        if self._state is EngineState.FAILED:
            return
        log.error("remote engine failed: %s", message)
        self._state, self._error = EngineState.FAILED, message
        self._emit(EngineState.FAILED, message)

    def _usable(self) -> bool:
        return self._model_known and self._replicas.any_healthy

    def _changed(self) -> None:
        """An endpoint went up or down: update the state and tell the listener."""
        if self._state not in (EngineState.READY, EngineState.UNAVAILABLE):
            return  # still starting (start() settles the state) or stopped/failed
        state = EngineState.READY if self._usable() else EngineState.UNAVAILABLE
        self._state = state
        self._error = None if state is EngineState.READY else self._down_message()
        self._emit(state, self._status_message())

    def _status_message(self) -> str:
        if self._state is EngineState.UNAVAILABLE:
            return self._down_message()
        healthy, total = len(self._replicas.healthy()), len(self._replicas.endpoints)
        if total == 1:
            return f"{self.name} ready"
        down = [f"{e.url} ({e.last_error})" for e in self._replicas.endpoints if not e.healthy]
        return f"{self.name} ready: {healthy} of {total} endpoints healthy" + (
            f"; down: {', '.join(down)}" if down else "")

    def _down_message(self) -> str:
        reasons = "; ".join(f"{e.url}: {e.last_error or 'not checked yet'}" for e in self._replicas.endpoints)
        return f"no vLLM server is reachable ({reasons}); retrying in the background"

    # -- completions ------------------------------------------------------------------------------

    async def stream(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        if self._state is not EngineState.READY:
            if self._state is EngineState.UNAVAILABLE:
                self.wake()
            raise EngineUnavailable(self._error or f"{self.name} is {self._state.value}")
        server_stops, client_stops = split_stops(request.sampling.stop)
        body = self._body(request, server_stops)
        call = _Call(request.request_id)
        self._calls[request.request_id] = call
        counters = self._counters
        counters.requests_started += 1
        counters.requests_in_flight += 1
        outcome = "aborted"
        try:
            async with contextlib.aclosing(self._attempts(request, body, client_stops, call)) as deltas:
                async for delta in deltas:
                    yield delta
            outcome = "aborted" if call.aborted else "finished"
        except EngineUnavailable:
            outcome = "failed"
            raise
        finally:
            # First thing, before any await: the server learns we have gone now, whatever
            # cancellations are still on their way to this task.
            call.abort()
            self._calls.pop(request.request_id, None)
            counters.requests_in_flight -= 1
            if outcome == "finished":
                counters.requests_finished += 1
            elif outcome == "failed":
                counters.requests_failed += 1
            else:
                counters.requests_aborted += 1

    def _body(self, request: CompletionRequest, stops: tuple[str, ...]) -> dict[str, Any]:
        s = request.sampling
        body: dict[str, Any] = {
            "model": self._model,
            "prompt": list(request.prompt) if isinstance(request.prompt, tuple) else request.prompt,
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "n": s.n,
            "stream": True,
            # Continuous usage: every chunk says how many tokens its choice has, so token counts
            # are the server's own (text held back for stop strings still counts).
            "stream_options": {"include_usage": True, "continuous_usage_stats": True},
        }
        if stops:
            body["stop"] = list(stops)
        if s.seed is not None:
            body["seed"] = s.seed
        return body

    async def _attempts(
        self, request: CompletionRequest, body: dict[str, Any], client_stops: tuple[str, ...], call: _Call
    ) -> AsyncIterator[Delta]:
        assert self._client is not None
        candidates = self._replicas.candidates(request.affinity)
        if not candidates:
            raise self._nothing_to_try()
        problems: list[str] = []
        retry_after: float | None = None
        headers = {"X-Request-Id": request.request_id}
        if request.affinity:
            # A load balancer in front of replicas (e.g. vllm-router --policy consistent_hash) keeps
            # a session on one replica: the same prefix-cache affinity we give our own replicas.
            # Hashed: a file path is nobody else's business.
            headers["X-Session-ID"] = hashlib.blake2b(request.affinity.encode(), digest_size=12).hexdigest()
        for endpoint in candidates:
            if call.aborted:
                return  # aborted before it reached a server
            streamed = False
            endpoint.in_flight += 1
            self._scraper.begin(endpoint)
            exchange = Exchange(self._client, f"{endpoint.url}/v1/completions", json=body, headers=headers,
                                max_chars=self.config.max_response_chars)
            self._exchanges.add(exchange.task)
            exchange.task.add_done_callback(self._exchanges.discard)
            call.exchange = exchange
            try:
                status = await exchange.response()
                if status is None or call.aborted:
                    return  # hung up before the answer began
                if status in (429, 503):
                    hint = parse_retry_after(exchange.headers.get("retry-after") if exchange.headers else None)
                    seconds = self._replicas.mark_overloaded(endpoint, hint)
                    retry_after = seconds if retry_after is None else min(retry_after, seconds)
                    problems.append(f"{endpoint.url} is overloaded (HTTP {status})")
                    continue
                if status in (401, 403):
                    self._fail(f"{endpoint.url} rejected the API key (HTTP {status})")
                    raise EngineUnavailable(self._error or "the API key was rejected")
                if status >= 500:
                    endpoint.errors += 1
                    problems.append(f"{endpoint.url}: HTTP {status}: {exchange.error_text}")
                    continue
                if status >= 400:
                    endpoint.errors += 1
                    raise EngineUnavailable(
                        f"{endpoint.url} rejected the request (HTTP {status}): {exchange.error_text}")
                endpoint.served += 1
                async for delta in self._read(exchange, endpoint, client_stops, request.sampling.n):
                    streamed = True
                    yield delta
                if not call.aborted and not exchange.over:
                    await exchange.finish()  # read to its end: the connection can serve again
                return
            except (httpx.TransportError, httpx.StreamError, WireError) as exc:
                if call.aborted:
                    return  # abort() hung up under us: the stream simply ends
                endpoint.errors += 1
                reason = _describe(exc)
                if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)):
                    if self._replicas.mark_down(endpoint, reason):
                        log.warning("%s is down: %s", endpoint.url, reason)
                        self._changed()
                if streamed:
                    # Text has reached the caller: a retry elsewhere would repeat it.
                    raise EngineUnavailable(f"{endpoint.url}: the stream broke off: {reason}") from exc
                problems.append(f"{endpoint.url}: {reason}")
            finally:
                exchange.hang_up()
                call.exchange = None
                endpoint.in_flight -= 1
                self._scraper.end(endpoint)
        if retry_after is not None and len(problems) == sum("overloaded" in p for p in problems):
            raise EngineUnavailable(
                f"{self.name} is overloaded; retry after {retry_after:.1f} s", retry_after=retry_after)
        raise EngineUnavailable("; ".join(problems) or f"{self.name} is unavailable", retry_after=retry_after)

    def _nothing_to_try(self) -> EngineUnavailable:
        wait = self._replicas.overloaded_for()
        if wait is not None:
            return EngineUnavailable(f"{self.name} is overloaded; retry after {wait:.1f} s", retry_after=wait)
        self.wake()
        return EngineUnavailable(self._down_message())

    async def _read(
        self, exchange: Exchange, endpoint: Endpoint, client_stops: tuple[str, ...], n: int
    ) -> AsyncIterator[Delta]:
        decoder, reader, splitter = SseDecoder(), ChunkReader(), LineSplitter(max_total=self.config.max_response_chars)
        matchers: dict[int, StopMatcher] = {}
        finished: set[int] = set()
        tally = self._scraper.tallies[endpoint.url]
        prompt_counted = False
        try:
            async for line in _lines(exchange, splitter):
                data = decoder.feed(line)
                if data is None:
                    continue
                if data == DONE:
                    break
                for chunk in reader.read(data):
                    if not prompt_counted and reader.prompt_tokens is not None:
                        prompt_counted = True
                        tally.prompt += reader.prompt_tokens
                        self._counters.prompt_tokens += reader.prompt_tokens
                    tally.generated += chunk.tokens
                    self._counters.tokens_generated += chunk.tokens
                    if chunk.index in finished:
                        continue  # one of several choices that our own stop string already ended
                    matcher = matchers.setdefault(chunk.index, StopMatcher(client_stops))
                    text, stopped = matcher.feed(chunk.text)
                    finish = "stop" if stopped else chunk.finish_reason
                    if finish is not None:
                        text += matcher.flush()
                        finished.add(chunk.index)
                    yield Delta(text=text, tokens=chunk.tokens, index=chunk.index, finish_reason=finish,
                                prompt_tokens=chunk.prompt_tokens)
                if client_stops and len(finished) >= n:
                    # Our own stop strings ended every choice: hang up now. Reading on to the
                    # server's end (to keep the connection) let it generate for up to a second.
                    exchange.hang_up()
                    return
            else:
                if (tail := decoder.close()) is None or tail != DONE:
                    raise WireError("the stream ended before the server said it was done")
        finally:
            if reader.cached_tokens is not None:
                tally.cached += reader.cached_tokens
                self._counters.prompt_tokens_cached += reader.cached_tokens

    async def abort(self, request_id: str) -> None:
        call = self._calls.get(request_id)
        if call is not None:
            call.abort()

    # -- tokens -----------------------------------------------------------------------------------

    async def tokenize(self, text: str) -> list[int]:
        if self._local_tokenizer is not None:
            return tokenizer.encode(self._local_tokenizer, text)
        data = await self._remote_tokenize(text, add_special_tokens=False)
        return [int(t) for t in data.get("tokens", [])]

    async def count_tokens(self, texts: list[str]) -> list[int]:
        """Token counts of prompt pieces. The prompt builder caches them, so each piece is asked once."""
        if self._local_tokenizer is not None:
            return tokenizer.count(self._local_tokenizer, texts)
        # vLLM's /tokenize takes one prompt: ask a few at a time on the pooled connections.
        gate = asyncio.Semaphore(8)

        async def one(text: str) -> int:
            async with gate:
                data = await self._remote_tokenize(text, add_special_tokens=False)
            return int(data.get("count", len(data.get("tokens", []))))

        return list(await asyncio.gather(*(one(text) for text in texts)))

    async def _remote_tokenize(self, text: str, add_special_tokens: bool) -> dict[str, Any]:
        if self._client is None or not self._replicas.any_healthy:
            raise EngineUnavailable(self._error or f"{self.name} is {self._state.value}")
        endpoint = (self._replicas.candidates(None) or self._replicas.healthy())[0]
        try:
            response = await self._fetch("POST", f"{endpoint.url}/tokenize", json={
                "model": self._model, "prompt": text, "add_special_tokens": add_special_tokens})
        except (httpx.HTTPError, WireError) as exc:
            raise EngineUnavailable(f"{endpoint.url}/tokenize: {_describe(exc)}") from exc
        if response.status_code != 200:
            raise EngineUnavailable(f"{endpoint.url}/tokenize answered HTTP {response.status_code}: "
                                    f"{error_message(response.text)}")
        return response.json()

    # -- counters ---------------------------------------------------------------------------------

    def counters(self) -> EngineCounters:
        snapshot = EngineCounters(**vars(self._counters))
        totals = self._scraper.totals()
        snapshot.tokens_generated = totals.generated
        snapshot.prompt_tokens = totals.prompt
        snapshot.prompt_tokens_cached = totals.cached
        return snapshot

    def details(self) -> dict[str, object]:
        return {
            "engine_endpoints": [
                {**e.public(), "metrics": self._scraper.available(e.url)} for e in self._replicas.endpoints
            ],
        }

    async def refresh_counters(self) -> None:
        """Wait for pending /metrics reads, and read the server's counters for busy periods still open."""
        await self._scraper.refresh(self._replicas.endpoints)


class _Call:
    """One request in flight: what `abort()` needs to hang up."""

    def __init__(self, request_id: str):
        self.request_id = request_id
        self.exchange: Exchange | None = None
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True
        if self.exchange is not None:
            self.exchange.hang_up()  # the server sees the connection close and aborts the request


async def _lines(exchange: Exchange, splitter: LineSplitter) -> AsyncIterator[str]:
    async for text in exchange.text():
        for line in splitter.feed(text):
            yield line
    for line in splitter.close():
        yield line


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    kind = type(exc).__name__
    if not text:
        return kind
    text = text if len(text) < 300 else text[:300] + "…"
    return text if isinstance(exc, (EngineUnavailable, probe.Down, probe.Fatal, WireError)) else f"{kind}: {text}"
