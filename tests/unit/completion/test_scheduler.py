"""Debounce, cancel-previous and the in-flight bound, on plain asyncio (no engine)."""

import asyncio

import pytest

from lsp_server.completion.scheduler import Scheduler, Shed, Superseded


def make(cancel_previous=True, max_in_flight=4):
    return Scheduler(cancel_previous=lambda: cancel_previous, max_in_flight=lambda: max_in_flight)


async def test_newer_request_drops_a_debouncing_one():
    scheduler = make()
    started = asyncio.Event()

    async def first():
        async with scheduler.turn("a") as turn:
            started.set()
            await turn.debounce(10)

    task = asyncio.ensure_future(first())
    await started.wait()
    async with scheduler.turn("a"):
        pass
    with pytest.raises(Superseded) as info:
        await asyncio.wait_for(task, 1)
    assert info.value.reached_engine is False


async def test_change_drops_a_debouncing_request_but_not_other_documents():
    scheduler = make()
    async with scheduler.turn("a") as turn_a, scheduler.turn("b") as turn_b:
        scheduler.document_changed("a")
        with pytest.raises(Superseded):
            await turn_a.debounce(10)
        await turn_b.debounce(0.01)  # unaffected


async def test_cancel_previous_cancels_engine_work_and_answers_superseded():
    scheduler = make()
    in_engine = asyncio.Event()
    cancelled = asyncio.Event()

    async def work():
        in_engine.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def first():
        async with scheduler.turn("a") as turn:
            return await turn.run(work)

    task = asyncio.ensure_future(first())
    await in_engine.wait()
    async with scheduler.turn("a"):
        pass
    with pytest.raises(Superseded) as info:
        await asyncio.wait_for(task, 1)
    assert info.value.reached_engine is True
    assert cancelled.is_set()
    assert scheduler.in_flight == 0


async def test_without_cancel_previous_engine_work_continues():
    scheduler = make(cancel_previous=False)
    release = asyncio.Event()
    in_engine = asyncio.Event()

    async def work():
        in_engine.set()
        await release.wait()
        return "done"

    async def first():
        async with scheduler.turn("a") as turn:
            return await turn.run(work)

    task = asyncio.ensure_future(first())
    await in_engine.wait()
    async with scheduler.turn("a"):
        release.set()
    assert await asyncio.wait_for(task, 1) == "done"


async def test_client_cancel_propagates_as_cancelled_error():
    scheduler = make()
    in_engine = asyncio.Event()

    async def work():
        in_engine.set()
        await asyncio.sleep(10)

    async def handler():
        async with scheduler.turn("a") as turn:
            return await turn.run(work)

    task = asyncio.ensure_future(handler())
    await in_engine.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert scheduler.in_flight == 0


class Engine:
    """Work items that run until their gate opens, recording who entered and who was cancelled."""

    def __init__(self):
        self.gates, self.entered, self.cancelled = {}, {}, set()

    def work(self, name):
        self.gates[name], self.entered[name] = asyncio.Event(), asyncio.Event()

        async def run():
            self.entered[name].set()
            try:
                await self.gates[name].wait()
            except asyncio.CancelledError:
                self.cancelled.add(name)
                raise
            return name
        return run


async def request(scheduler, engine, name, uri=None):
    async with scheduler.turn(uri or name) as turn:
        return await turn.run(engine.work(name))


async def settle():
    for _ in range(5):
        await asyncio.sleep(0)


async def test_at_the_bound_a_new_document_waits_and_running_work_is_never_aborted():
    scheduler, engine = make(max_in_flight=2), Engine()
    a = asyncio.ensure_future(request(scheduler, engine, "a"))
    b = asyncio.ensure_future(request(scheduler, engine, "b"))
    await settle()
    c = asyncio.ensure_future(request(scheduler, engine, "c"))
    await settle()
    assert (scheduler.in_flight, scheduler.waiting) == (2, 1)
    assert not engine.entered["c"].is_set()
    engine.gates["a"].set()
    assert await a == "a"
    await settle()
    assert engine.entered["c"].is_set() and scheduler.in_flight == 2
    engine.gates["b"].set()
    engine.gates["c"].set()
    assert await asyncio.gather(b, c) == ["b", "c"]
    assert engine.cancelled == set()
    assert (scheduler.in_flight, scheduler.waiting) == (0, 0)


async def test_a_full_line_sheds_its_oldest_waiter_at_once():
    scheduler, engine = make(max_in_flight=1), Engine()
    running = asyncio.ensure_future(request(scheduler, engine, "run"))
    await settle()
    old = asyncio.ensure_future(request(scheduler, engine, "old"))
    await settle()
    new = asyncio.ensure_future(request(scheduler, engine, "new"))
    with pytest.raises(Shed) as info:
        await asyncio.wait_for(old, 1)
    assert info.value.reached_engine is False
    assert scheduler.waiting == 1
    engine.gates["run"].set()
    await running
    await settle()
    engine.gates["new"].set()
    assert await asyncio.wait_for(new, 1) == "new"
    assert (scheduler.in_flight, scheduler.waiting) == (0, 0)


async def test_a_keystroke_takes_a_waiting_request_out_of_the_line():
    scheduler, engine = make(max_in_flight=1), Engine()
    running = asyncio.ensure_future(request(scheduler, engine, "run"))
    await settle()
    waiting = asyncio.ensure_future(request(scheduler, engine, "w1", uri="doc"))
    await settle()
    scheduler.document_changed("doc")
    with pytest.raises(Superseded) as info:
        await asyncio.wait_for(waiting, 1)
    assert info.value.reached_engine is False
    assert scheduler.waiting == 0
    engine.gates["run"].set()
    await running
    assert not engine.entered["w1"].is_set()


async def test_a_client_cancel_in_the_line_frees_everything():
    scheduler, engine = make(max_in_flight=1), Engine()
    running = asyncio.ensure_future(request(scheduler, engine, "run"))
    await settle()
    waiting = asyncio.ensure_future(request(scheduler, engine, "w"))
    await settle()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert scheduler.waiting == 0
    engine.gates["run"].set()
    await running
    assert (scheduler.in_flight, scheduler.waiting) == (0, 0)


async def test_a_slot_granted_to_a_request_superseded_meanwhile_goes_to_the_next():
    scheduler, engine = make(max_in_flight=2), Engine()
    runs = [asyncio.ensure_future(request(scheduler, engine, name)) for name in ("r1", "r2")]
    await settle()
    first = asyncio.ensure_future(request(scheduler, engine, "first", uri="x"))
    second = asyncio.ensure_future(request(scheduler, engine, "second", uri="y"))
    await settle()
    turn = scheduler._latest["x"]
    engine.gates["r1"].set()  # the slot goes to "first" ...
    while not turn.granted:
        await asyncio.sleep(0)
    assert not turn.in_engine
    scheduler.document_changed("x")  # ... whose document changes before it starts
    with pytest.raises(Superseded) as info:
        await asyncio.wait_for(first, 1)
    assert not isinstance(info.value, Shed) and not engine.entered["first"].is_set()
    await settle()
    assert engine.entered["second"].is_set()
    engine.gates["r2"].set()
    engine.gates["second"].set()
    assert await asyncio.wait_for(asyncio.gather(*runs, second), 1) == ["r1", "r2", "second"]
    assert (scheduler.in_flight, scheduler.waiting) == (0, 0)
