"""Holes punched in source files, and the scores of completions against them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lsp_server.tools.bench.holes import MAX_BLOCK_LINES, block_span, call_span, punch, punch_call, punch_holes
from lsp_server.tools.bench.scoring import edit_similarity, levenshtein, normalize, score, summarize

HEADER = "".join(f"CONSTANT_{i} = {i}\n" for i in range(10))
SOURCE = HEADER + '''
def area(width, height):
    if width < 0 or height < 0:
        raise ValueError("negative")
    result = width * height
    return result


class Box:
    def __init__(self, size):
        self.size = size
        self.items = []
        self.open = False
        self.label = None
        self.weight = 0
        self.color = "red"
        self.owner = None

    def add(self, item):
        self.items.append(item)
'''


def test_a_line_hole_leaves_the_line_break_and_the_indentation():
    lines = SOURCE.split("\n")
    index = lines.index("    result = width * height")
    hole = punch("box.py", SOURCE, index, index, "line")
    assert hole.expected == "result = width * height"
    assert hole.text[: hole.offset].endswith('raise ValueError("negative")\n    ')
    assert hole.text[hole.offset:].startswith("\n    return result")
    assert hole.text[: hole.offset] + hole.expected + hole.text[hole.offset:] == SOURCE


def test_a_block_starts_a_body_and_stops_at_a_dedent_or_its_size():
    lines = SOURCE.split("\n")
    body = lines.index('    if width < 0 or height < 0:')
    assert block_span(lines, body) == lines.index("    return result")
    init_body = lines.index("        self.size = size")
    assert block_span(lines, init_body) == init_body + MAX_BLOCK_LINES - 1
    assert block_span(lines, lines.index("    result = width * height")) is None  # not the start of a body
    assert block_span(lines, lines.index("        self.items.append(item)")) is None  # a single line


def test_block_hole_round_trip():
    lines = SOURCE.split("\n")
    first = lines.index('    if width < 0 or height < 0:')
    hole = punch("box.py", SOURCE, first, block_span(lines, first), "block")
    assert hole.expected.startswith("if width < 0") and hole.expected.endswith("return result")
    assert hole.text[: hole.offset] + hole.expected + hole.text[hole.offset:] == SOURCE
    assert hole.label == f"box.py:{first + 1}"


@pytest.mark.parametrize("line, args", [
    ('        print("shlex: token=EOF")', '"shlex: token=EOF"'),
    ("    def area(self, width, height):", "self, width, height"),
    ("        result.append(scale(x, 2)),", "scale(x, 2)"),
    ("    x = f(a) + g(b, c)", "b, c"),
    ("    x = f()", None),  # nothing to fill
    ("    print(')', x)", "')', x"),  # brackets in strings do not count
    ("    y = x", None),
])
def test_call_hole_keeps_the_closer_after_the_cursor(line, args):
    span = call_span(line)
    assert (line[span[0]: span[1]] if span else None) == args
    if args:
        text = "\n".join(["x = 1"] * 10 + [line, "y = 2"])
        hole = punch_call("a.py", text, 10)
        assert hole.expected == args and hole.text[hole.offset] == ")" and hole.kind == "call"
        assert hole.text[: hole.offset] + hole.expected + hole.text[hole.offset:] == text


def test_punch_holes_is_seeded_and_mixes_kinds():
    files = [("box.py", SOURCE)]
    holes = punch_holes(files, 4, seed=1)
    assert holes == punch_holes(files, 4, seed=1)
    assert [h.kind for h in holes] == ["line", "line", "block", "call"]
    for hole in holes:
        assert hole.text[: hole.offset] + hole.expected + hole.text[hole.offset:] == SOURCE
        assert hole.line >= 8  # context above every hole
    assert punch_holes(files, 0, seed=1) == []


@given(st.text(max_size=20), st.text(max_size=20))
def test_levenshtein_is_a_distance(a, b):
    d = levenshtein(a, b)
    assert d == levenshtein(b, a)
    assert abs(len(a) - len(b)) <= d <= max(len(a), len(b))
    assert (d == 0) == (a == b)


def test_levenshtein_known_values():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3


def test_scores_compare_code_as_an_editor_shows_it():
    assert score("return x  \n", "return x").exact
    assert not score("return y", "return x").exact
    assert edit_similarity("return x", "return x") == 1.0
    assert edit_similarity("abcd", "abxd") == pytest.approx(0.75)
    overshoot = score("a = 1\nb = 2", "a = 1")
    assert not overshoot.exact and overshoot.first_line
    assert score("", "a = 1").empty
    assert normalize("a \r\nb\t\n\n") == "a\nb"


def test_summary_means():
    summary = summarize([score("a", "a"), score("b", "a"), score("", "a")])
    assert summary["n"] == 3
    assert summary["exact_match"] == pytest.approx(1 / 3)
    assert summary["empty"] == 1
    assert summarize([])["n"] == 0


def test_a_call_hole_is_judged_as_the_line_holds_it_once_accepted():
    from lsp_server.tools.bench.quality import judge

    text = "\n".join(["x = 1"] * 10 + ["    print(value, end='')", "y = 2"])
    hole = punch_call("a.py", text, 10)
    assert hole.expected == "value, end=''"
    trimmed = judge(hole, ("value, end=''", 0))
    assert trimmed.exact and not trimmed.doubled
    covering = judge(hole, ("value, end='')", 1))  # the item's range covers the `)` after the cursor
    assert covering.exact and not covering.doubled
    doubled = judge(hole, ("value, end='')", 0))
    assert doubled.doubled and not doubled.exact
    assert not judge(hole, ("'(', x", 0)).doubled, "brackets in strings do not count"


def test_retyped_counts_lines_of_the_suggestion_that_follow_the_cursor_already():
    from lsp_server.tools.bench.quality import judge

    text = "\n".join(["x = 1"] * 10 + ["def f():", "    a = 1", "    b = 2", "    return a + b"])
    hole = punch("a.py", text, 11, 11, "line")
    assert judge(hole, ("a = 1\n    b = 2\n    return a + b", 0)).retyped == 2
    assert judge(hole, ("a = 1", 0)).retyped == 0
