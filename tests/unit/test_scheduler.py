"""Debounce, cancel-previous and the in-flight bound, on plain asyncio (no engine)."""

import asyncio

import pytest

from lsp_server.scheduler import Scheduler, Superseded


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


async def test_in_flight_bound_aborts_the_oldest():
    scheduler = make(max_in_flight=2)
    gates = [asyncio.Event() for _ in range(3)]
    entered = [asyncio.Event() for _ in range(3)]

    def work(i):
        async def run():
            entered[i].set()
            await gates[i].wait()
            return i
        return run

    async def request(i):
        async with scheduler.turn(f"doc{i}") as turn:
            return await turn.run(work(i))

    tasks = []
    for i in range(3):
        tasks.append(asyncio.ensure_future(request(i)))
        await entered[i].wait()
    assert scheduler.in_flight == 2
    with pytest.raises(Superseded):
        await asyncio.wait_for(tasks[0], 1)
    for gate in gates:
        gate.set()
    assert await asyncio.gather(tasks[1], tasks[2]) == [1, 2]
