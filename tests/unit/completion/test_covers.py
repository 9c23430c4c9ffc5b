"""What a suggestion covers after the cursor (an auto-closed `)` it re-supplies) reaches every answer
of the streams pipeline: a new stream's, a reused stream's, the typed-ahead cache's and a
speculation's. Through the real Completer, Scheduler and streams, against an engine whose deltas the
test releases by hand (test_streams.py)."""

from __future__ import annotations

import asyncio

import pytest

from lsp_server.completion.completer import Completion
from lsp_server.completion.scheduler import Superseded
from lsp_server.completion.speculation import Speculation

from .test_completer import Host
from .test_speculation import begun, until
from .test_streams import (  # noqa: F401 - _close_pipelines: the autouse fixture that ends every stream
    A,
    GatedEngine,
    Pipeline,
    _close_pipelines,
    answered,
    settle,
    started,
)

#: `max(|)` with the editor's `)` after the cursor; the model closes the call itself and goes on.
BEFORE, AFTER = "values = [3, 1, 2]\nbiggest = max(", ")\nprint(biggest)\n"
CALL = ["values", ", key=abs", ") + 1", "\n"]
SHOWN = "values, key=abs) + 1"
#: What the engine writes after the accepted line (the speculation's stream).
NEXT = ["\n", "print(values)", "\n", "\n", "\n"]


class Covering(Pipeline):
    """The pipeline with the server's speculation; requests answer the whole Completion."""

    def __init__(self, engine: GatedEngine, **settings):
        super().__init__(engine, **settings)
        self.texts = {A: BEFORE + AFTER}
        self.speculation = Speculation(self.completer, self.scheduler, Host(engine), self.counters,
                                       lambda: self.settings, self.texts.get)

    def ask(self, before: str, after: str = AFTER) -> asyncio.Task:
        async def run() -> Completion:
            async with self.scheduler.turn(A) as turn:
                return await self.completer.complete(before + after, len(before), turn, uri=A, language="python")

        return asyncio.ensure_future(run())

    def change(self, text: str, uri: str = A) -> None:
        self.texts[uri] = text
        super().change(text, uri)
        self.speculation.document_changed(uri)


async def test_a_new_streams_answer_covers_the_closer_it_re_supplies():
    pipe = Covering(GatedEngine(CALL))
    task = pipe.ask(BEFORE)
    (await started(pipe.engine)).release_all()
    assert (await answered(task)).items == ((SHOWN, ")"),)


async def test_without_cover_closers_the_answer_is_trimmed_and_covers_nothing():
    pipe = Covering(GatedEngine(CALL), cover_closers=False)
    task = pipe.ask(BEFORE)
    (await started(pipe.engine)).release_all()
    assert (await answered(task)).items == (("values, key=abs", ""),)


async def test_the_typed_ahead_cache_keeps_the_cover_while_the_user_types_along():
    pipe = Covering(GatedEngine(CALL), speculate=False)
    task = pipe.ask(BEFORE)
    (await started(pipe.engine)).release_all()
    await answered(task)
    pipe.change(BEFORE + "val" + AFTER)
    completion = await answered(pipe.ask(BEFORE + "val"))
    assert completion.from_cache and completion.items == (("ues, key=abs) + 1", ")"),)
    assert len(pipe.engine.gates) == 1


async def test_a_reused_stream_answers_with_the_cover_of_the_document_as_it_is_now():
    pipe = Covering(GatedEngine(CALL), speculate=False)
    first = pipe.ask(BEFORE)
    gate = await started(pipe.engine)
    gate.release(1)  # "values": the line is not complete yet
    await settle()
    pipe.change(BEFORE + "val" + AFTER)  # typing what the stream generated
    second = pipe.ask(BEFORE + "val")
    await settle()
    gate.release_all()
    completion = await answered(second)
    assert completion.items == (("ues, key=abs) + 1", ")"),)
    assert pipe.counters.completions_from_stream == 1 and len(pipe.engine.gates) == 1
    with pytest.raises(Superseded):  # by the keystroke's request
        await answered(first)


async def test_a_speculation_after_a_covering_suggestion_starts_after_the_closers_it_replaces():
    pipe = Covering(GatedEngine(CALL, NEXT))
    task = pipe.ask(BEFORE)
    (await started(pipe.engine)).release_all()
    completion = await answered(task)
    text, covers = completion.items[0]
    pipe.speculation.shown(A, BEFORE + AFTER, len(BEFORE), text, covers=covers, language="python")
    spec = await begun(pipe.engine, 2)
    accepted = BEFORE + SHOWN
    # At the end of the accepted line the next lines are asked for (a pause there only asks for the
    # rest of the line: the syntax says it is complete).
    assert spec.request.sampling.max_tokens == pipe.settings.generation.max_tokens
    # The line after accepting: the editor's `)` was replaced, not kept after the suggestion.
    assert spec.request.prompt.endswith(accepted)
    stream = next(s for group in pipe.completer.streams._live.values() for s in group)
    assert (stream.before, stream.after) == (accepted, AFTER[len(covers):])
    spec.release_all()
    await until(lambda: pipe.scheduler.in_flight == 0, "the speculation ended")
    # The user accepts (the range replaces the `)`): the next line comes from the cache.
    pipe.change(accepted + AFTER[1:])
    after_accept = await answered(pipe.ask(accepted, AFTER[1:]))
    assert after_accept.from_cache and after_accept.items == (("\nprint(values)", ""),)
    assert len(pipe.engine.gates) == 2


async def test_a_suggestion_that_leaves_code_after_its_cover_is_not_speculated_on():
    pipe = Covering(GatedEngine(CALL, NEXT))
    text = BEFORE + ")  # the biggest\n"
    pipe.texts[A] = text
    pipe.speculation.shown(A, text, len(BEFORE), SHOWN, covers=")", language="python")
    await asyncio.sleep(0.05)
    assert not pipe.speculation._pending and pipe.counters.speculations_started == 0


def test_after_an_accepted_complete_line_the_next_lines_are_expected():
    from lsp_server.completion.completer import block_expected
    from lsp_server.settings import Settings

    text = "def f(values):\n    total = sum(values)\n"
    offset = text.index(")\n") + 1
    settings = Settings()
    assert block_expected(settings, text, offset, "python") is False  # a pause there: the line's rest
    assert block_expected(settings, text, offset, "python", after_accept=True) is True  # speculation
    incomplete = "x = \n"
    assert block_expected(settings, incomplete, 4, "python", after_accept=True) is False
    assert block_expected(Settings().updated({"generation.syntax": False}), text, offset, "python", True) is None


async def test_typing_a_covering_suggestion_by_hand_keeps_its_speculation():
    pipe = Covering(GatedEngine(CALL, NEXT))
    task = pipe.ask(BEFORE)
    (await started(pipe.engine)).release_all()
    text, covers = (await answered(task)).items[0]
    pipe.speculation.shown(A, BEFORE + AFTER, len(BEFORE), text, covers=covers, language="python")
    spec = await begun(pipe.engine, 2)
    spec.release(1)
    # Typed by hand, the editor's `)` stays after what was typed until the user types over it.
    for typed in ("val", "values, key=abs"):
        pipe.change(BEFORE + typed + AFTER)
        await settle()
        assert not spec.closed, f"{typed!r} leads to the accepted text"
    pipe.change(BEFORE + "values, key=abs)" + AFTER[1:])  # the editor typed over its `)`
    await settle()
    assert not spec.closed
    pipe.change(BEFORE + "values, key=max" + AFTER)  # not the suggestion
    await until(lambda: spec.closed, "the speculation was stopped")
