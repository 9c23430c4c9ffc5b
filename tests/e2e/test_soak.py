"""Soak: 32 simulated editors type into their documents against the embedded engine, asking for
ghost text on every keystroke. Half of them cancel their previous request when they type on (as
VS Code does), half never cancel (as Neovim does). Every request must be answered or cancelled, the
engine must be idle afterwards, and the server's memory must level off.

`make test` runs a short form (25 s of typing); `make soak` runs the long one (`-m soak`, 3 minutes,
`VLLM_LS_SOAK_SECONDS` to change it). Results are in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from dataclasses import dataclass, field

import psutil
import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled

from .lsp_helpers import configure, inline_params, insert, open_document, stats, wait_for

EDITORS = 32
MiB = 1024 * 1024
#: Growth of the server's resident memory from the end of the warm-up to the end, at most.
#: Measured: 1.5 MiB in 3 minutes (docs/reliability.md); pygls' leak of a Task and a Future per
#: keystroke, fixed in lsp_server/protocol/guard.py, grew it by 48 MiB in the same run.
RSS_GROWTH_BOUND = 32 * MiB

CODE = [
    "def total(values):",
    "    result = 0",
    "    for value in values:",
    "        result += value",
    "    return result",
    "",
    "class Point:",
    "    def __init__(self, x, y):",
    "        self.x = x",
    "        self.y = y",
    "",
]
_ids = itertools.count(1)


@dataclass
class Tally:
    sent: int = 0
    answered: int = 0
    non_empty: int = 0
    cancelled: int = 0
    errors: list[str] = field(default_factory=list)
    pending: set = field(default_factory=set)


async def editor(client, number: int, deadline: float, tally: Tally, rng: random.Random) -> str:
    """Type lines of code at the end of a document, a completion request per keystroke."""
    header = f"# editor {number}\nimport math\n\n"
    uri = open_document(client, header, name=f"soak{number}")
    line, column = 3, 0
    cancels = number % 2 == 0
    previous: tuple[str, asyncio.Future] | None = None
    lines = itertools.cycle(CODE)
    while time.monotonic() < deadline:
        text = next(lines)
        for ch in text + "\n":
            if time.monotonic() >= deadline:
                break
            insert(client, uri, line, column, ch)
            line, column = (line + 1, 0) if ch == "\n" else (line, column + 1)
            if cancels and previous is not None and not previous[1].done():
                client.protocol.notify("$/cancelRequest", types.CancelParams(id=previous[0]))
            msg_id = f"soak-{next(_ids)}"
            future = asyncio.wrap_future(client.protocol.send_request(
                "textDocument/inlineCompletion", inline_params(uri, line, column), msg_id=msg_id))
            tally.sent += 1
            tally.pending.add(future)
            future.add_done_callback(lambda f: _count(f, tally))
            previous = (msg_id, future)
            await asyncio.sleep(_gap(ch, rng))
    return uri


def _gap(typed: str, rng: random.Random) -> float:
    """Typing rhythm: keystrokes within a word come faster than the debounce; a word's end is
    sometimes a short pause, a line's end a longer one (reading the suggestion, thinking)."""
    if typed == "\n":
        return rng.uniform(0.5, 4.0)
    if typed == " " and rng.random() < 0.3:
        return rng.uniform(0.15, 0.6)
    return rng.uniform(0.03, 0.14)


def _count(future: asyncio.Future, tally: Tally) -> None:
    tally.pending.discard(future)
    if future.cancelled():
        tally.errors.append("the client's future was cancelled")
        return
    error = future.exception()
    if isinstance(error, JsonRpcRequestCancelled):
        tally.cancelled += 1
    elif error is not None:
        tally.errors.append(repr(error))
    else:
        tally.answered += 1
        result = future.result()
        if result is not None and getattr(result, "items", None):
            tally.non_empty += 1


async def run_soak(client, seconds: float) -> dict:
    await configure(client, {"generation.candidates": 1})
    server = psutil.Process(client._server.pid)
    before = await stats(client)
    rng = random.Random(8)
    tally = Tally()
    start = time.monotonic()
    deadline = start + seconds
    warm = start + seconds * 0.3
    samples: list[tuple[float, int]] = []

    async def sample() -> None:
        while time.monotonic() < deadline:
            samples.append((time.monotonic() - start, server.memory_info().rss))
            await asyncio.sleep(1)

    sampler = asyncio.ensure_future(sample())
    uris = await asyncio.gather(*(editor(client, n, deadline, tally, rng) for n in range(EDITORS)))
    await sampler
    # Every request gets its answer (or its cancellation) in bounded time after typing stops.
    await wait_for(lambda: not tally.pending, 120, f"{len(tally.pending)} requests still unanswered")
    after = await wait_for(lambda: _settled(client), 60, "engine_requests_in_flight to return to 0")
    for uri in uris:
        client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    # After the storm, a completion is served normally.
    probe = open_document(client, "def fibonacci(n):\n    ", name="soak-probe")
    served = await asyncio.wait_for(client.text_document_inline_completion_async(
        inline_params(probe, 1, 4, invoked=True)), 120)
    assert served is not None and served.items and served.items[0].insert_text.strip()
    uris.append(probe)
    end_rss = server.memory_info().rss
    warm_rss = next(rss for t, rss in samples if t >= warm - start)
    tree = sum(p.memory_info().rss for p in [server, *server.children(recursive=True)])
    result = {
        "seconds": round(seconds), "editors": EDITORS, "requests": tally.sent, "answered": tally.answered,
        "non_empty": tally.non_empty, "cancelled": tally.cancelled, "errors": tally.errors[:5],
        "engine_requests": after["engine_requests_started"] - before["engine_requests_started"],
        "engine_aborted": after["engine_requests_aborted"] - before["engine_requests_aborted"],
        "engine_finished": after["engine_requests_finished"] - before["engine_requests_finished"],
        "shed": after["requests_shed"] - before["requests_shed"],
        "debounced": after["requests_debounced"] - before["requests_debounced"],
        "superseded": after["completions_superseded"] - before["completions_superseded"],
        "timed_out": after["completions_timed_out"] - before["completions_timed_out"],
        "in_flight_after": after["engine_requests_in_flight"],
        "waiting_after": after["requests_waiting"],
        "handlers_pending_after": after["handlers_pending"],
        "rss_start_mib": round(samples[0][1] / MiB, 1), "rss_warm_mib": round(warm_rss / MiB, 1),
        "rss_end_mib": round(end_rss / MiB, 1), "rss_max_mib": round(max(r for _, r in samples) / MiB, 1),
        "tree_rss_mib": round(tree / MiB, 1),
    }
    print(f"\nsoak: {result}")
    return result


async def _settled(client):
    now = await stats(client)
    return now if now["engine_requests_in_flight"] == 0 else None


def check(result: dict) -> None:
    assert not result["errors"], result["errors"]
    assert result["answered"] + result["cancelled"] == result["requests"]
    assert result["in_flight_after"] == 0 and result["waiting_after"] == 0
    # pygls keeps nothing per message once it is handled (it kept a Task and a Future per keystroke).
    assert result["handlers_pending_after"] <= 2, result["handlers_pending_after"]
    assert (result["rss_end_mib"] - result["rss_warm_mib"]) * MiB < RSS_GROWTH_BOUND, result


async def test_soak_short(client):
    check(await run_soak(client, 25))


@pytest.mark.soak
async def test_soak_long(client):
    check(await run_soak(client, float(os.environ.get("VLLM_LS_SOAK_SECONDS", 180))))
