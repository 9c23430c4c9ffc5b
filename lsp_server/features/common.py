"""What the two completion features share: find the document, take a turn, complete, count."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from lsprotocol import types

from ..completer import EMPTY, Completion
from ..context import display_path
from ..prompt import ContextDocument
from ..scheduler import Superseded
from ..text import offset_at

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
    counters = ls.counters
    counters.completions_requested += 1
    document = ls.workspace.text_documents.get(uri)
    if document is None:
        log.warning("completion requested for a document that was never opened: %s", uri)
        counters.completions_empty += 1
        return EMPTY
    text = document.source
    offset = offset_at(text, position.line, position.character, encoding=ls.position_encoding)
    ls.recent.touch(uri)
    async with ls.scheduler.turn(uri) as turn:
        try:
            completion = await ls.completer.complete(
                text, offset, turn, uri=uri, invoked=invoked,
                path=display_path(uri, ls.workspace.root_uri), documents=other_documents(ls, uri),
            )
        except Superseded as superseded:
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
    return completion


def other_documents(ls: VllmLanguageServer, uri: str) -> list[ContextDocument]:
    """Other open documents, most recently used first, as many as the settings may use."""
    wanted = ls.settings.context_documents
    documents = []
    for other in ls.recent.most_recent(exclude=uri):
        if len(documents) >= wanted:
            break
        document = ls.workspace.text_documents.get(other)
        if document is not None and document.source.strip():
            documents.append(ContextDocument(display_path(other, ls.workspace.root_uri), document.source))
    return documents
