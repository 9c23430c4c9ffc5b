"""Document notifications. pygls keeps the text in its workspace; here a change or close drops a
completion request for that document that has not reached the engine yet (debounce), a change
is a keystroke for the adaptive debounce, a change that contradicts an engine stream of the document
aborts it (and a close aborts them all), and the order of use ranks documents as prompt context."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from ..server import VllmLanguageServer


async def did_open(ls: VllmLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
    """A document opened: it ranks first as prompt context."""
    ls.recent.touch(params.text_document.uri)


async def did_change(ls: VllmLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    """A keystroke: drops the document's request that has not reached the engine yet, and the engine
    streams of the document that the new text contradicts (a speculation waiting to start too)."""
    uri = params.text_document.uri
    ls.scheduler.document_changed(uri)
    text = None
    if uri in ls.completer.streams:
        # The store already holds the changed text (out of sync: none, which agrees with nothing).
        document = ls.protocol.documents.get(uri, quiet=True)
        text = document.source if document is not None else ""
    ls.completer.document_changed(uri, text)
    ls.speculation.document_changed(uri)
    ls.recent.touch(uri)


async def did_close(ls: VllmLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    """A document closed: its requests and cached suggestions go; a suggestion shown and never
    taken counts as dismissed."""
    ls.scheduler.document_closed(params.text_document.uri)
    ls.completer.document_closed(params.text_document.uri)
    ls.speculation.document_closed(params.text_document.uri)
    ls.offers.document_closed(params.text_document.uri)
    ls.recent.forget(params.text_document.uri)


HANDLERS = (
    (types.TEXT_DOCUMENT_DID_OPEN, None, did_open),
    (types.TEXT_DOCUMENT_DID_CHANGE, None, did_change),
    (types.TEXT_DOCUMENT_DID_CLOSE, None, did_close),
)
