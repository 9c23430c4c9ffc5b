"""`textDocument/inlineCompletion`: ghost text at the cursor (VS Code, Neovim 0.12, Emacs lsp-mode)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from .common import completion_at

if TYPE_CHECKING:
    from ..server import VllmLanguageServer

METHOD = types.TEXT_DOCUMENT_INLINE_COMPLETION
# Registering with options is what makes pygls advertise inlineCompletionProvider.
OPTIONS = types.InlineCompletionOptions()


async def inline_completion(
    ls: VllmLanguageServer, params: types.InlineCompletionParams
) -> types.InlineCompletionList:
    """Ghost text at the cursor. Superseded requests get an empty list; cancelled ones an error."""
    completion = await completion_at(ls, params.text_document.uri, params.position)
    if not completion.text:
        return types.InlineCompletionList(items=[])
    cursor = types.Range(start=params.position, end=params.position)
    return types.InlineCompletionList(items=[
        types.InlineCompletionItem(insert_text=completion.text, range=cursor),
    ])


HANDLERS = ((METHOD, OPTIONS, inline_completion),)
