"""`textDocument/inlineCompletion`: ghost text at the cursor (VS Code, Neovim 0.12, Emacs lsp-mode)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from .common import completion_at, covered_range
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
    items = completion.items
    texts = [text for text, _ in items]
    ids = ls.offers.offer(params.text_document.uri, texts, continues=completion.from_cache) if texts else []
    # An explicit request asks the engine for several candidates; the editor cycles through them.
    # The range covers the closers after the cursor that a suggestion re-supplies (`foo(|)` + `a) + b`),
    # so accepting leaves exactly one. Each carries its accept command: the editor runs it when the
    # user takes the suggestion.
    return types.InlineCompletionList(items=[
        types.InlineCompletionItem(insert_text=text, range=covered_range(params.position, covers, ls.position_encoding),
                                   command=accept_command(offer_id))
        for (text, covers), offer_id in zip(items, ids)
    ])


HANDLERS = ((METHOD, OPTIONS, inline_completion),)
