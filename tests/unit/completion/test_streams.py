"""Answer early, keep going in the background, reuse the stream being typed through: the rules of
completion/streams.py through the real Completer and Scheduler, against an engine whose every delta
the test releases by hand (so keystrokes land exactly between two of them)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from engine.base import CompletionRequest, Delta, Engine, EngineCounters, EngineState, ModelInfo
from lsp_server.completion.completer import Completer
from lsp_server.completion.counters import ServerCounters
from lsp_server.completion.postprocess import StreamFilter
from lsp_server.completion.scheduler import Scheduler, Superseded
from lsp_server.completion.streams import Streams
from lsp_server.settings import Settings, leaves
from pydantic.alias_generators import to_camel

from .test_completer import Host

A, B = "file:///w/a.py", "file:///w/b.py"
TEXT = "def f(x):\n    "
#: A block of three lines, then a line at column 0 that ends it (the filter's dedent rule).
BLOCK = ["y", " = x", "\n", "    z = y", "\n", "    return z", "\n", "print", "(1)", "\n"]
FIRST = "y = x"
WHOLE = "y = x\n    z = y\n    return z"


class Gate:
    """One engine request: its deltas leave only as the test releases them."""

    def __init__(self, request: CompletionRequest, pieces: list[str]):
        self.request, self.pieces = request, pieces
        self.allowed = self.sent = 0
        self.moved = asyncio.Event()
        self.finished = self.closed = False

    def release(self, steps: int = 1) -> None:
        self.allowed += steps
        self.moved.set()

    def release_all(self) -> None:
        self.release(len(self.pieces))


class GatedEngine(Engine):
    def __init__(self, *scripts: list[str]):
        self.scripts = list(scripts)
        self.gates: list[Gate] = []

    @property
    def state(self) -> EngineState:
        return EngineState.READY

    async def start(self, progress=None) -> None: ...

    async def stream(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        gate = Gate(request, self.scripts[min(len(self.gates), len(self.scripts) - 1)])
        self.gates.append(gate)
        try:
            for piece in gate.pieces:
                while gate.sent >= gate.allowed:
                    gate.moved.clear()
                    await gate.moved.wait()
                gate.sent += 1
                yield Delta(text=piece, tokens=1)
                await asyncio.sleep(0)  # a real engine's next step is never ready at once
            gate.finished = True
        finally:
            gate.closed = not gate.finished

    @property
    def running(self) -> list[Gate]:
        return [g for g in self.gates if not g.finished and not g.closed]

    async def abort(self, request_id: str) -> None: ...

    def counters(self) -> EngineCounters:
        return EngineCounters()

    async def tokenize(self, text: str) -> list[int]:
        return [0] * (len(text) // 4)

    async def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(t) // 4 for t in texts]

    async def health(self) -> bool:
        return True

    async def close(self) -> None: ...

    def model_info(self) -> ModelInfo:
        return ModelInfo(name="gated", max_model_len=4096)


_pipelines: list[Pipeline] = []


def _path(name: str) -> str:
    """A setting's dotted path from its field name (`answer_early` → `generation.answerEarly`)."""
    camel = to_camel(name)
    return next(path for path in (f"generation.{camel}", f"scheduling.{camel}")
                if path in {leaf for leaf, _, _ in leaves()})


@pytest.fixture(autouse=True)
async def _close_pipelines():
    """Every stream a test left running is aborted before its event loop ends."""
    yield
    while _pipelines:
        await _pipelines.pop().completer.close()


class Pipeline:
    """The server's completion pipeline without LSP: requests, keystrokes, closes."""

    def __init__(self, engine: GatedEngine, max_in_flight: int = 4, **settings):
        _pipelines.append(self)
        self.settings = Settings().updated({"scheduling.debounceMs": 0, **{_path(k): v for k, v in settings.items()}})
        self.engine = engine
        self.counters = ServerCounters()
        self.scheduler = Scheduler(lambda: self.settings.scheduling.cancel_previous, lambda: max_in_flight)
        self.completer = Completer(Host(engine), self.counters, lambda: self.settings)

    def request(self, text: str, offset: int | None = None, uri: str = A, invoked: bool = False) -> asyncio.Task:
        async def run():
            async with self.scheduler.turn(uri) as turn:
                completion = await self.completer.complete(
                    text, len(text) if offset is None else offset, turn, uri=uri, invoked=invoked)
                return completion.candidates

        return asyncio.ensure_future(run())

    def change(self, text: str, uri: str = A) -> None:
        self.scheduler.document_changed(uri)
        self.completer.document_changed(uri, text)

    @property
    def streams(self) -> int:
        return len(self.completer.streams)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def answered(task: asyncio.Task):
    return await asyncio.wait_for(task, 5)


async def started(engine: GatedEngine, count: int = 1) -> Gate:
    for _ in range(200):
        if len(engine.gates) >= count:
            return engine.gates[count - 1]
        await asyncio.sleep(0)
    raise AssertionError(f"engine request {count} never started")


async def first_line_answered(pipe: Pipeline) -> tuple[Gate, tuple[str, ...]]:
    task = pipe.request(TEXT)
    gate = await started(pipe.engine, len(pipe.engine.gates) + 1)
    gate.release(3)  # "y", " = x", "\n": the first line is complete, the block is not
    return gate, await answered(task)


# -- answer early ---------------------------------------------------------------------------------

async def test_an_automatic_request_answers_at_its_first_complete_line():
    pipe = Pipeline(GatedEngine(BLOCK))
    gate, texts = await first_line_answered(pipe)
    assert texts == (FIRST,)
    assert gate.sent == 3 and not gate.closed, "the engine goes on: the block is not complete"
    assert pipe.counters.completions_answered_early == 1
    assert pipe.counters.tokens_shown == 2, "the two tokens of the line shown; the break is not shown yet"


async def test_without_answer_early_the_request_waits_for_the_whole_block():
    pipe = Pipeline(GatedEngine(BLOCK), answer_early=False)
    task = pipe.request(TEXT)
    gate = await started(pipe.engine)
    gate.release(3)
    await settle()
    assert not task.done()
    gate.release_all()
    assert await answered(task) == (WHOLE,)
    assert gate.closed, "the dedent completed the block: the stream was left (early stop)"
    assert pipe.counters.completions_answered_early == 0


async def test_a_deadline_gives_the_block_time_to_complete_first():
    pipe = Pipeline(GatedEngine(BLOCK), answer_deadline_ms=60_000)
    task = pipe.request(TEXT)
    gate = await started(pipe.engine)
    gate.release(5)  # two complete lines, inside the deadline: no answer yet
    await settle()
    assert not task.done()
    gate.release_all()
    assert await answered(task) == (WHOLE,)


async def test_after_the_deadline_the_complete_lines_so_far_are_shown(monkeypatch):
    # The stream's clock stands still while two lines arrive, then jumps past the deadline: how
    # fast a loaded machine delivers the deltas cannot decide how many lines are shown.
    import lsp_server.completion.streams as streams_module

    now = [1000.0]
    clock = type("Clock", (), {"monotonic": staticmethod(lambda: now[0])})
    monkeypatch.setattr(streams_module, "time", clock)
    pipe = Pipeline(GatedEngine(BLOCK), answer_deadline_ms=50)
    task = pipe.request(TEXT)
    gate = await started(pipe.engine)
    gate.release(5)  # two complete lines; the engine then stalls
    await settle()
    assert not task.done(), "within the deadline a block waits to be complete"
    now[0] += 1.0
    assert await answered(task) == ("y = x\n    z = y",)


async def test_invoked_requests_wait_for_whole_candidates():
    pipe = Pipeline(GatedEngine(BLOCK), candidates=2)
    task = pipe.request(TEXT, invoked=True)
    gate = await started(pipe.engine)
    gate.release(3)
    await settle()
    assert not task.done()
    gate.release_all()
    assert await answered(task) == (WHOLE,)
    assert gate.request.sampling.n == 2


# -- keep going in the background -----------------------------------------------------------------

async def test_the_background_stream_fills_the_cache_so_the_next_lines_need_no_engine():
    pipe = Pipeline(GatedEngine(BLOCK))
    gate, _ = await first_line_answered(pipe)
    await settle()
    assert pipe.counters.background_streams_started == 1
    assert pipe.scheduler.in_flight == 1, "a background stream holds its engine slot"
    gate.release_all()
    await settle()
    assert gate.closed and pipe.streams == 0 and pipe.scheduler.in_flight == 0
    assert pipe.counters.background_streams_aborted_complete == 1
    assert pipe.counters.background_tokens == len(BLOCK) - 3
    shown_before = pipe.counters.tokens_shown
    # The user accepts the first line: the rest of the block is there at once.
    accepted = TEXT + FIRST
    assert await answered(pipe.request(accepted)) == ("\n    z = y\n    return z",)
    assert len(pipe.engine.gates) == 1, "no second engine request"
    assert pipe.counters.completions_from_cache == 1
    assert pipe.counters.tokens_shown - shown_before == 4, "the lines' tokens count as shown, once"
    await answered(pipe.request(accepted + "\n    z"))
    assert pipe.counters.tokens_shown - shown_before == 4


async def test_lines_reach_the_cache_while_the_stream_is_still_running():
    pipe = Pipeline(GatedEngine(BLOCK))
    gate, _ = await first_line_answered(pipe)
    gate.release(2)  # the second line completes
    await settle()
    assert await answered(pipe.request(TEXT + FIRST)) == ("\n    z = y",)
    assert len(pipe.engine.gates) == 1 and not gate.closed


async def test_without_background_the_stream_stops_at_the_answer():
    pipe = Pipeline(GatedEngine(BLOCK), continue_in_background=False)
    gate, texts = await first_line_answered(pipe)
    await settle()
    assert texts == (FIRST,) and gate.closed and pipe.scheduler.in_flight == 0
    assert pipe.counters.background_streams_started == 0


async def test_a_contradicting_keystroke_aborts_the_background_stream():
    pipe = Pipeline(GatedEngine(BLOCK))
    gate, _ = await first_line_answered(pipe)
    await settle()
    pipe.change(TEXT + "w")
    await settle()
    assert gate.closed and pipe.scheduler.in_flight == 0 and pipe.streams == 0
    assert pipe.counters.background_streams_aborted_contradicted == 1
    assert pipe.counters.background_streams_aborted == 1


async def test_an_edit_elsewhere_in_the_document_contradicts_it_too():
    pipe = Pipeline(GatedEngine(BLOCK))
    gate, _ = await first_line_answered(pipe)
    await settle()
    pipe.change("import os\n" + TEXT)
    await settle()
    assert gate.closed and pipe.counters.background_streams_aborted_contradicted == 1


async def test_an_agreeing_keystroke_keeps_it_and_a_later_contradiction_from_the_engine_aborts_it():
    pipe = Pipeline(GatedEngine(BLOCK))
    gate, _ = await first_line_answered(pipe)
    pipe.change(TEXT + FIRST + "\n    q")  # agrees up to what it generated ("\n" so far)
    await settle()
    assert not gate.closed
    gate.release(1)  # "    z = y": the document says "q"
    await settle()
    assert gate.closed and pipe.counters.background_streams_aborted_contradicted == 1


async def test_a_newer_request_that_needs_the_engine_aborts_the_background_stream():
    pipe = Pipeline(GatedEngine(BLOCK, ["0", "\n"]))
    gate, _ = await first_line_answered(pipe)
    await settle()
    # The cursor moved (no keystroke contradicted the stream) to a place it cannot serve.
    second = pipe.request(TEXT, offset=5)
    new = await started(pipe.engine, 2)
    assert gate.closed and pipe.counters.background_streams_aborted_superseded == 1
    new.release_all()
    assert await answered(second) == ("0",)
    await settle()
    assert pipe.scheduler.in_flight == 0


async def test_the_block_being_complete_ends_the_background_stream_early():
    pipe = Pipeline(GatedEngine(BLOCK + ["never", " read"]))
    gate, _ = await first_line_answered(pipe)
    gate.release_all()
    await settle()
    assert gate.closed and gate.sent == len(BLOCK), "left at the dedent, before the engine's end"
    assert pipe.counters.background_streams_aborted_complete == 1


async def test_a_background_stream_yields_its_slot_to_a_request_that_waits_for_one():
    pipe = Pipeline(GatedEngine(BLOCK, ["1", "\n"]), max_in_flight=1)
    gate, _ = await first_line_answered(pipe)
    await settle()
    assert pipe.scheduler.in_flight == 1
    other = pipe.request("n = ", uri=B)
    new = await started(pipe.engine, 2)
    assert gate.closed and pipe.counters.background_streams_aborted_overload == 1
    new.release_all()
    assert await answered(other) == ("1",)
    await settle()
    assert pipe.scheduler.in_flight == 0 and pipe.scheduler.waiting == 0


async def test_a_stream_someone_waits_for_is_never_preempted():
    pipe = Pipeline(GatedEngine(BLOCK, ["1", "\n"]), max_in_flight=1)
    first = pipe.request(TEXT)
    gate = await started(pipe.engine)
    other = pipe.request("n = ", uri=B)
    await settle()
    assert pipe.scheduler.waiting == 1 and not gate.closed
    gate.release_all()
    assert await answered(first) == (FIRST,)
    # Answered, it would go on in the background; a request is waiting, so it yields at once.
    new = await started(pipe.engine, 2)
    new.release_all()
    assert await answered(other) == ("1",)
    assert gate.closed and pipe.counters.background_streams_aborted_overload == 1


async def test_closing_the_document_or_the_server_aborts_its_streams():
    pipe = Pipeline(GatedEngine(BLOCK))
    gate, _ = await first_line_answered(pipe)
    await settle()
    pipe.completer.document_closed(A)
    await settle()
    assert gate.closed and pipe.counters.background_streams_aborted_closed == 1
    gate, _ = await first_line_answered(pipe)
    await pipe.completer.close()
    assert gate.closed and pipe.streams == 0 and pipe.scheduler.in_flight == 0


# -- reuse the stream being typed through ---------------------------------------------------------

async def test_a_keystroke_that_agrees_is_served_from_the_stream_in_flight():
    pipe = Pipeline(GatedEngine(BLOCK), cache=False)
    first = pipe.request(TEXT)
    gate = await started(pipe.engine)
    gate.release(1)  # "y": the first line is not complete, nothing was answered
    await settle()
    typed = TEXT + "y "
    pipe.change(typed)
    second = pipe.request(typed)
    with pytest.raises(Superseded):
        await answered(first)  # the older request is answered empty; its stream lives on
    await settle()
    assert not gate.closed, "typed ' ' where the stream has not got yet: undecided, kept"
    gate.release(2)  # " = x", "\n"
    assert await answered(second) == ("= x",)
    assert len(pipe.engine.gates) == 1, "served by the same engine request"
    assert pipe.counters.completions_from_stream == 1


async def test_a_request_waits_on_the_stream_for_the_rest_of_its_line():
    pipe = Pipeline(GatedEngine(BLOCK), cache=False)
    gate, _ = await first_line_answered(pipe)
    typed = TEXT + FIRST + "\n    z"  # the user typed on past the complete lines
    pipe.change(typed)
    second = pipe.request(typed)
    await settle()
    assert not second.done()
    gate.release(1)  # "    z = y": the line is not complete yet
    await settle()
    assert not second.done()
    gate.release(1)
    assert await answered(second) == (" = y",)
    assert len(pipe.engine.gates) == 1 and pipe.counters.completions_from_stream == 1


async def test_a_keystroke_that_contradicts_aborts_the_stream_and_asks_the_engine():
    pipe = Pipeline(GatedEngine(BLOCK, ["0", "\n"]), cache=False)
    first = pipe.request(TEXT)
    gate = await started(pipe.engine)
    gate.release(1)
    await settle()
    typed = TEXT + "w"
    pipe.change(typed)
    await settle()
    assert gate.closed, "the stream said 'y'"
    with pytest.raises(Superseded):
        await answered(first)
    second = pipe.request(typed)
    new = await started(pipe.engine, 2)
    new.release_all()
    assert await answered(second) == ("0",)
    assert pipe.counters.completions_from_stream == 0


async def test_undecided_then_contradicted_by_the_stream_the_request_goes_to_the_engine():
    pipe = Pipeline(GatedEngine(BLOCK, ["0", "\n"]), cache=False)
    first = pipe.request(TEXT)
    gate = await started(pipe.engine)
    gate.release(1)  # "y"
    await settle()
    typed = TEXT + "y?"
    pipe.change(typed)
    second = pipe.request(typed)
    with pytest.raises(Superseded):
        await answered(first)
    gate.release(1)  # " = x" contradicts "?"
    new = await started(pipe.engine, 2)
    assert gate.closed
    new.release_all()
    assert await answered(second) == ("0",)


async def test_without_reuse_a_newer_request_aborts_the_stream_as_before():
    pipe = Pipeline(GatedEngine(BLOCK, ["0", "\n"]), reuse_stream=False, cache=False)
    first = pipe.request(TEXT)
    gate = await started(pipe.engine)
    gate.release(1)
    await settle()
    typed = TEXT + "y"
    pipe.change(typed)
    second = pipe.request(typed)
    with pytest.raises(Superseded):
        await answered(first)
    await settle()
    assert gate.closed, "cancel-previous: nobody waits for it and it may not be reused"
    (await started(pipe.engine, 2)).release_all()
    await answered(second)
    assert pipe.counters.completions_from_stream == 0


async def test_a_client_cancel_leaves_the_stream_for_the_next_keystroke_to_decide():
    pipe = Pipeline(GatedEngine(BLOCK), cache=False)
    first = pipe.request(TEXT)
    gate = await started(pipe.engine)
    gate.release(1)
    await settle()
    first.cancel()  # VS Code cancels the outstanding request before each keystroke
    with pytest.raises(asyncio.CancelledError):
        await first
    await settle()
    assert not gate.closed and pipe.scheduler.in_flight == 1
    pipe.change(TEXT + "q")
    await settle()
    assert gate.closed and pipe.scheduler.in_flight == 0
    assert pipe.counters.background_streams_aborted_contradicted == 1


async def test_a_client_cancel_nothing_takes_over_stops_the_engine_after_the_grace(monkeypatch):
    import lsp_server.completion.streams as streams_module

    monkeypatch.setattr(streams_module, "CANCEL_GRACE_S", 0.05)
    pipe = Pipeline(GatedEngine(BLOCK), cache=False)
    first = pipe.request(TEXT)
    gate = await started(pipe.engine)
    gate.release(1)
    await settle()
    first.cancel()  # Escape, or the cursor moved away: no keystroke request follows
    with pytest.raises(asyncio.CancelledError):
        await first
    async with asyncio.timeout(5):
        while not gate.closed:
            await asyncio.sleep(0.01)
    await settle()
    assert pipe.scheduler.in_flight == 0 and pipe.counters.background_streams_aborted_cancelled == 1


async def test_a_request_that_takes_a_cancelled_stream_over_keeps_it_past_the_grace(monkeypatch):
    import lsp_server.completion.streams as streams_module

    monkeypatch.setattr(streams_module, "CANCEL_GRACE_S", 0.05)
    pipe = Pipeline(GatedEngine(BLOCK), cache=False)
    first = pipe.request(TEXT)
    gate = await started(pipe.engine)
    gate.release(1)  # "y"
    await settle()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    pipe.change(TEXT + "y")
    second = pipe.request(TEXT + "y")  # the keystroke's request agrees: it waits on the stream
    await asyncio.sleep(0.2)
    assert not gate.closed and pipe.counters.background_streams_aborted_cancelled == 0
    gate.release_all()
    assert await answered(second) == (" = x",)


async def test_a_client_cancel_of_an_invoked_request_aborts_it():
    pipe = Pipeline(GatedEngine(BLOCK), candidates=2)
    task = pipe.request(TEXT, invoked=True)
    gate = await started(pipe.engine)
    gate.release(1)
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await settle()
    assert gate.closed and pipe.scheduler.in_flight == 0


async def test_a_timed_out_request_takes_its_stream_with_it():
    pipe = Pipeline(GatedEngine(BLOCK), cache=False)
    first = pipe.request(TEXT)
    gate = await started(pipe.engine)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    pipe.completer.abandon(A)
    await settle()
    assert gate.closed and pipe.scheduler.in_flight == 0


async def test_with_every_new_behaviour_off_a_request_waits_for_its_block_and_dies_with_it():
    pipe = Pipeline(GatedEngine(BLOCK), answer_early=False, continue_in_background=False, reuse_stream=False)
    first = pipe.request(TEXT)
    gate = await started(pipe.engine)
    gate.release(3)
    await settle()
    second = pipe.request(TEXT + "y")
    with pytest.raises(Superseded):
        await answered(first)
    await settle()
    assert gate.closed
    (await started(pipe.engine, 2)).release_all()
    assert await answered(second) == (WHOLE,)
    counters = pipe.counters
    assert (counters.background_streams_started, counters.completions_answered_early,
            counters.completions_from_stream) == (0, 0, 0)


async def test_a_stream_aborted_before_its_task_ran_still_frees_its_slot():
    scheduler = Scheduler(lambda: True, lambda: 1)
    async with scheduler.turn(A) as turn:
        lease = await turn.admit()
    streams = Streams(ServerCounters(), lambda: Settings())
    stream = streams.start(
        uri=A, before=TEXT, after="", engine=GatedEngine(BLOCK), request=CompletionRequest("r", "p"),
        filters=[StreamFilter(multiline=True, line_prefix="    ")], lease=lease, early_stop=True,
        shareable=True, cache=None)
    stream.abort("closed")  # synchronously: the stream's task has not taken a step
    await asyncio.wait_for(stream.task, 5)
    assert scheduler.in_flight == 0 and len(streams) == 0
