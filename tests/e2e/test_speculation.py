"""Speculation stops when it should, over real LSP against the real embedded engine: after a
suggestion is shown the server computes the one after accepting it, and a keystroke that is not the
accept, or shutdown, stops that engine work. Judged by the engine's own counters."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import psutil

from .lsp_helpers import configure, inline, insert, open_document, spawned, stats, wait_for, wait_ready

#: A speculation that runs long unless stopped: no early stop, a large token budget. The first
#: request answers at its first line and stops there (no background continuation), so the engine is
#: idle at once and the speculation starts.
LONG = {"scheduling.debounceMs": 0, "generation.continueInBackground": False, "generation.earlyStop": False,
        "generation.maxTokens": 400, "generation.maxLines": 200}
TEXT = "def fibonacci(n):\n    "


async def speculating(client, before: dict) -> list[str]:
    """Ask at the end of TEXT, then wait until the speculation after its answer is in the engine."""
    uri = open_document(client, TEXT)
    answers = await inline(client, uri, 1, 4)
    assert answers and answers[0].strip(), "a suggestion is shown"

    async def started():
        now = await stats(client)
        return now if now["speculations_started"] > before["speculations_started"] and \
            now["engine_requests_in_flight"] == 1 else None

    await wait_for(started, 120, "the speculation to start")
    return [uri, answers[0]]


async def test_a_keystroke_that_is_not_the_accept_stops_the_speculation(client):
    await configure(client, LONG)
    before = await stats(client)
    uri, _ = await speculating(client, before)
    insert(client, uri, 1, 4, "#")  # the user types something else

    async def stopped():
        now = await stats(client)
        return now if now["engine_requests_in_flight"] == 0 and \
            now["speculations_aborted"] > before["speculations_aborted"] else None

    after = await wait_for(stopped, 60, "the speculation to stop")
    assert after["speculations_started"] - before["speculations_started"] == 1
    assert after["speculations_finished"] == before["speculations_finished"], "stopped, not run to its end"
    # The engine's own count: the first request (left at its answer) and the speculation were aborted.
    assert after["engine_requests_aborted"] - before["engine_requests_aborted"] == 2
    assert after["engine_requests_started"] - before["engine_requests_started"] == 2
    assert after["streams_running"] == 0


async def test_shutdown_stops_a_running_speculation(tmp_path: Path):
    async with spawned(tmp_path, "speculation", [], settings=LONG) as client:
        await wait_ready(client)
        before = await stats(client)
        await speculating(client, before)
        server = psutil.Process(client._server.pid)
        children = server.children(recursive=True)
        await client.shutdown_session()
        await asyncio.wait_for(client._server.wait(), 60)
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"processes left after shutdown: {alive}"
    log = (tmp_path / "speculation.log").read_text(encoding="utf-8")
    streams = re.search(r"shutdown: (\d+) engine streams aborted; engine requests in flight: (\d+)", log)
    aborted = re.search(r"shutdown: (\d+) speculations aborted since start; engine requests aborted: (\d+)", log)
    assert streams and aborted, log[-2000:]
    assert int(streams[1]) == 1 and int(streams[2]) == 0, "the speculation's stream was closed, nothing runs"
    assert int(aborted[1]) == 1, "it was the speculation"
    assert int(aborted[2]) == before["engine_requests_aborted"] + 2, "the engine counted both aborts"
