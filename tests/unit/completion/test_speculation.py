"""Speculation: after a suggestion is shown and the engine is idle, the completion that follows
accepting it is computed at the lowest priority, feeds the typed-ahead cache, and is stopped by any
keystroke but the accept and by any request that needs the engine. Through the real Completer,
Scheduler and streams, against an engine whose deltas the test releases by hand."""

from __future__ import annotations

import asyncio

from lsp_server.completion.speculation import Speculation

from .test_streams import (  # noqa: F401 - _close_pipelines: the autouse fixture that ends every stream
    BLOCK,
    FIRST,
    TEXT,
    WHOLE,
    GatedEngine,
    Pipeline,
    _close_pipelines,
    answered,
    settle,
    started,
)
from .test_completer import Host

A, B = "file:///w/a.py", "file:///w/b.py"
#: What the engine writes after the accepted block: two more lines, then a dedent that ends them.
AFTER = ["\n    ", "w = z", "\n", "    return w", "\n", "x", "\n"]
NEXT = "\n    w = z\n    return w"


class Speculating(Pipeline):
    """The pipeline with the server's speculation, and the documents' texts it reads."""

    def __init__(self, engine: GatedEngine, **settings):
        super().__init__(engine, **settings)
        self.texts: dict[str, str] = {A: TEXT, B: "x = 1\n"}
        self.speculation = Speculation(self.completer, self.scheduler, Host(engine), self.counters,
                                       lambda: self.settings, self.texts.get)

    def change(self, text: str, uri: str = A) -> None:
        self.texts[uri] = text
        super().change(text, uri)
        self.speculation.document_changed(uri)

    def shown(self, text: str = TEXT, uri: str = A) -> asyncio.Task:
        """Ask at the end of `text` and show the answer, as the handler does."""
        async def ask():
            texts = await answered(self.request(text, uri=uri))
            if texts:
                self.speculation.shown(uri, text, len(text), texts[0])
            return texts

        return asyncio.ensure_future(ask())


async def until(predicate, what: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(0.005)


async def begun(engine: GatedEngine, count: int):
    """Engine request `count`, once it has started (a speculation starts after a poll interval)."""
    await until(lambda: len(engine.gates) >= count, f"engine request {count} started")
    return engine.gates[count - 1]


async def shown_whole_block(pipe: Speculating):
    """The first request shows its first line; its background continuation completes the block."""
    answer = pipe.shown()
    gate = await started(pipe.engine)
    gate.release_all()
    assert await answer == (FIRST,)
    await until(lambda: pipe.scheduler.in_flight == 0, "the background continuation ended")
    return gate


async def test_after_the_block_is_complete_the_completion_after_accepting_it_is_computed():
    pipe = Speculating(GatedEngine(BLOCK, AFTER))
    await shown_whole_block(pipe)
    spec = await begun(pipe.engine, 2)
    # The whole block, as the background continuation left it in the cache, taken as accepted.
    assert spec.request.prompt.endswith(TEXT + WHOLE)
    assert pipe.counters.speculations_started == 1
    spec.release_all()
    await until(lambda: pipe.scheduler.in_flight == 0, "the speculation ended")
    assert pipe.counters.speculations_finished == 1 and pipe.counters.speculation_tokens == len(AFTER)
    # The user accepts the block (one edit): the next lines are there, with no engine request.
    pipe.change(TEXT + WHOLE)
    shown_before = pipe.counters.tokens_shown
    assert await answered(pipe.request(TEXT + WHOLE)) == (NEXT,)
    assert len(pipe.engine.gates) == 2 and pipe.counters.completions_from_cache == 1
    assert pipe.counters.tokens_shown - shown_before == 4, "the speculation's tokens count once they are shown"


async def test_an_accept_while_it_runs_waits_on_it_instead_of_asking_the_engine():
    pipe = Speculating(GatedEngine(BLOCK, AFTER))
    await shown_whole_block(pipe)
    spec = await begun(pipe.engine, 2)
    pipe.change(TEXT + WHOLE)
    task = pipe.request(TEXT + WHOLE)
    await settle()
    spec.release(3)  # its first line is complete
    assert await answered(task) == ("\n    w = z",)
    assert len(pipe.engine.gates) == 2 and pipe.counters.completions_from_stream == 1
    assert not spec.closed, "accepted: it goes on for the next lines"


async def test_a_contradicting_keystroke_stops_it():
    pipe = Speculating(GatedEngine(BLOCK, AFTER))
    await shown_whole_block(pipe)
    spec = await begun(pipe.engine, 2)
    spec.release(1)
    await settle()
    pipe.change(TEXT + "q")  # not the accept
    await until(lambda: spec.closed and pipe.scheduler.in_flight == 0, "the speculation was aborted")
    assert pipe.counters.speculations_aborted == 1 and pipe.counters.speculations_finished == 0
    assert pipe.streams == 0


async def test_typing_the_suggestion_by_hand_keeps_it_and_speculates_once():
    pipe = Speculating(GatedEngine(BLOCK, AFTER))
    await shown_whole_block(pipe)
    spec = await begun(pipe.engine, 2)
    spec.release(1)
    # The user types the block's first characters instead of accepting it: on the way to the
    # accepted text. The rest of the suggestion comes from the cache and is shown again.
    for typed in (WHOLE[:1], WHOLE[:3]):
        pipe.change(TEXT + typed)
        assert await answered(pipe.request(TEXT + typed)) == (WHOLE[len(typed):],)
        pipe.speculation.shown(A, TEXT + typed, len(TEXT + typed), WHOLE[len(typed):])
    await asyncio.sleep(0.1)
    assert not spec.closed, "typing along the suggestion leads to the accepted text"
    assert len(pipe.engine.gates) == 2 and pipe.counters.speculations_started == 1
    spec.release_all()
    await until(lambda: pipe.scheduler.in_flight == 0, "the speculation ended")
    await asyncio.sleep(0.1)
    assert len(pipe.engine.gates) == 2, "the same accepted text is not speculated on again"
    # Typed to the end of the suggestion: the speculation's lines are there.
    pipe.change(TEXT + WHOLE)
    assert await answered(pipe.request(TEXT + WHOLE)) == (NEXT,)
    assert len(pipe.engine.gates) == 2 and pipe.counters.speculations_finished == 1


async def test_typing_away_from_the_suggestion_half_way_stops_it():
    pipe = Speculating(GatedEngine(BLOCK, AFTER))
    await shown_whole_block(pipe)
    spec = await begun(pipe.engine, 2)
    spec.release(1)
    pipe.change(TEXT + WHOLE[:3])
    await settle()
    assert not spec.closed
    pipe.change(TEXT + WHOLE[:3] + "Q")  # not the suggestion's next character
    await until(lambda: spec.closed and pipe.scheduler.in_flight == 0, "the speculation was aborted")
    assert pipe.counters.speculations_aborted == 1


async def test_a_keystroke_before_it_starts_means_it_never_does():
    pipe = Speculating(GatedEngine(BLOCK, AFTER), debounce_ms=50)
    answer = pipe.shown()
    gate = await begun(pipe.engine, 1)
    gate.release(3)
    await answer
    pipe.change(TEXT + "y")  # the user types on while the block is still being generated
    gate.release_all()
    await until(lambda: pipe.scheduler.in_flight == 0, "the background continuation ended")
    await asyncio.sleep(0.2)  # longer than the debounce: it would have started by now
    assert len(pipe.engine.gates) == 1 and pipe.counters.speculations_started == 0


async def test_it_waits_for_an_idle_engine_and_gives_way_to_any_request():
    pipe = Speculating(GatedEngine(BLOCK, AFTER, ["1"]))
    answer = pipe.shown()
    gate = await started(pipe.engine)
    gate.release(3)
    await answer
    await asyncio.sleep(0.1)
    assert len(pipe.engine.gates) == 1, "the background continuation still runs: no speculation yet"
    gate.release_all()
    spec = await begun(pipe.engine, 2)
    # Another document needs the engine: the speculation goes, though three slots are free.
    other = pipe.request("x = ", uri=B)
    third = await begun(pipe.engine, 3)
    await until(lambda: spec.closed, "the speculation was preempted")
    third.release_all()
    assert await answered(other) == ("1",)
    assert pipe.counters.speculations_aborted == 1
    await until(lambda: pipe.scheduler.in_flight == 0, "nothing runs")


async def test_close_drops_pending_ones_and_the_streams_end_running_ones():
    pipe = Speculating(GatedEngine(BLOCK, AFTER))
    await shown_whole_block(pipe)
    spec = await begun(pipe.engine, 2)
    pipe.speculation.shown(B, "x = 1\n", 6, "y = 2")  # pending, waiting for the idle engine
    await pipe.speculation.close()
    await pipe.completer.close()
    assert spec.closed and pipe.scheduler.in_flight == 0 and pipe.streams == 0
    assert pipe.counters.speculations_started == 1 and pipe.counters.speculations_aborted == 1


async def test_one_waiting_for_the_engine_gives_up_when_speculation_is_turned_off():
    pipe = Speculating(GatedEngine(BLOCK, AFTER))
    await shown_whole_block(pipe)
    spec = await begun(pipe.engine, 2)
    pipe.speculation.shown(B, "x = 1\n", 6, "y = 2")  # pending, waiting for the idle engine
    await settle()
    pipe.settings = pipe.settings.updated({"generation.speculate": False})
    spec.release_all()
    await until(lambda: pipe.scheduler.in_flight == 0, "the running one ended")
    await asyncio.sleep(0.2)  # a few of its polls
    assert len(pipe.engine.gates) == 2 and pipe.counters.speculations_started == 1, "the waiting one never started"


async def test_not_when_turned_off_or_when_the_line_goes_on_after_the_suggestion():
    pipe = Speculating(GatedEngine(BLOCK, AFTER), speculate=False)
    await shown_whole_block(pipe)
    await asyncio.sleep(0.1)
    assert len(pipe.engine.gates) == 1
    pipe = Speculating(GatedEngine(AFTER))
    pipe.texts[A] = "print(x, )\n"
    pipe.speculation.shown(A, "print(x, )\n", 9, "a")  # `a` shown before `)`
    await asyncio.sleep(0.1)
    assert not pipe.engine.gates, "the accepted text would not end its line"
