"""Suggestions a user keeps, over real LSP against the real embedded engine: nothing that re-types the
code after the cursor (the textwrap.py case of issue 15, on the real standard-library file), and
closers an editor inserted are never left twice once a suggestion is accepted with its range."""

from __future__ import annotations

import re
import sysconfig
from pathlib import Path

import pytest
from lsprotocol import types

from .lsp_helpers import configure, inline_params, open_document

TEXTWRAP = Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py"
#: The parameters of TextWrapper.__init__ below `break_on_hyphens=True,`.
BELOW = re.compile(r"^\s*(tabsize\s*=|\*\s*,|max_lines\s*=|placeholder\s*=)")


async def items(client, uri: str, line: int, character: int, invoked: bool) -> list[types.InlineCompletionItem]:
    result = await client.text_document_inline_completion_async(inline_params(uri, line, character, invoked))
    return list(result.items if isinstance(result, types.InlineCompletionList) else (result or []))


def accept(text: str, line: int, item: types.InlineCompletionItem) -> str:
    """The document after accepting `item` (ASCII test documents: UTF-16 units are characters)."""
    lines = text.split("\n")
    start = sum(len(x) + 1 for x in lines[: item.range.start.line]) + item.range.start.character
    end = sum(len(x) + 1 for x in lines[: item.range.end.line]) + item.range.end.character
    assert item.range.start.line == item.range.end.line == line
    return text[:start] + item.insert_text + text[end:]


@pytest.mark.skipif(not TEXTWRAP.is_file(), reason="no textwrap.py in this Python's standard library")
@pytest.mark.parametrize("settings", [{}, {"generation.syntax": False}], ids=["syntax", "indentation-rules"])
async def test_textwrap_parameter_list_gets_nothing_that_retypes_the_parameters_below(client, settings):
    await configure(client, {"scheduling.debounceMs": 0, "scheduling.cache": False, **settings})
    text = TEXTWRAP.read_text(encoding="utf-8")
    offset = text.index("break_on_hyphens=True,") + len("break_on_hyphens=True,")
    line = text.count("\n", 0, offset)
    character = offset - (text.rfind("\n", 0, offset) + 1)
    uri = open_document(client, text, name="textwrap_copy")
    shown = []
    for invoked in (False, True):  # the automatic request, then three sampled candidates
        for item in await items(client, uri, line, character, invoked):
            shown.append(item.insert_text)
            retyped = [x for x in item.insert_text.split("\n") if BELOW.match(x)]
            assert not retyped, f"the suggestion re-types parameters below the cursor: {item.insert_text!r}"
    print(f"\ntextwrap.py, {settings or 'defaults'}: {shown!r}")


@pytest.mark.parametrize("text, marker, settings", [
    ("values = [3, 1, 2]\nprint(‸)\n", "‸", {}),
    ("values = [3, 1, 2]\nprint(‸)\n", "‸", {"generation.coverClosers": False}),
    ("def area(width, height):\n    return max(‸)\n", "‸", {}),
    ('name = "world"\nprint("Hello, ‸")\n', "‸", {}),
], ids=["call", "call-trim-only", "nested", "string"])
async def test_accepting_a_suggestion_leaves_each_auto_closed_closer_once(client, text, marker, settings):
    await configure(client, {"scheduling.debounceMs": 0, "scheduling.cache": False, **settings})
    offset = text.index(marker)
    text = text.replace(marker, "")
    line = text.count("\n", 0, offset)
    character = offset - (text.rfind("\n", 0, offset) + 1)
    uri = open_document(client, text)
    for invoked in (False, True):
        for item in await items(client, uri, line, character, invoked):
            accepted = accept(text, line, item).split("\n")[line]
            print(f"\n{text.splitlines()[line]!r} + {item.insert_text!r} over {item.range.end.character - character}"
                  f" → {accepted!r}")
            assert accepted.count("(") == accepted.count(")"), f"a parenthesis twice (or none): {accepted!r}"
            assert accepted.count('"') % 2 == 0, f"a quote twice: {accepted!r}"
