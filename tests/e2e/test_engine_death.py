"""The in-process engine dies (its engine-core process is killed) and comes back by itself; then
the client disappears (stdin closed, no shutdown) and nothing the server started is left.

A server of its own (the only e2e test that kills an engine): loading costs ~40 s, the restart
about as much.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psutil
from lsprotocol import types

from .lsp_helpers import configure, inline, open_document, spawned, stats, wait_for, wait_ready

FIB = "def fibonacci(n):\n    "
ONE = {"scheduling.debounceMs": 0, "generation.candidates": 1}
LONG_RUNNING = {"generation.multiline": "always", "generation.maxTokens": 400, "generation.maxLines": 200, "generation.earlyStop": False, "scheduling.debounceMs": 0,
                "generation.candidates": 1}


def engine_processes(server: psutil.Process) -> list[psutil.Process]:
    return [p for p in server.children(recursive=True) if p.name().startswith("VLLM::")]


async def test_a_killed_engine_is_restarted_and_a_vanished_client_leaves_no_process(tmp_path: Path):
    async with spawned(tmp_path, "death", [], ONE) as client:
        await wait_ready(client)
        uri = open_document(client, FIB)
        assert (await inline(client, uri, 1, 4, invoked=True))[0].strip()

        server = psutil.Process(client._server.pid)
        first_engine = engine_processes(server)
        core = next(p for p in first_engine if "EngineCore" in p.name())
        # No telemetry: vLLM's usage reports are off in every process the server started. (vLLM's
        # own processes overwrite their environment block with their title; the others show it.)
        readable = [env for p in server.children(recursive=True) if (env := p.environ())]
        assert readable and all(env.get("VLLM_NO_USAGE_STATS") == "1" for env in readable)

        # The engine dies under a request in flight.
        await configure(client, LONG_RUNNING)
        before = await stats(client)
        pending = asyncio.ensure_future(inline(client, uri, 1, 4, invoked=True))  # not from the cache
        await wait_for(lambda: _streaming(client, before), 120, "the engine to be generating")
        seen, shown = len(client.statuses), len(client.messages)
        killed = time.monotonic()
        core.kill()
        assert await asyncio.wait_for(pending, 60) == [], "the request in flight is answered, empty"
        await wait_for(lambda: _state_after(client, seen, "restarting"), 60, "the restarting status")
        # While it restarts, completions are answered at once, empty, and nothing pops up again.
        await configure(client, ONE)
        assert await asyncio.wait_for(inline(client, uri, 1, 4, invoked=True), 30) == []
        await wait_for(lambda: _state_after(client, seen, "ready"), 900, "the engine to be back")
        restart_s = time.monotonic() - killed
        states = [s["state"] for s in client.statuses[seen:]]
        assert states.index("restarting") < states.index("loading") < states.index("ready"), states
        assert "failed" not in states, states
        popups = [m for m in client.messages[shown:] if m.type in (types.MessageType.Error, types.MessageType.Warning)]
        assert len(popups) == 1 and "stopped" in popups[0].message, [m.message for m in popups]
        print(f"\nthe engine was back {restart_s:.1f} s after its engine-core process was killed")

        # Completions work again; the dead engine's processes are gone; the counters are whole.
        assert (await inline(client, uri, 1, 4, invoked=True))[0].strip()
        _, alive = psutil.wait_procs(first_engine, timeout=30)
        assert not alive, f"processes of the dead engine remain: {alive}"
        payload = await stats(client)
        assert payload["engine_restarts"] == 1 and payload["engine_requests_in_flight"] == 0
        assert payload["engine_tokens_generated"] >= before["engine_tokens_generated"], "counters never go back"
        assert payload["engine_requests_failed"] - before["engine_requests_failed"] >= 1

        # The editor goes away without shutdown or exit: stdin closes.
        started = server.children(recursive=True)
        assert engine_processes(server), "the new engine runs in processes of its own"
        stderr = tmp_path / "death.stderr"
        offset = stderr.stat().st_size
        client._server.stdin.close()
        assert await asyncio.wait_for(client._server.wait(), 120) == 0
        _, alive = psutil.wait_procs(started, timeout=60)
        assert not alive, f"processes left after the client went away: {alive}"
        with stderr.open("rb") as errors:
            errors.seek(offset)
            tail = errors.read().decode(errors="replace")
        assert "Traceback" not in tail, tail[-3000:]


async def _streaming(client, before) -> bool:
    now = await stats(client)
    return now["engine_requests_in_flight"] >= 1 and now["tokens_received"] > before["tokens_received"] + 3


def _state_after(client, seen: int, state: str) -> bool:
    return any(s["state"] == state for s in client.statuses[seen:])
