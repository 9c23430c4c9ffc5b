"""Replaying typing against a real server, as editors do: per keystroke one incremental `didChange`
and one `textDocument/inlineCompletion`; an accepted suggestion is one `didChange` that inserts it,
and a request at the new cursor, as VS Code sends after Tab. A VS Code-style editor sends `$/cancelRequest` for its
outstanding request before each keystroke; a Neovim-style editor never cancels (it drops answers
for an older buffer version). All editors share one LSP session, so they share one server and its
engine, as documents of one user would; each has its own document.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled

from ..client import HeadlessClient
from ...text import position_at
from .acceptance import Typing, seen_since
from ...contract import DID_SHOW_COMPLETION
from .figures import CANCELLED, COMPLETION, EMPTY, ERROR, RequestRecord
from .schedule import Plan, Typist

#: What priming asks for: the prompt is computed (and enters the prefix cache), one token is made.
PRIMING = {"generation.maxTokens": 1, "generation.maxLineTokens": 1, "generation.candidates": 1,
           "scheduling.debounceMs": 0, "scheduling.cache": False}


def document_uri(run: str, plan: Plan) -> str:
    # Outside the workspace root, so the model sees just the file's name when a template shows paths.
    return f"file:///vllm-ls-bench/{run}/editor{plan.editor}/{plan.name}"


def inline_params(uri: str, text: str, offset: int, invoked: bool = False) -> types.InlineCompletionParams:
    position = position_at(text, offset)
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=position.line, character=position.character),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Invoked if invoked
            else types.InlineCompletionTriggerKind.Automatic),
    )


def completion_texts(result: Any) -> list[str]:
    items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
    return [item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value for item in items]


async def settle(client: HeadlessClient, timeout: float = 120.0) -> dict[str, Any]:
    """The server's counters once its engine has no request in flight (their final values)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = await client.stats()
        if stats.get("engine_requests_in_flight", 0) == 0:
            return stats
        if time.monotonic() > deadline:
            raise TimeoutError(f"the engine still had {stats['engine_requests_in_flight']} requests in flight "
                               f"after {timeout:.0f} s")
        await asyncio.sleep(0.1)


async def prime(client: HeadlessClient, settings: dict[str, Any], documents: Sequence[tuple[str, str, int]],
                timeout: float) -> None:
    """Ask once for every document's prompt at its cursor before measuring (one token each), as when
    the files have been open a while: the first prompt of a file is not part of typing in it."""
    await client.configure({**settings, **PRIMING})
    for uri, text, offset in documents:
        _, future = client.send(types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, text, offset, invoked=True))
        await asyncio.wait_for(future, timeout)
    await client.configure(settings)


async def type_plan(
    client: HeadlessClient, plan: Plan, uri: str, t0: float, answer_timeout: float,
    on_record: Callable[[RequestRecord], None], typist: Typist, seed: int = 0,
) -> None:
    """Type `plan` into the open document `uri`, each action at its moment counted from `t0`;
    a shown suggestion that agrees with the text still to type is accepted (`acceptance.py`)."""
    typing = Typing(plan, typist, seed)
    text, cursor = plan.initial, plan.cursor
    previous: RequestRecord | None = None
    previous_request: tuple[str, asyncio.Future] | None = None
    outstanding: list[tuple[str, asyncio.Future, RequestRecord]] = []
    while not typing.done:
        delay = t0 + typing.next_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.perf_counter()
        on_screen = previous if previous is not None and _on_screen(previous, now) else None
        action = typing.next(on_screen.text if on_screen else None,
                             (on_screen.seen_since or now) - t0 if on_screen else -math.inf)
        if previous is not None:
            previous.deadline = now
        if on_screen is not None:
            report_outcome(client, on_screen, taken=action.accepted)
        if plan.style == "vscode" and previous_request is not None and not previous_request[1].done():
            client.cancel(previous_request[0])
        start = position_at(text, cursor)
        at = types.Position(line=start.line, character=start.character)
        client.edit(uri, at, at, action.text)
        text = text[:cursor] + action.text + text[cursor:]
        cursor += len(action.text)
        record = RequestRecord(plan.editor, plan.style, len(outstanding), now, action.pause_after,
                               deadline=now + action.gap, accepted=action.accepted, inserted=action.text)
        msg_id, future = client.send(types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, text, cursor))
        record.request_id = msg_id
        future.add_done_callback(lambda f, r=record, shown=on_screen: _answered(r, f, shown))
        on_record(record)
        outstanding.append((msg_id, future, record))
        previous, previous_request = record, (msg_id, future)
    # The user waits at the end of the stretch; every request must still be answered.
    pending = [future for _, future, _ in outstanding if not future.done()]
    if pending:
        await asyncio.wait(pending, timeout=answer_timeout)
    for msg_id, future, _ in outstanding:
        if not future.done():
            client.cancel(msg_id)  # unanswered: recorded as such, and no work is left behind


def _on_screen(record: RequestRecord, now: float) -> bool:
    """The record's suggestion is on screen at `now`: a completion that has arrived."""
    return record.outcome == COMPLETION and record.answered is not None and record.answered <= now


def report_outcome(client: HeadlessClient, record: RequestRecord, taken: bool) -> None:
    """What the person did with the suggestion on screen at their next action, reported as an
    editor reports it: it was shown, and taken (the item's accept command) when the typist accepted it."""
    command = getattr(record.item, "command", None)
    if command is None or record.reported or not record.shown:
        return
    record.reported = True
    client.notify(DID_SHOW_COMPLETION, {"item": {"insertText": record.text, "command": {
        "title": command.title, "command": command.command, "arguments": list(command.arguments or [])}}})
    if taken:
        client.send(types.WORKSPACE_EXECUTE_COMMAND, types.ExecuteCommandParams(
            command=command.command, arguments=list(command.arguments or [])))


def _answered(record: RequestRecord, future: asyncio.Future, shown_before: RequestRecord | None) -> None:
    """Record the answer; `shown_before` is the suggestion on screen when the request was sent."""
    record.answered = time.perf_counter()
    if future.cancelled():
        record.outcome = ERROR
        return
    error = future.exception()
    if isinstance(error, JsonRpcRequestCancelled):
        record.outcome = CANCELLED
    elif error is not None:
        record.outcome = ERROR
        record.text = str(error)
    else:
        result = future.result()
        texts = completion_texts(result)
        record.text = texts[0] if texts else ""
        items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
        record.item = items[0] if items else None
        record.outcome = COMPLETION if record.text.strip() else EMPTY
        if record.outcome == COMPLETION:
            record.seen_since = seen_since(
                shown_before.text if shown_before else "", shown_before.seen_since if shown_before else None,
                record.inserted, record.text, record.answered)


async def replay(
    client: HeadlessClient, plans: Sequence[Plan], uris: Sequence[str], answer_timeout: float,
    typist: Typist, seed: int = 0, lead_s: float = 0.2,
) -> list[RequestRecord]:
    """Every plan typed at once into its open document; the record of every request, in send order."""
    records: list[RequestRecord] = []
    t0 = time.perf_counter() + lead_s
    await asyncio.gather(*(
        type_plan(client, plan, uri, t0, answer_timeout, records.append, typist, seed)
        for plan, uri in zip(plans, uris)
    ))
    return records
