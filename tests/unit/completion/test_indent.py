"""The indentation supplied at column 0 of an empty line inside a body (autoIndent)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lsp_server.completion.indent import indentation_step, indented, supplied_indentation


def at_cursor(document: str) -> str:
    """`supplied_indentation` for a document with `|` marking the cursor."""
    before, after = document.split("|")
    return supplied_indentation(before, after)


def test_after_a_block_opener_one_level_deeper():
    assert at_cursor("def f(x):\n|\n") == "    "
    assert at_cursor("class A:\n    def f(self):\n|") == "        "
    assert at_cursor("if (x) {\n|\n}\n") == "    "
    assert at_cursor("if x:  # the reason\n|") == "    "
    assert at_cursor("items = [\n|") == "    "


def test_inside_a_body_the_previous_lines_indentation():
    assert at_cursor("def f(x):\n    y = x + 1\n|\n    return y\n") == "    "
    assert at_cursor("def f(x):\n    y = x + 1\n|") == "    "  # just pressed Enter after it
    # Blank lines, then more of the body: still inside it.
    assert at_cursor("def f(x):\n    y = 1\n\n|\n    return y\n") == "    "


def test_nothing_to_supply():
    assert at_cursor("x = 1\n|") == ""  # top level
    assert at_cursor("|") == ""  # empty document
    assert at_cursor("\n\n|") == ""
    assert at_cursor("def f(x):\n    y = 1\n|return y\n") == ""  # code after the cursor
    assert at_cursor("def f(x):\n  |\n") == ""  # not at column 0: the user put the cursor there
    assert at_cursor("def f(x):\n    y = 1\n    z|\n") == ""  # mid-line
    # Blank lines and then a dedent: after the body, not in it.
    assert at_cursor("def f(x):\n    return 1\n\n|\ndef g():\n    pass\n") == ""
    assert at_cursor("def f(x):\n    return 1\n\n|") == ""


def test_the_files_own_step_and_tabs():
    assert at_cursor("if a:\n  b = 1\n  if c:\n|") == "    "  # two-space file: one more level of 2
    assert at_cursor("if a:\n\tif b:\n|") == "\t\t"
    assert indentation_step(["x = 1"], "") == "    "
    assert indentation_step(["a:", "   b", "   c:", "      d"], "") == "   "


def test_line_breaks_of_every_kind():
    assert at_cursor("def f():\r\n|\r\n") == "    "
    assert at_cursor("def f():\r|\r") == "    "
    assert at_cursor("def f():\r\n    x = 1\r\n|") == "    "


@given(st.text(alphabet="ab :{\t\n#", max_size=60), st.text(alphabet="ab :{\t\n", max_size=30))
def test_always_whitespace_and_only_at_column_0(before, after):
    got = supplied_indentation(before, after)
    assert got.strip(" \t") == ""
    if got:
        assert before == "" or before.endswith(("\n", "\r"))



def test_indented_text_is_the_text_with_the_indentation_typed():
    text = "def total(items):\n\n    return 0\n"
    offset = text.index("\n") + 1
    assert indented(text, offset) == ("def total(items):\n    \n    return 0\n", offset + 4, "    ")
    assert indented(text, offset - 1) == (text, offset - 1, "")
