"""Owns the engine: builds it from settings, starts it in the background, tells the user its state.

The engine starts after `initialized`, so `initialize` never waits for a model to load. While it
loads, completions are answered with an empty result and the client sees `$/progress`; a failure
is shown once with `window/showMessage`. Every state change is also sent as the `vllm-ls/status`
notification (the VS Code status bar and `vllm-ls complete` listen to it).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
from collections.abc import Callable
from typing import Any

from lsprotocol import types

from engine.base import Engine, EngineCounters, EngineState, EngineUnavailable
from engine.local import LocalEngine, LocalEngineConfig
from engine.remote import RemoteEngineConfig

from ..contract import STATUS_NOTIFICATION
from ..logs import redact, register_secret
from ..settings import EngineSettings
from .notices import LatencyWatch, Notices
from .supervisor import Supervisor

log = logging.getLogger(__name__)

def build_engine(settings: EngineSettings) -> Engine:
    """The engine the settings ask for: remote when URLs are given, in-process otherwise."""
    if settings.url:
        from engine.remote import RemoteEngine

        return RemoteEngine(remote_config(settings))
    return LocalEngine(LocalEngineConfig(
        model=settings.model,
        kv_cache_memory_mb=settings.kv_cache_memory_mb,
        max_model_len=settings.max_model_len,
    ))


def remote_config(settings: EngineSettings) -> RemoteEngineConfig:
    """The remote engine's settings. The API key comes from the settings or else from the
    environment variable they name; it is registered as a secret before anything can log it."""
    remote = settings.remote
    key = remote.api_key.get_secret_value() if remote.api_key is not None else None
    if not key and remote.api_key_env:
        key = os.environ.get(remote.api_key_env) or None
    register_secret(key)
    return RemoteEngineConfig(
        urls=tuple(settings.url),
        model=settings.model,
        api_key=key,
        ca_bundle=remote.ca_bundle,
        verify_tls=remote.tls_verify,
        connect_timeout=remote.connect_timeout_s,
        read_timeout=remote.read_timeout_s,
        tokenizer=remote.tokenizer,
    )


class EngineHost:
    """Owns the engine for the server: builds it from `settings.engine`, starts and replaces it,
    turns its states and failures into what the user sees (status, progress, one popup per episode),
    and has the supervisor bring a dead one back. It is the pipeline's `EngineSource`."""

    def __init__(
        self,
        notify: Callable[[str, Any], None],
        show_message: Callable[[str, bool], None],
        progress: Callable[[], Any],  # the pygls Progress, or None when the client has no progress support
        factory: Callable[[EngineSettings], Engine] = build_engine,
    ):
        self._notify = notify
        self._show_message = show_message
        self._progress = progress
        self._factory = factory
        self.engine: Engine | None = None
        self._identity: EngineSettings | None = None  # the settings the current engine was built from
        self._task: asyncio.Task | None = None
        self._tokens = itertools.count(1)
        self._shown_errors: set[str] = set()
        self._retired = EngineCounters()  # counters of engines replaced (settings change, restart)
        self.last_latency_ms: float | None = None
        self.notices = Notices()
        self.latency = LatencyWatch()
        self.supervisor = Supervisor(self)

    @property
    def state(self) -> EngineState:
        """The engine's state (STOPPED before the first start)."""
        return self.engine.state if self.engine is not None else EngineState.STOPPED

    def ready(self) -> Engine | None:
        """The engine if it can serve now; otherwise None, after nudging whoever can change that."""
        engine = self.engine
        if engine is not None and engine.state is EngineState.READY:
            return engine
        if engine is not None and engine.state is EngineState.FAILED:
            self.report_failure(engine.error or "the engine failed")  # a death wakes the supervisor
        if engine is not None and engine.state is EngineState.UNAVAILABLE:
            engine.wake()  # someone is waiting: check the endpoints again soon
        return None

    async def refresh_counters(self) -> None:
        """Bring the engine's counters up to date (a remote engine reads its servers' /metrics)."""
        if self.engine is not None:
            try:
                await asyncio.wait_for(self.engine.refresh_counters(), 10)
            except (TimeoutError, OSError) as exc:
                log.debug("engine counters could not be refreshed: %s", exc)

    def counters(self) -> EngineCounters:
        """The engine's own counters since the server started, across engines replaced."""
        current = self.engine.counters() if self.engine is not None else EngineCounters()
        # vLLM's in-process metrics are process-wide but start again from zero with each new
        # AsyncLLM (it unregisters the old collectors): a retired engine's count is added like the rest.
        return current.plus(self._retired)

    def start(self, settings: EngineSettings) -> None:
        """Start (or restart, if its settings changed) the engine in the background."""
        self.supervisor.watch()
        if settings == self._identity and self.engine is not None:
            return
        self._build(settings)

    def _build(self, settings: EngineSettings) -> None:
        self._identity = settings
        previous_task, previous = self._task, self.engine
        self.engine = self._factory(settings)
        self.notices.recovered("unavailable")
        engine = self.engine
        engine.set_listener(lambda state, message: self._on_engine_state(engine, state, message))
        self._task = asyncio.create_task(self._run(self.engine, previous_task, previous))

    async def _run(self, engine: Engine, previous_task: asyncio.Task | None, previous: Engine | None) -> None:
        if previous_task is not None:
            previous_task.cancel()
        if previous is not None:
            self._retire(previous)
            await previous.close()
        self.status("loading", f"loading {engine.name}")
        token = f"vllm-ls/loading/{next(self._tokens)}"
        progress = await self._begin_progress(token, f"Loading {engine.name}")

        def report(message: str, percentage: int | None = None) -> None:
            log.info("%s", message)
            self.status("loading", message)
            if progress:
                self._progress().report(token, types.WorkDoneProgressReport(message=message, percentage=percentage))

        try:
            await engine.start(report)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure is reported, the server keeps serving
            log.exception("engine failed to start")
            self._end_progress(progress, token, "failed")
            self.report_failure(engine.error or str(exc))
            return
        if engine.state is EngineState.UNAVAILABLE:
            self._end_progress(progress, token, "unavailable")
            self.report_unavailable(engine.error or f"{engine.name} is unavailable")
            return
        self._end_progress(progress, token, "ready")
        self.status("ready", f"{engine.name} ready")

    def _on_engine_state(self, engine: Engine, state: EngineState, message: str) -> None:
        """A change the engine made by itself (an endpoint went down or came back)."""
        if engine is not self.engine:
            return  # an engine being replaced
        if state is EngineState.READY:
            self.notices.recovered("unavailable")
            self.status("ready", message)
        elif state is EngineState.UNAVAILABLE:
            self.report_unavailable(message)
        elif state is EngineState.FAILED:
            self.report_failure(message)

    def _retire(self, engine: Engine) -> None:
        self._retired = engine.counters().plus(self._retired)

    async def _begin_progress(self, token: str, title: str) -> bool:
        progress = self._progress()
        if progress is None:
            return False
        try:
            await asyncio.wait_for(progress.create_async(token), 5)
            progress.begin(token, types.WorkDoneProgressBegin(title=title, cancellable=False, percentage=0))
        except Exception:  # noqa: BLE001 - a client that refuses progress still gets status messages
            log.debug("client refused work done progress", exc_info=True)
            return False
        return True

    def _end_progress(self, progress: bool, token: str, message: str) -> None:
        if progress:
            self._progress().end(token, types.WorkDoneProgressEnd(message=message))

    def report_failure(self, error: str) -> None:
        """The engine cannot serve (bad settings, failed load): a status, and one popup per error."""
        engine = self.engine
        if self.supervisor.restarting or (engine is not None and engine.died):
            self.supervisor.wake()  # the supervisor restarts it and tells the user, once
            return
        self.status("failed", error)
        if error not in self._shown_errors:  # once per distinct error: no popup storm
            self._shown_errors.add(error)
            self._show_message(redact(f"vllm-ls: the completion engine is not available: {error}"), True)

    def report_unavailable(self, message: str) -> None:
        """Nothing can serve now, and the engine is retrying: a status, and one warning per outage."""
        self.status("unavailable", message)
        self._trouble("unavailable", message, f"vllm-ls: completions are paused: {message}")

    def report_busy(self, message: str) -> None:
        """The engine turned a request away (overloaded): it passes by itself."""
        self.status("overloaded", message)
        self._trouble("overloaded", message, f"vllm-ls: the completion server is overloaded: {message}")

    def report_request_error(self, detail: str) -> None:
        """One request failed while the engine is up (an HTTP error, a broken or oversized stream, a
        timeout): details in the client's log, one popup per episode, with what to do."""
        self.status("degraded", detail)
        self._trouble("requests", detail, f"vllm-ls: completions are failing: {detail}. {self._failing_advice()}")

    def request_timed_out(self, deadline_s: float) -> None:
        """A completion took longer than `requestTimeoutMs` and was abandoned: a failure, and the
        slowest of answers for the latency watch."""
        self.report_request_error(f"a completion took longer than {deadline_s:.1f} s and was abandoned")
        self._watch_latency(math.inf)

    def _watch_latency(self, latency_ms: float) -> None:
        change = self.latency.add(latency_ms)
        if change is False:
            self.notices.recovered("slow")
        elif change:
            average = self.latency.average_ms()
            took = f"{average / 1000:.1f} s on average" if average != math.inf else "longer than the time limit"
            detail = f"the last {self.latency.window} completions each took more than " \
                     f"{self.latency.slow_ms / 1000:.0f} s ({took})"
            self._trouble("slow", detail, f"vllm-ls: completions are slow: {detail}. {self._slow_advice()}")

    def _remote(self) -> bool:
        return bool(self._identity is not None and self._identity.url)

    def _slow_advice(self) -> str:
        """What to do about slow completions, for the engine in use."""
        if self._remote():
            return ("The vLLM server is busy or far: check its load (vllm-ls: Show Stats shows the engine's "
                    "counters), add a replica to engine.url, or lower generation.maxTokens.")
        return ("The engine runs on this machine: on a CPU, use a vLLM server on a GPU (engine.url), "
                "or a smaller prompt and answer (prompt.maxPromptTokens, generation.maxTokens).")

    def _failing_advice(self) -> str:
        """What to do about failing completions, for the engine in use."""
        if self._remote():
            return ("Check that the vLLM server at engine.url is up and serves the model; "
                    "the server's log (--log-file) has each failure.")
        return "The server's log (--log-file) has each failure; `vllm-ls check` tries a completion on its own."

    def request_failed(self, engine: Engine, error: EngineUnavailable) -> None:
        """A completion's engine request failed: tell the user what the engine's state says."""
        if engine.state is EngineState.FAILED:
            self.report_failure(engine.error or str(error))
        elif engine.state is EngineState.UNAVAILABLE:
            self.report_unavailable(engine.error or str(error))
        elif error.retry_after is not None:
            self.report_busy(str(error))
        else:
            self.report_request_error(str(error))

    def request_succeeded(self, latency_ms: float | None = None) -> None:
        """An engine request went through: episodes of failing or rejected requests are over."""
        if latency_ms is not None:
            self.last_latency_ms = round(latency_ms, 1)
            self._watch_latency(latency_ms)
        self.notices.recovered("requests")
        self.notices.recovered("overloaded")

    def engine_died(self, error: str) -> None:
        """The supervisor saw the engine die: tell the user once that it is being restarted."""
        self.status("restarting", f"the engine stopped: {error}")
        self._trouble("restart", error, f"vllm-ls: the completion engine stopped ({error}); restarting it")

    def engine_restarted(self) -> None:
        """The supervisor brought the engine back."""
        self.notices.recovered("restart")
        self._log_message(f"vllm-ls: the completion engine is back ({self.engine.name if self.engine else ''})",
                          types.MessageType.Info)

    def restart_gave_up(self, error: str, attempts: int) -> None:
        """The supervisor stopped trying: the engine stays failed until settings change."""
        message = f"the engine could not be restarted after {attempts} attempts: {error}"
        self.status("failed", message)
        self._show_message(f"vllm-ls: {message}", True)

    def restart(self) -> None:
        """Build a new engine with the current settings (the old one is closed first)."""
        if self._identity is not None:
            self._build(self._identity)

    async def rebuild(self) -> Engine | None:
        """Restart the engine and wait until it is ready, unavailable or failed (the supervisor's way back)."""
        self.restart()
        await self.wait_until_settled()
        return self.engine

    def _trouble(self, kind: str, detail: str, popup_text: str) -> None:
        popup, log_it = self.notices.trouble(kind, detail)
        if popup:
            self._show_message(redact(popup_text), False)  # also written to the client's log
        elif log_it:
            self._log_message(f"vllm-ls: {detail}", types.MessageType.Warning)

    def _log_message(self, message: str, kind: types.MessageType) -> None:
        self._notify(types.WINDOW_LOG_MESSAGE, types.LogMessageParams(type=kind, message=redact(message)))

    def status(self, state: str, message: str) -> None:
        """Send the `vllm-ls/status` notification (redacted)."""
        message = redact(message)
        payload = {"state": state, "message": message,
                   "engine": self.engine.name if self.engine else None,
                   "lastLatencyMs": self.last_latency_ms}
        self._notify(STATUS_NOTIFICATION, payload)

    async def wait_until_settled(self) -> None:
        """Wait for the current start attempt to end (ready, unavailable or failed)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """Stop the supervisor and the engine, and every process the engine started."""
        await self.supervisor.stop()
        task, engine = self._task, self.engine
        self._task = None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if engine is not None:
            await engine.close()
