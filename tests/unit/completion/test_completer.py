"""The completer's own logic against a scripted engine: candidates, early stop, typed-ahead cache,
and the exact token check near the model's limit. (The real engine is exercised in tests/e2e.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from engine.base import CompletionRequest, Delta, Engine, EngineCounters, EngineState, ModelInfo
from lsp_server.completion.completer import Completer
from lsp_server.completion.scheduler import Scheduler
from lsp_server.settings import Settings
from lsp_server.completion.counters import ServerCounters
from lsp_server.completion.trace import CACHED, ENGINE_EARLY_STOP, ENGINE_FINISHED, Trace

URI = "file:///w/a.py"


class ScriptedEngine(Engine):
    """Streams scripted deltas per candidate, one step at a time; records what was asked and read."""

    def __init__(self, script: dict[int, list[str]], max_model_len: int = 2048, undercount: int = 1):
        self.script = script
        self.info = ModelInfo(name="scripted", max_model_len=max_model_len)
        self.undercount = undercount
        self.requests: list[CompletionRequest] = []
        self.steps_read = 0
        self.closed_early = False
        self.tokenized_prompts = 0

    @property
    def state(self) -> EngineState:
        return EngineState.READY

    async def start(self, progress=None) -> None: ...

    async def stream(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        self.requests.append(request)
        steps = max(map(len, self.script.values()))
        finished = False
        try:
            for step in range(steps):
                self.steps_read = step + 1
                for index in range(request.sampling.n):
                    pieces = self.script.get(index, self.script[0])
                    if step < len(pieces):
                        yield Delta(text=pieces[step], tokens=1, index=index)
            finished = True
        finally:
            self.closed_early = not finished

    async def abort(self, request_id: str) -> None: ...

    def counters(self) -> EngineCounters:
        return EngineCounters()

    async def tokenize(self, text: str) -> list[int]:
        self.tokenized_prompts += 1
        return [0] * (len(text) // 4)

    async def count_tokens(self, texts: list[str]) -> list[int]:
        # A tokenizer whose chunk counts run low by `undercount` (so sums can exceed the limit).
        return [len(t) // (4 * self.undercount) for t in texts]

    async def health(self) -> bool:
        return True

    async def close(self) -> None: ...

    def model_info(self) -> ModelInfo:
        return self.info


class Host:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.last_latency_ms = None

    def ready(self):
        return self.engine

    def request_failed(self, engine, error) -> None:
        raise AssertionError(error)

    def request_succeeded(self, latency_ms: float) -> None:
        self.last_latency_ms = latency_ms


def complete(engine: Engine, text: str, offset: int, settings: Settings, invoked: bool = False,
             completer: Completer | None = None, trace: Trace | None = None):
    counters = ServerCounters()
    completer = completer or Completer(Host(engine), counters, lambda: settings)

    async def run():
        scheduler = Scheduler(lambda: True, lambda: 4)
        async with scheduler.turn(URI) as turn:
            return await completer.complete(text, offset, turn, uri=URI, invoked=invoked, trace=trace)

    return asyncio.run(run()), completer


TEXT = "def area(r):\n    return "
FAST = Settings().updated({"scheduling.debounceMs": 0, "generation.multiline": "never"})


def test_stream_is_left_as_soon_as_the_line_is_complete():
    engine = ScriptedEngine({0: [" math", ".pi", " * r", " ** 2", "\n", "x", " = 1", "\n", "y"]})
    result, _ = complete(engine, TEXT, len(TEXT), FAST)
    assert result.text == "math.pi * r ** 2"
    assert engine.steps_read == 5 and engine.closed_early
    assert engine.requests[0].sampling.stop[0] == "\n"


def test_without_early_stop_the_stream_runs_to_its_end_with_the_same_answer():
    engine = ScriptedEngine({0: [" math", ".pi", "\n", "x", " = 1"]})
    result, _ = complete(engine, TEXT, len(TEXT), FAST.updated({"generation.earlyStop": False}))
    assert result.text == "math.pi"
    assert not engine.closed_early and engine.requests[0].sampling.stop == ()


def test_invoked_asks_for_candidates_and_returns_the_distinct_ones():
    engine = ScriptedEngine({0: [" r", " * r", "\n"], 1: [" r * r", "\n"], 2: [" 3.14", "\n"]})
    result, completer = complete(engine, TEXT, len(TEXT), FAST.updated({"generation.candidates": 3}), invoked=True)
    sampling = engine.requests[0].sampling
    assert sampling.n == 3 and sampling.temperature > 0
    assert result.candidates == ("r * r", "3.14")
    assert completer._counters.candidates_returned == 2
    assert engine.closed_early, "all candidates complete: the stream is left"


def test_stream_stays_open_until_every_candidate_is_complete():
    engine = ScriptedEngine({0: [" a", "\n"], 1: [" b", " c", " d", "\n", "e"]})
    result, _ = complete(engine, TEXT, len(TEXT), FAST.updated({"generation.candidates": 2}), invoked=True)
    assert result.candidates == ("a", "b c d")
    assert engine.steps_read == 4


def test_typing_along_is_answered_without_the_engine():
    engine = ScriptedEngine({0: [" math", ".pi", "\n"]})
    first, completer = complete(engine, TEXT, len(TEXT), FAST)
    assert first.text == "math.pi"
    typed = TEXT + "mat"
    second, _ = complete(engine, typed, len(typed), FAST, completer=completer)
    assert second.text == "h.pi" and second.from_cache
    assert len(engine.requests) == 1
    assert completer._counters.completions_from_cache == 1


def test_cache_off_asks_the_engine_every_time():
    engine = ScriptedEngine({0: [" math", ".pi", "\n"]})
    settings = FAST.updated({"scheduling.cache": False})
    _, completer = complete(engine, TEXT, len(TEXT), settings)
    complete(engine, TEXT + "m", len(TEXT) + 1, settings, completer=completer)
    assert len(engine.requests) == 2


def test_near_the_models_limit_the_prompt_is_counted_exactly_and_shrunk():
    # Chunk counts run 3x low: the budget looks met, the exact count says otherwise.
    engine = ScriptedEngine({0: [" 1", "\n"]}, max_model_len=400, undercount=3)
    text = "".join(f"v{i} = {i} * {i}\n" for i in range(600)) + "x = "
    settings = FAST.updated({"prompt.maxPromptTokens": 5000, "generation.maxTokens": 32, "generation.maxLineTokens": 16})
    complete(engine, text, len(text), settings)
    prompt = engine.requests[0].prompt
    assert engine.tokenized_prompts >= 2
    assert len(prompt) // 4 <= 400 - 32, "the prompt plus the completion fits the model"
    assert text[:-1].endswith(prompt), "a line-aligned tail of the text (its trailing space healed)"


def test_the_trace_says_what_the_engine_did_and_where_the_time_went():
    engine = ScriptedEngine({0: [" math", ".pi", " * r", "\n", "x"]})
    trace = Trace("7", URI, "automatic")
    result, completer = complete(engine, TEXT, len(TEXT), FAST, trace=trace)
    assert result.text == "math.pi * r"
    assert trace.engine_request == engine.requests[0].request_id and trace.engine_end == ENGINE_EARLY_STOP
    assert (trace.tokens_received, trace.tokens_shown) == (4, 3)
    for stage in ("debounce_ms", "prompt_ms", "queue_ms", "first_token_ms"):
        assert getattr(trace, stage) is not None and getattr(trace, stage) >= 0, stage
    # Without early stop the engine finishes the request itself; from the cache it is not asked.
    finished = Trace("8", URI, "automatic")
    complete(engine, TEXT, len(TEXT), FAST.updated({"generation.earlyStop": False, "scheduling.cache": False}),
             trace=finished)
    assert finished.engine_end == ENGINE_FINISHED and finished.tokens_received == 5
    cached = Trace("9", URI, "automatic")
    typed = TEXT + "ma"
    complete(engine, typed, len(typed), FAST, completer=completer, trace=cached)
    assert cached.ended == CACHED and cached.engine_request is None


def test_the_trace_log_writes_one_json_line_per_completion(tmp_path):
    import json

    from lsp_server.completion.trace import SHOWN, TraceLog

    path = tmp_path / "trace.jsonl"
    traces = TraceLog(str(path))
    trace = Trace("1", URI, "automatic")
    trace.finish(SHOWN)
    traces.write(trace)
    traces.close()
    record = json.loads(path.read_text())
    assert record["id"] == "1" and record["ended"] == SHOWN and record["answer_ms"] >= 0
    assert "started" not in record
