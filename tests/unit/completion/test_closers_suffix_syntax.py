"""The three pure modules behind the golden cases: closers (trim or cover), suffix (re-typed lines),
syntax (block or rest of line, on a window of the document)."""

from __future__ import annotations

import random
import sysconfig
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lsp_server.completion import syntax
from lsp_server.completion.closers import Fit, auto_closed, doubles_closer, fit, fit_at
from lsp_server.completion.suffix import NearSuffix, declared_name

# -- closers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("line_prefix, text, line_suffix, expected", [
    ("print(", "x)", ")", Fit("x")),
    ("print(", "foo(x))", ")", Fit("foo(x)")),
    ("if (a", " && b) {", ") {", Fit(" && b")),
    ("foo([", "1, 2]", "])", Fit("1, 2")),
    ("foo(", "a) + b", ")", Fit("a) + b", 1)),
    ("foo(bar(", "x))", ")", Fit("x)")),
    ("def foo(", "bar: str):", "):", Fit("bar: str")),
    ("def foo(", "bar: str):\n    return bar", "):", Fit("bar: str):\n    return bar", 2)),
    ("useEffect(() => {", "\n  go();\n})", "})", Fit("\n  go();\n})", 2)),
    ('print("', 'hello")', '")', Fit("hello")),
    ('x = "', 'abc" + y', '"', Fit('abc" + y', 1)),
    ("g(foo(", "a) + b", "), c)", Fit("a) + b", 1)),
    ("g(foo(", "a)) + b", "), c)", Fit("a")),
    ("print(", '"hi")\nprint(2)', ")", Fit('"hi"')),  # a complete line: nothing below it
    ("x = (", "1 + 2)", "", Fit("1 + 2)")),
])
def test_fit(line_prefix, text, line_suffix, expected):
    language = "javascript" if "=>" in line_prefix else "python"
    assert fit(text, line_prefix, line_suffix, language=language) == expected


@pytest.mark.parametrize("language, text, expected", [
    # Seen from the real engine (sampled): a backtick is no quote in Python, so the `)` after it
    # closes print( and the editor's `)` is not left twice.
    ("python", "f`A {len(A)} times {len(A) + 1} are $\\`)", "f`A {len(A)} times {len(A) + 1} are $\\`"),
    ("rust", "`x`)", "`x`"),
    # In JavaScript it opens a template literal: the `)` inside it is text.
    ("javascript", "`a)` + b)", "`a)` + b"),
])
def test_backticks_are_quotes_only_where_the_language_says_so(language, text, expected):
    assert fit(text, "print(", ")", "", language).text == expected


@pytest.mark.parametrize("text, expected", [
    # Seen from the real engine (a sampled candidate cut by its token limit): the editor's `)` would
    # close the last `max(` and leave `max(` of the line open.
    ("a, max(b) + max(c", "a, max(b)"),
    ("a, foo(b", "a"),
    ("foo(b", ""),
    ("a, max(b)", "a, max(b)"),  # closed: left as it is
    # Seen in CI: cut back, what is left closes the cursor's `max(` itself and is fitted again.
    ("a, max(x for x in range(b))) + min(c", "a, max(x for x in range(b))"),
])
def test_a_suggestion_ending_inside_its_own_bracket_is_cut_to_where_the_closer_can_follow(text, expected):
    assert fit(text, "    return max(", ")", "", "python").text == expected


def test_a_bracket_the_next_line_closes_at_the_matching_indentation_is_not_closed_again():
    assert fit(", c)", "    a, b", "", next_line=")", language="python") == Fit(", c")
    # `if err != nil {` + `}` closes the if; the `}` one level out below closes the function.
    assert fit("\n\t\treturn err\n\t}", "\tif err != nil {", "", next_line="}", language="go").text.endswith("}")


@pytest.mark.parametrize("line_prefix, line_suffix, expected", [
    ("foo(", ")", True), ("def f(", "):", True), ('x = "', '"', True), ("if (", ") {", True),
    ("foo(", ") + 1", False), ("x = ", "y", False), ("foo(", "", False), ("# (", ")", False),
])
def test_auto_closed(line_prefix, line_suffix, expected):
    assert auto_closed(line_prefix, line_suffix, "python") is expected


LANGUAGES = st.sampled_from(["python", "javascript", "rust", ""])


@given(st.text(alphabet="ab ()[]{}\"'`:#\n", max_size=30), st.text(alphabet="ab ()[]{}\"'`#", max_size=12),
       st.text(alphabet="ab )]}\"'`:;{", max_size=6), st.sampled_from(["", ")", "}", "])", "  a"]), LANGUAGES)
def test_fit_is_idempotent_and_only_covers_what_is_there(text, line_prefix, line_suffix, next_line, language):
    # Every way of shortening the text fits the shorter text again (found by this test: a text cut
    # back to where the closers can follow that then closed the cursor's string itself, `"[""`).
    once = fit(text, line_prefix, line_suffix, next_line, language)
    assert fit(once.text, line_prefix, line_suffix, next_line, language) == once
    assert 0 <= once.replace <= len(line_suffix)
    assert text.startswith(once.text.rstrip()) or once.text == text


@given(st.text(alphabet="ab ()[]{}\"':", max_size=30), st.text(alphabet="ab ([{\"'", max_size=12),
       st.text(alphabet="ab )]}\"':;{", max_size=6), LANGUAGES)
def test_a_fitted_one_line_suggestion_never_closes_twice(text, line_prefix, line_suffix, language):
    fitted = fit(text, line_prefix, line_suffix, language=language)
    assert not doubles_closer(fitted.text, line_prefix, line_suffix[fitted.replace:], language)


def test_fit_at_reads_the_lines_around_the_offset():
    document = "x = 1\nprint()\ny = 2\n"
    assert fit_at(document, document.index("()") + 1, "x)", "python") == Fit("x")


# -- suffix ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("line, name", [
    ("max_lines=None,", "max_lines"), ("tabsize: int = 8,", "tabsize"), ("self.width = width", "self.width"),
    ("def wrap(self, text):", "wrap"), ("class A:", "A"), ("'key': 1,", "key"), ("x := 3", "x"),
    ("const foo = 1;", "foo"), ("pub fn bar() {", "bar"), ("let mut x = 3;", "x"),
    ("func (s *S) Name() string {", "Name"), ("x == 3", None), ("else:", None), ("return x", None),
    ("i += 1", None), ("foo(a=1)", None), ("lambda x: x", None), ("default: return 1", None),
])
def test_declared_name(line, name):
    assert declared_name(line) == name


def test_near_suffix_counts_only_the_first_lines():
    near = NearSuffix("\n    a = 1\n\n    b = 2\n    c = 3\n", 2)
    assert near.retypes("    a = 5") and near.retypes("    b = 2")
    assert not near.retypes("    c = 3"), "the third line is not near"
    assert not near.retypes("        a = 5"), "a deeper indentation is the suggestion's own block"
    assert not NearSuffix("a = 1\n", 0).retypes("a = 1")


def test_short_lines_further_down_are_ordinary_code():
    near = NearSuffix("    x = 1\n    }\n    pass\n", 3)
    assert not near.retypes("    }") and not near.retypes("    pass")
    assert NearSuffix("}\n", 1).retypes("}") and not NearSuffix("}\n", 1).retypes("  }")


# -- syntax ----------------------------------------------------------------------------------------

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def test_every_grammar_the_dependencies_bring_loads():
    for language in ("python", "javascript", "javascriptreact", "typescript", "typescriptreact", "go", "rust"):
        assert syntax.available(language), language
    assert not syntax.available("cobol")
    assert syntax.shape_at("x = 1", 5, "cobol") is None


@pytest.mark.parametrize("name", ["textwrap.py", "shlex.py", "difflib.py"])
def test_the_window_decides_as_the_whole_file_would(name, monkeypatch):
    text = (STDLIB / name).read_text(encoding="utf-8")
    rng = random.Random(name)
    ends = [i for i, ch in enumerate(text) if ch == "\n"]
    positions = rng.sample(ends, 60) + [rng.randrange(len(text)) for _ in range(60)]
    windowed = [syntax.shape_at(text, p, "python") for p in positions]
    monkeypatch.setattr(syntax, "WINDOW_BEFORE", 10 ** 6)
    monkeypatch.setattr(syntax, "WINDOW_AFTER", 10 ** 6)
    whole = [syntax.shape_at(text, p, "python") for p in positions]
    disagree = [(p, a, b) for p, a, b in zip(positions, windowed, whole) if a.block != b.block]
    assert not disagree
