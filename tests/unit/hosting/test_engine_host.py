"""EngineHost and the supervisor's recovery against scripted engines: what is built when, what the
user is told (status, one popup per error or episode), counters across engines, and a dead engine
brought back with backoff — or given up on. (The real engine's death is tests/e2e/test_engine_death.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from engine.base import CompletionRequest, Delta, Engine, EngineCounters, EngineState, EngineUnavailable
from lsp_server.hosting.engine_host import EngineHost
from lsp_server.hosting.supervisor import RestartPolicy, Supervisor
from lsp_server.settings import EngineSettings

pytestmark = pytest.mark.asyncio(loop_scope="function")


class FakeEngine(Engine):
    """An engine whose start succeeds or fails as told, and that can die."""

    def __init__(self, settings: EngineSettings, fail: str | None = None):
        self.settings = settings
        self.fail = fail
        self._state = EngineState.STOPPED
        self._error: str | None = None
        self._died = False
        self.closed = False
        self.counts = EngineCounters(requests_started=3, tokens_generated=10)
        self.name = f"fake {settings.model}"

    @property
    def state(self) -> EngineState:
        return self._state

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def died(self) -> bool:
        return self._died

    def die(self, why: str) -> None:
        self._state, self._error, self._died = EngineState.FAILED, why, True

    async def start(self, progress=None) -> None:
        self._state = EngineState.LOADING
        if progress is not None:
            progress("loading weights", 50)
        await asyncio.sleep(0)
        if self.fail:
            self._state, self._error = EngineState.FAILED, self.fail
            raise RuntimeError(self.fail)
        self._state = EngineState.READY

    async def stream(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        yield Delta("x", 1)

    async def abort(self, request_id: str) -> None: ...

    def counters(self) -> EngineCounters:
        return self.counts

    async def tokenize(self, text: str) -> list[int]:
        return []

    async def health(self) -> bool:
        return self._state is EngineState.READY

    async def close(self) -> None:
        self.closed = True
        self._state = EngineState.STOPPED


class Client:
    """What the host tells the editor."""

    def __init__(self) -> None:
        self.statuses: list[tuple[str, str]] = []
        self.popups: list[tuple[str, bool]] = []
        self.logs: list[str] = []

    def notify(self, method: str, payload) -> None:
        if method == "vllm-ls/status":
            self.statuses.append((payload["state"], payload["message"]))
        else:
            self.logs.append(payload.message)

    def show_message(self, message: str, error: bool) -> None:
        self.popups.append((message, error))

    @property
    def states(self) -> list[str]:
        return [state for state, _ in self.statuses]


def make_host(failures: dict[str | None, list[str | None]] | None = None) -> tuple[EngineHost, Client, list[FakeEngine]]:
    """A host whose factory builds FakeEngines; `failures[model]` lists how successive builds start."""
    client = Client()
    built: list[FakeEngine] = []
    plans = {k: list(v) for k, v in (failures or {}).items()}

    def factory(settings: EngineSettings) -> FakeEngine:
        plan = plans.get(settings.model)
        engine = FakeEngine(settings, plan.pop(0) if plan else None)
        built.append(engine)
        return engine

    host = EngineHost(notify=client.notify, show_message=client.show_message, progress=lambda: None, factory=factory)
    return host, client, built


async def test_start_builds_the_engine_once_per_engine_settings():
    host, client, built = make_host()
    host.start(EngineSettings(model="a"))
    await host.wait_until_settled()
    assert host.ready() is built[0] and client.states[0] == "loading" and client.states[-1] == "ready"
    host.start(EngineSettings(model="a"))  # the same engine settings: nothing to do
    await host.wait_until_settled()
    assert len(built) == 1
    host.start(EngineSettings(model="b"))
    await host.wait_until_settled()
    assert len(built) == 2 and built[0].closed and host.ready() is built[1]
    await host.close()
    assert built[1].closed


async def test_counters_of_replaced_engines_are_kept():
    host, _, built = make_host()
    host.start(EngineSettings(model="a"))
    await host.wait_until_settled()
    host.start(EngineSettings(model="b"))
    await host.wait_until_settled()
    counters = host.counters()
    assert counters.requests_started == 6 and counters.tokens_generated == 20
    await host.close()


async def test_a_failed_start_is_shown_once_per_distinct_error():
    host, client, _ = make_host({"bad": ["no such model", "no such model", "out of memory"]})
    for _ in range(3):
        host.restart() if host.engine else host.start(EngineSettings(model="bad"))
        await host.wait_until_settled()
    assert host.ready() is None and host.state is EngineState.FAILED
    assert client.states[-1] == "failed"
    assert [m for m, error in client.popups if error] == [
        "vllm-ls: the completion engine is not available: no such model",
        "vllm-ls: the completion engine is not available: out of memory",
    ]
    await host.close()


@pytest.mark.parametrize(("state", "retry_after", "status"), [
    (EngineState.UNAVAILABLE, None, "unavailable"),
    (EngineState.READY, 1.0, "overloaded"),
    (EngineState.READY, None, "degraded"),
])
async def test_a_failed_request_is_told_by_the_engines_state(state, retry_after, status):
    host, client, built = make_host()
    host.start(EngineSettings(model="a"))
    await host.wait_until_settled()
    built[0]._state = state
    for _ in range(3):  # one episode: one popup, however many requests fail
        host.request_failed(built[0], EngineUnavailable("boom", retry_after=retry_after))
    assert client.states[-1] == status
    assert len([m for m, error in client.popups if not error]) == 1
    host.request_succeeded(12.3)
    assert host.last_latency_ms == 12.3
    await host.close()


async def test_a_dead_engine_is_rebuilt_with_the_same_settings():
    host, client, built = make_host()
    host.supervisor = Supervisor(host, RestartPolicy(initial_s=0.01, max_s=0.02, poll_s=0.01))
    host.start(EngineSettings(model="a", max_model_len=1024))
    await host.wait_until_settled()
    built[0].die("engine core killed")
    assert host.ready() is None  # a request sees it dead: the supervisor is woken
    await _until(lambda: host.supervisor.restarts == 1)
    assert host.ready() is built[1] and built[1].settings == built[0].settings and built[0].closed
    assert "restarting" in client.states and client.states[-1] == "ready"
    assert [m for m, _ in client.popups] == [
        "vllm-ls: the completion engine stopped (engine core killed); restarting it"]
    assert any("is back" in line for line in client.logs)
    await host.close()


async def test_restarts_that_keep_failing_give_up_after_the_policys_attempts():
    host, client, built = make_host({"a": [None, "cannot load", "cannot load", "cannot load"]})
    host.supervisor = Supervisor(host, RestartPolicy(initial_s=0.01, max_s=0.01, max_attempts=3, poll_s=0.01))
    host.start(EngineSettings(model="a"))
    await host.wait_until_settled()
    built[0].die("killed")
    await _until(lambda: client.states and client.states[-1] == "failed" and not host.supervisor.restarting)
    assert len(built) == 4 and host.supervisor.restarts == 0
    assert "could not be restarted after 3 attempts" in client.popups[-1][0]
    await host.close()


async def _until(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_consistently_slow_completions_are_told_once_with_what_to_do():
    host, client, built = make_host()
    host.start(EngineSettings(model="a"))
    await host.wait_until_settled()
    for _ in range(9):
        host.request_succeeded(4200.0)
    assert not client.popups, "nine slow answers are no pattern yet"
    for _ in range(5):
        host.request_succeeded(4200.0)
    (popup, error), = client.popups
    assert not error and "completions are slow" in popup and "4.2 s on average" in popup
    assert "engine.url" in popup, "it says what to do: a GPU server for an engine on this machine"
    for _ in range(10):
        host.request_succeeded(150.0)  # fast again: the episode ends, without a message
    assert len(client.popups) == 1
    await host.close()


async def test_failing_requests_say_what_to_do_and_timeouts_count_as_slow():
    host, client, built = make_host()
    host.start(EngineSettings(url=["http://127.0.0.1:9"]))
    await host.wait_until_settled()
    for _ in range(10):
        host.request_timed_out(30.0)
    texts = [message for message, _ in client.popups]
    assert len(texts) == 2, texts
    assert "completions are failing" in texts[0] and "engine.url is up" in texts[0]
    assert "completions are slow" in texts[1] and "longer than the time limit" in texts[1]
    assert "replica" in texts[1], "remote advice for a remote engine"
    await host.close()
