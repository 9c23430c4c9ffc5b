"""Typing plans: the keystrokes reproduce the file, auto-indent is one keystroke, pauses are pauses,
and the same seed gives the same plan."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lsp_server.tools.bench.schedule import (
    PAUSE_MIN_S,
    Typist,
    choose_region,
    code_lines,
    editor_style,
    keystroke_pieces,
    keystroke_times,
    plan_editors,
)

SOURCE = '''"""A module.

With a docstring that is not code.
"""

import os


def first(a, b):
    """Adds."""
    total = a + b
    if total > 10:
        return total
    return 0


def second(items):
    # a comment
    for item in items:
        print(item)
    return len(items)
'''


@given(st.text(alphabet="ab \t\n\r(", max_size=80))
def test_pieces_put_back_together_are_the_text(text):
    assert "".join(keystroke_pieces(text)) == text


def test_enter_and_the_next_lines_indentation_are_one_keystroke():
    assert keystroke_pieces("if x:\n    y\n\nz") == ["i", "f", " ", "x", ":", "\n    ", "y", "\n", "\n", "z"]
    assert keystroke_pieces("a\r\n\tb") == ["a", "\r\n\t", "b"]


def test_code_lines_skip_docstrings_comments_and_blank_lines():
    lines = SOURCE.split("\n")
    found = [lines[i].strip() for i in code_lines(lines)]
    assert "With a docstring that is not code." not in found
    assert "# a comment" not in found
    assert '"""Adds."""' not in found
    assert found[:3] == ["import os", "def first(a, b):", "total = a + b"]


def test_region_types_real_code_back_into_the_file():
    rng = random.Random(1)
    initial, cursor, typed = choose_region(SOURCE, 25, rng, min_context_lines=5)
    assert len(keystroke_pieces(typed)) == 25
    final = initial[:cursor] + typed + initial[cursor:]
    # The typed text is the file's own, at the place it came from; only the rest of the last typed
    # line is missing.
    assert SOURCE.startswith(initial[:cursor])
    assert SOURCE[cursor:].startswith(typed)
    rest = SOURCE[SOURCE.index("\n", cursor + len(typed)) + 1:]
    assert final.endswith("\n" + rest)
    # Typing starts after a line's indentation, on a line of code, below the context asked for.
    line_start = initial.rfind("\n", 0, cursor) + 1
    assert initial[line_start:cursor].strip() == ""
    assert initial[:cursor].count("\n") >= 5


def test_region_in_a_short_file_types_what_there_is():
    initial, cursor, typed = choose_region("x = 1\ny = 2\n", 500, random.Random(0))
    assert initial[:cursor] + typed + initial[cursor:] in ("x = 1\ny = 2\n", "x = 1\ny = 2\n\n")


def test_pauses_follow_lines_and_words_and_the_last_keystroke():
    pieces = keystroke_pieces("def f(a, b):\n    return a + b\n" * 6)
    keys = keystroke_times(pieces, Typist(cps=8, line_pause=1.0, word_pause=0.0), random.Random(3))
    assert [k.text for k in keys] == pieces
    assert all(k.pause_after for k in keys if k.text.startswith("\n"))
    assert keys[-1].pause_after
    assert not any(k.pause_after for k in keys[:-1] if not k.text.startswith("\n"))
    for key, following in zip(keys, keys[1:]):
        gap = following.at - key.at
        assert gap == pytest.approx(key.gap, abs=1e-3)
        assert (gap >= PAUSE_MIN_S) == key.pause_after
    assert keys[-1].gap >= PAUSE_MIN_S


def test_bursts_run_near_the_typing_speed():
    pieces = list("x" * 400)
    keys = keystroke_times(pieces, Typist(cps=8, word_pause=0.0), random.Random(5))
    gaps = sorted(b.at - a.at for a, b in zip(keys, keys[1:]))
    median = gaps[len(gaps) // 2]
    assert 0.1 < median < 0.16  # 1/8 s, log-normal jitter around it


def test_typist_rejects_speeds_that_blur_bursts_and_pauses():
    with pytest.raises(ValueError):
        Typist(cps=1)


def test_plans_are_reproducible_and_differ_per_editor():
    files = [("a.py", SOURCE), ("b.py", SOURCE.replace("item", "thing"))]
    plans = plan_editors(files, 3, 20, Typist(), "both", seed=7)
    again = plan_editors(files, 3, 20, Typist(), "both", seed=7)
    assert plans == again
    assert [p.name for p in plans] == ["a.py", "b.py", "a.py"]
    assert [p.style for p in plans] == ["vscode", "neovim", "vscode"]
    assert plans[0].keystrokes != plans[2].keystrokes  # same file, own place and pace
    assert plan_editors(files, 3, 20, Typist(), "both", seed=8) != plans
    for plan in plans:
        assert plan.final[: plan.cursor] == plan.initial[: plan.cursor]
        assert plan.pauses >= 1


def test_style_names():
    assert editor_style("neovim", 0) == "neovim"
    assert editor_style("vscode", 1) == "vscode"
    with pytest.raises(ValueError):
        editor_style("emacs", 0)
