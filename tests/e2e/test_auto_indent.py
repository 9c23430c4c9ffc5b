"""No empty answers at column 0, over real LSP against the real embedded engine: with the cursor at
the start of an empty line inside a body (an editor without auto-indent), the answer is the code the
body needs, led by the indentation it needs, and the typed-ahead cache keeps it under that
indentation."""

from __future__ import annotations

import pytest

from .lsp_helpers import configure, inline, insert, open_document, stats, wait_for

#: No speculation after the answer: the test counts the engine requests the typed indentation
#: costs, which must be none.
QUICK = {"scheduling.debounceMs": 0, "generation.speculate": False}

#: Documents with `|` at column 0 of an empty body line, and the indentation the body needs.
BODIES = [
    ("def fibonacci(n):\n|\n", "    "),
    ("class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n|\n", "        "),
    ("def mean(values):\n    total = sum(values)\n|\n    return total / count\n", "    "),
]


def cursor_of(document: str) -> tuple[str, int, int]:
    before, after = document.split("|")
    return before + after, before.count("\n"), 0


async def settled(client) -> dict:
    async def idle():
        now = await stats(client)
        return now if now["engine_requests_in_flight"] == 0 else None

    return await wait_for(idle, 60, "in-flight engine requests to drain")


@pytest.mark.parametrize("document,indentation", BODIES)
async def test_column_0_of_an_empty_body_line_is_answered_with_the_indentation(client, document, indentation):
    await configure(client, QUICK)
    text, line, column = cursor_of(document)
    uri = open_document(client, text)
    (answer, *_) = await inline(client, uri, line, column) or [""]
    assert answer.startswith(indentation) and answer[len(indentation):][:1].strip(), repr(answer)
    # The user types the indentation by hand: the same suggestion, from the typed-ahead cache (with
    # the lines the stream went on to generate after the early answer, when it did).
    before = await settled(client)
    insert(client, uri, line, column, indentation)
    again = await inline(client, uri, line, len(indentation))
    after = await settled(client)
    assert len(again) == 1 and again[0].startswith(answer[len(indentation):]), (answer, again)
    assert after["engine_requests_started"] == before["engine_requests_started"]
    assert after["completions_from_cache"] == before["completions_from_cache"] + 1

