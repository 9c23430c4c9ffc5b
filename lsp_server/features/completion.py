"""`textDocument/completion`: the suggestion as a completion item (Helix, eglot, older Neovim).

Editors filter items by the word before the cursor, so the item replaces that word with the word
plus the suggestion, and its filter text starts with the word: typing on keeps it visible.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lsprotocol import types

from ..text import line_content_end, line_start, units_len, units_to_index
from .common import completion_at, covered_range
from .outcomes import accept_command

if TYPE_CHECKING:
    from ..server import VllmLanguageServer

METHOD = types.TEXT_DOCUMENT_COMPLETION
# Where code goes on after a character that is not part of a word: clients that ask only on
# trigger characters (Neovim 0.11's autotrigger, company) ask here too. Not space or newline:
# clients that open a menu on every trigger (Helix) would open it after every word.
TRIGGER_CHARACTERS = [".", "(", "[", "{", ",", ":", "="]
OPTIONS = types.CompletionOptions(resolve_provider=False, trigger_characters=TRIGGER_CHARACTERS)

_WORD_TAIL = re.compile(r"[\w$]*$")


async def completion(ls: VllmLanguageServer, params: types.CompletionParams) -> types.CompletionList:
    """The suggestion as one completion item that replaces the word before the cursor."""
    result = await completion_at(ls, params.text_document.uri, params.position)
    if not result.text:
        return types.CompletionList(is_incomplete=True, items=[])
    document = ls.protocol.documents.get(params.text_document.uri, quiet=True)
    if document is None:  # closed while we were completing
        return types.CompletionList(is_incomplete=True, items=[])
    encoding = ls.position_encoding
    text = document.source
    start_of_line = line_start(text, params.position.line)
    line = text[start_of_line: line_content_end(text, start_of_line)] if start_of_line is not None else ""
    before = line[: units_to_index(line, params.position.character, encoding)]
    word = _WORD_TAIL.search(before).group(0)
    start = types.Position(line=params.position.line, character=params.position.character - units_len(word, encoding))
    first_line = result.text.split("\n", 1)[0]
    covers = result.items[0][1]
    (offer_id,) = ls.offers.offer(params.text_document.uri, [result.text], continues=result.from_cache)
    item = types.CompletionItem(
        label=(word + first_line).strip() or result.text.strip().split("\n", 1)[0],
        kind=types.CompletionItemKind.Text,
        detail="vllm-ls",
        documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=f"```\n{word}{result.text}\n```"),
        filter_text=word + result.text,
        sort_text="0",
        preselect=True,
        insert_text_format=types.InsertTextFormat.PlainText,
        # For clients that insert only the word before the cursor (Neovim's omnifunc): what the edit
        # replaces after the cursor, so the plugin can remove it (editors/neovim/lua/vllm_ls/legacy.lua).
        data={"covers": covers} if covers else None,
        # The edit also covers the closers after the cursor that the suggestion re-supplies.
        text_edit=types.TextEdit(
            range=types.Range(start=start, end=covered_range(params.position, covers, encoding).end),
            new_text=word + result.text),
        command=accept_command(offer_id),  # run by the editor when the user accepts the item
    )
    # Incomplete: the editor asks again as the user types, so the suggestion follows the cursor.
    return types.CompletionList(is_incomplete=True, items=[item])


HANDLERS = ((METHOD, OPTIONS, completion),)
