"""The open documents, kept exactly as LSP defines them.

pygls splits lines where LSP does not (form feed, U+2028) and so applies edits to the wrong line.
Here every edit goes through `text.apply_edit` (only CR LF, LF and CR end lines). An edit that
cannot apply marks the document out of sync: its completions are empty (a suggestion computed on
the wrong text would be inserted in the wrong place) until the client sends the whole text again
(didOpen, or a full change). Lone surrogates from the client become U+FFFD.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import unquote

from lsprotocol import types
from pygls.workspace import TextDocument, Workspace

from ..text import EditOutsideDocument, apply_edit, scrub_surrogates

log = logging.getLogger(__name__)


class Documents:
    """The store behind the server's documents (pygls' workspace), with its out-of-sync marks."""

    def __init__(self, workspace: Callable[[], Workspace]):
        self._workspace = workspace
        self._out_of_sync: dict[str, str] = {}  # document key → why

    def get(self, uri: str, quiet: bool = False) -> TextDocument | None:
        """The open document `uri` as the editor has it; None (and a log line) when it is not open
        or its copy here no longer matches the editor's."""
        key = unquote(uri)
        reason = self._out_of_sync.get(key)
        if reason is not None:
            if not quiet:
                log.warning("no completion for %s: the document is out of sync (%s); waiting for its full text",
                            uri, reason)
            return None
        document = self._workspace().text_documents.get(key)
        if document is None and not quiet:
            log.warning("completion requested for a document that is not open: %s", uri)
        return document

    def opened(self, item: types.TextDocumentItem) -> None:
        """A didOpen: the document's whole text (any out-of-sync mark is cleared)."""
        self._out_of_sync.pop(unquote(item.uri), None)
        self._workspace().put_text_document(types.TextDocumentItem(
            uri=item.uri, language_id=item.language_id, version=item.version, text=scrub_surrogates(item.text)))

    def changed(self, params: types.DidChangeTextDocumentParams) -> bool:
        """Apply a didChange; False when the document is not open (the change is ignored)."""
        workspace = self._workspace()
        uri = params.text_document.uri
        key = unquote(uri)
        document = workspace.text_documents.get(key)
        if document is None:
            log.warning("ignored a change to a document that is not open: %s", uri)
            return False
        text = document.source
        encoding = str(workspace.position_encoding or types.PositionEncodingKind.Utf16)
        for change in params.content_changes:
            new_text = scrub_surrogates(change.text)
            if isinstance(change, types.TextDocumentContentChangeWholeDocument):
                text = new_text
                self._out_of_sync.pop(key, None)
                continue
            if key in self._out_of_sync:
                continue  # only a whole text can bring it back
            start, end = change.range.start, change.range.end
            try:
                text = apply_edit(text, (start.line, start.character), (end.line, end.character), new_text, encoding)
            except EditOutsideDocument as exc:
                self._mark_out_of_sync(uri, f"an edit did not apply: {exc}")
        workspace.put_text_document(types.TextDocumentItem(
            uri=uri, language_id=document.language_id or "", version=params.text_document.version, text=text))
        return True

    def closed(self, uri: str) -> None:
        """A didClose: forget the document."""
        self._out_of_sync.pop(unquote(uri), None)
        self._workspace().remove_text_document(uri)

    def lost_change(self, uri: str, reason: str) -> None:
        """A change to `uri` was lost (it could not be read): if the document is open, it is out of sync."""
        if unquote(uri) in self._workspace().text_documents:
            self._mark_out_of_sync(uri, reason)

    def _mark_out_of_sync(self, uri: str, reason: str) -> None:
        self._out_of_sync[unquote(uri)] = reason
        log.warning("%s is out of sync with the editor: %s; completions for it are empty until its full "
                    "text is sent again", uri, reason)
