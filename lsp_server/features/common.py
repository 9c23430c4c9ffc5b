"""What the two completion features share: find the document, take a turn, complete, count."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING

from lsprotocol import types

from ..completion.completer import EMPTY, Completion
from ..completion.context import display_path
from ..completion.indent import indented
from ..completion.prompt import ContextDocument
from ..completion.scheduler import Shed, Superseded
from ..completion.trace import CANCELLED, DEADLINE, EMPTY as ENDED_EMPTY, ERROR, SHED, SHOWN, SUPERSEDED, Trace
from ..languages import language_of
from ..text import offset_at, units_len

if TYPE_CHECKING:
    from ..server import VllmLanguageServer

log = logging.getLogger(__name__)


async def completion_at(
    ls: VllmLanguageServer, uri: str, position: types.Position, invoked: bool = False,
) -> Completion:
    """The completion at `position` in document `uri`; empty when there is nothing to offer.

    Superseded requests are answered empty; a client's `$/cancelRequest` propagates as
    CancelledError (pygls then answers with the LSP cancellation error).
    """
    msg_id = ls.protocol.msg_id
    trace = Trace(str(msg_id), uri, "invoked" if invoked else "automatic")
    try:
        completion = await _completion_at(ls, uri, position, invoked, trace)
    except asyncio.CancelledError:
        trace.stop_reason_at(ls.protocol.cancelled_at.pop(msg_id, None))
        trace.finish(CANCELLED)
        raise
    finally:
        if trace.answer_ms is None:
            trace.finish(ERROR)
        ls.traces.write(trace)
    return completion


async def _completion_at(
    ls: VllmLanguageServer, uri: str, position: types.Position, invoked: bool, trace: Trace,
) -> Completion:
    counters = ls.counters
    counters.completions_requested += 1
    document = ls.protocol.documents.get(uri)
    if document is None:  # not open, or out of sync with the editor (logged)
        counters.completions_empty += 1
        trace.finish(ENDED_EMPTY)
        return EMPTY
    source = document.source
    cursor = offset_at(source, position.line, position.character, encoding=ls.position_encoding)
    # At column 0 of an empty body line: complete after the indentation the body needs, and offer it
    # with the code (the model would start with a line break and answer nothing).
    text, offset, lead = indented(source, cursor) if ls.settings.generation.auto_indent else (source, cursor, "")
    path, documents = display_path(uri, ls.workspace.root_uri), other_documents(ls, uri)
    # The editor's languageId; a client that sends none gets the file name's.
    language = document.language_id if document.language_id not in ("", "plaintext") else language_of(uri)
    ls.recent.touch(uri)
    deadline = ls.settings.scheduling.request_timeout_ms / 1000
    async with ls.scheduler.turn(uri) as turn:
        try:
            # The deadline cancels the engine work like a client's cancel does (the stream is
            # closed, the engine aborts), but the editor gets an empty answer instead of an error.
            async with asyncio.timeout(deadline):
                completion = await ls.completer.complete(
                    text, offset, turn, uri=uri, invoked=invoked, path=path, documents=documents,
                    trace=trace, language=language,
                )
        except TimeoutError:
            ls.completer.abandon(uri)
            trace.stop_reason_at(trace.started + deadline)
            trace.finish(DEADLINE)
            counters.completions_timed_out += 1
            counters.completions_empty += 1
            log.warning("completion for %s took longer than requestTimeoutMs (%.0f ms): aborted", uri, deadline * 1000)
            ls.host.request_timed_out(deadline)
            return EMPTY
        except Shed:
            counters.requests_shed += 1
            trace.finish(SHED)
            return EMPTY
        except Superseded as superseded:
            trace.stop_reason_at(turn.superseded_at)
            trace.finish(SUPERSEDED)
            if superseded.reached_engine:
                counters.completions_superseded += 1
            else:
                counters.requests_debounced += 1
            return EMPTY
        except asyncio.CancelledError:
            counters.completions_cancelled += 1
            raise
    if completion.text:
        counters.completions_returned += 1
        ls.host.status("ready", f"completed in {completion.latency_ms:.0f} ms")
    else:
        counters.completions_empty += 1
    trace.finish(SHOWN if completion.text else ERROR if trace.error else ENDED_EMPTY)
    completion = with_lead(completion, lead)
    if completion.text and not invoked:
        ls.speculation.shown(uri, source, cursor, completion.text, path, documents,
                             covers=completion.items[0][1], language=language)
    return completion


def with_lead(completion: Completion, lead: str) -> Completion:
    """`completion` with `lead` (the supplied indentation) in front of every candidate."""
    if not lead or not completion.text:
        return completion
    return dataclasses.replace(completion, text=lead + completion.text,
                               texts=tuple(lead + text for text in completion.texts))


def other_documents(ls: VllmLanguageServer, uri: str) -> list[ContextDocument]:
    """Other open documents, most recently used first, as many as the settings may use."""
    wanted = ls.settings.prompt.context_documents
    documents = []
    for other in ls.recent.most_recent(exclude=uri):
        if len(documents) >= wanted:
            break
        document = ls.protocol.documents.get(other, quiet=True)
        if document is not None and document.source.strip():
            documents.append(ContextDocument(display_path(other, ls.workspace.root_uri), document.source))
    return documents


def covered_range(position: types.Position, covers: str, encoding: str) -> types.Range:
    """The range a suggestion replaces: from the cursor over `covers`, the closers after the cursor
    on its line that the suggestion re-supplies (positions in the negotiated encoding's units)."""
    end = types.Position(line=position.line, character=position.character + units_len(covers, encoding))
    return types.Range(start=position, end=end)
