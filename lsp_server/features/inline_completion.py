"""`textDocument/inlineCompletion`: ghost text at the cursor (VS Code, Neovim 0.12, Emacs lsp-mode)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from .common import completion_at
from .outcomes import accept_command

if TYPE_CHECKING:
    from ..server import VllmLanguageServer

METHOD = types.TEXT_DOCUMENT_INLINE_COMPLETION
# Registering with options is what makes pygls advertise inlineCompletionProvider.
OPTIONS = types.InlineCompletionOptions()


async def inline_completion(
    ls: VllmLanguageServer, params: types.InlineCompletionParams
) -> types.InlineCompletionList:
    """Ghost text at the cursor. Superseded requests get an empty list; cancelled ones an error."""
    invoked = params.context is not None and params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
    completion = await completion_at(ls, params.text_document.uri, params.position, invoked=invoked)
    cursor = types.Range(start=params.position, end=params.position)
    texts = completion.candidates
    ids = ls.offers.offer(params.text_document.uri, texts, continues=completion.from_cache) if texts else []
    # An explicit request asks the engine for several candidates; the editor cycles through them.
    # Each carries its accept command: the editor runs it when the user takes the suggestion.
    return types.InlineCompletionList(items=[
        types.InlineCompletionItem(insert_text=text, range=cursor, command=accept_command(offer_id))
        for text, offer_id in zip(texts, ids)
    ])


HANDLERS = ((METHOD, OPTIONS, inline_completion),)
