"""What the user typed since a stream's anchor, whether it agrees with the stream, and which of the
stream's tokens were shown: pure, checked case by case and by property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lsp_server.completion.agreement import Ledger, agrees, typed_since
from lsp_server.completion.counters import ServerCounters
from lsp_server.completion.postprocess import StreamFilter


@pytest.mark.parametrize("before, after, expected", [
    ("def f():\n    ", "\n", ""),  # nothing typed yet
    ("def f():\n    ret", "\n", "ret"),  # typed at the anchor
    ("def f():\n", "\n", None),  # deleted back past the anchor
    ("def g():\n    ", "\n", None),  # changed before the anchor
    ("def f():\n    ret", "\nx = 1", None),  # changed after the cursor
])
def test_typed_since_the_anchor(before, after, expected):
    assert typed_since(before, after, "def f():\n    ", "\n") == expected


@pytest.mark.parametrize("generated, typed, running, expected", [
    ("return n", "ret", True, True),
    ("return n", "return n", False, True),  # all of it typed
    ("ret", "return", True, None),  # ahead of the stream: it may yet write that
    ("ret", "return", False, False),  # the stream ended short of it
    ("return n", "x", True, False),
    ("", "x", True, None), ("", "x", False, False),
    ("return n", "", False, True),
])
def test_agrees(generated, typed, running, expected):
    assert agrees(generated, typed, running) is expected


@given(st.text(alphabet="ab\n ", max_size=8), st.text(alphabet="ab\n ", max_size=8), st.booleans())
def test_agrees_is_a_prefix_relation(generated, typed, running):
    result = agrees(generated, typed, running)
    assert (result is True) == generated.startswith(typed)
    assert (result is None) == (running and not generated.startswith(typed) and typed.startswith(generated))


def ledger(heal: str = "") -> Ledger:
    return Ledger(StreamFilter(multiline=True, line_prefix="    ", heal=heal), ServerCounters())


def test_each_token_is_counted_as_shown_once_whatever_shows_it():
    book = ledger()
    for text, tokens in (("return", 1), (" n", 1), (" * 2", 2)):
        book.filter.feed(text)
        book.add(text, tokens)
    assert book.shown(0, 6) == 1  # the answer: "return"
    assert book.shown(0, 8) == 1, "the cache shows more of it later: only the new piece counts"
    assert book.shown(0, 12) == 2 and book.shown(0, 12) == 0
    assert book.counters.tokens_shown == 4


def test_a_piece_partly_shown_counts_whole():
    book = ledger()
    book.filter.feed("return n")
    book.add("return n", 3)
    assert book.shown(0, 3) == 3 and book.shown(3, 8) == 0


def test_healed_whitespace_belongs_to_the_answer_that_starts_at_zero():
    # The prompt's trailing space was cut; the engine re-supplies it first: those characters are
    # before the filtered text, and their token is counted with the answer's start.
    book = ledger(heal=" ")
    for text, tokens in ((" ", 1), ("x", 1), (" + 1", 2)):
        book.filter.feed(text)
        book.add(text, tokens)
    assert book.filter.skipped == 1
    assert book.shown(0, 1) == 2, "the healed space and 'x'"
    assert book.shown(1, 5) == 2


@given(st.lists(st.tuples(st.text(alphabet="ab\n", min_size=1, max_size=4), st.integers(1, 3)), max_size=8),
       st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), max_size=6))
def test_never_more_than_generated_and_never_twice(pieces, windows):
    book = ledger()
    for text, tokens in pieces:
        book.filter.feed(text)
        book.add(text, tokens)
    total = sum(book.shown(min(a, b), max(a, b)) for a, b in windows)
    total += book.shown(0, book.generated)
    assert total == book.counters.tokens_shown
    assert total == (sum(tokens for _, tokens in pieces) if book.generated else 0)
