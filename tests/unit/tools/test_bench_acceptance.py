"""The simulated user accepts a shown suggestion that agrees with what it means to type, in one edit,
and otherwise types the plan at the plan's moments."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lsp_server.tools.bench.acceptance import Typing, accepted_part, seen_since
from lsp_server.tools.bench.schedule import PAUSE_MIN_S, Plan, Typist, keystroke_pieces, keystroke_times

TYPED = "total = a + b\n    if total:\n        return total"


def plan(typed: str = TYPED, editor: int = 0) -> Plan:
    keys = keystroke_times(keystroke_pieces(typed), Typist(), random.Random(1))
    return Plan(editor, "m.py", "vscode", "def f(a, b):\n    \n", 17, tuple(keys))


def test_the_whole_suggestion_when_it_is_the_start_of_what_is_left():
    assert accepted_part("total = a + b", TYPED) == "total = a + b"
    assert accepted_part("total = a", TYPED) == "total = a"  # a part of the line is fine too
    assert accepted_part(TYPED, TYPED) == TYPED


def test_only_whole_first_lines_when_the_rest_disagrees():
    assert accepted_part("total = a + b\n    return total", TYPED) == "total = a + b"
    assert accepted_part("total = a + b\n    if total:\n        return 0", TYPED) == "total = a + b\n    if total:"
    assert accepted_part("total = a + b\r\n    x", "total = a + b\r\n    y") == "total = a + b"


def test_nothing_when_even_the_first_line_disagrees():
    assert accepted_part("total = a - b", TYPED) == ""
    assert accepted_part("total = a - b\n    if total:", TYPED) == ""
    assert accepted_part("", TYPED) == ""
    assert accepted_part("\n    ", "\n    x") == ""  # whitespace only saves nothing
    assert accepted_part("\n    x = 1\n    y", "\n    x = 1\n    z") == "\n    x = 1"


@given(st.text(alphabet="ab\n ", max_size=20), st.text(alphabet="ab\n ", max_size=20))
def test_what_is_accepted_is_always_the_start_of_both(suggestion, remaining):
    got = accepted_part(suggestion, remaining)
    assert remaining.startswith(got) and suggestion.startswith(got)
    assert got == "" or got.strip()


def test_without_suggestions_the_actions_are_the_plans_keystrokes():
    p = plan()
    typing = Typing(p, Typist())
    actions = []
    while not typing.done:
        actions.append(typing.next())
    assert [a.text for a in actions] == [k.text for k in p.keystrokes]
    assert [a.at for a in actions] == [k.at for k in p.keystrokes]
    assert [a.pause_after for a in actions] == [k.pause_after for k in p.keystrokes]
    assert not any(a.accepted for a in actions) and actions[-1].gap == p.keystrokes[-1].gap
    with pytest.raises(StopIteration):
        typing.next()


def test_an_accept_replaces_the_keystrokes_it_covers_then_the_user_looks():
    p = plan()
    typing = Typing(p, Typist())
    first = typing.next("never mind")  # disagrees: typed over
    assert first.text == "t" and not first.accepted
    accept = typing.next("otal = a + b\n    if total:", shown_at=-10)
    assert accept.accepted and accept.pause_after and accept.text == "otal = a + b\n    if total:"
    assert accept.at == p.keystrokes[1].at and accept.position == 1
    assert PAUSE_MIN_S <= accept.gap <= Typist().pause_max_s
    assert typing.remaining == "\n        return total"
    after = typing.next()
    assert after.text == "\n        " and after.at == pytest.approx(accept.at + accept.gap)
    # The plan's rhythm goes on from there.
    index = [k.text for k in p.keystrokes].index("\n        ")
    following = typing.next()
    assert following.at - after.at == pytest.approx(p.keystrokes[index + 1].at - p.keystrokes[index].at)
    assert (typing.accepts, typing.accepted_chars) == (1, len(accept.text))


def test_the_look_after_an_accept_is_the_same_in_every_profile():
    gaps = []
    for _ in range(2):
        typing = Typing(plan(), Typist(), seed=3)
        gaps.append(typing.next("total = a + b").gap)
    assert gaps[0] == gaps[1]


def test_an_accept_that_ends_inside_a_keystroke_leaves_the_rest_of_it():
    p = plan("a\n    b")  # keystrokes: "a", "\n    ", "b"
    typing = Typing(p, Typist())
    typing.next("a\n  c")  # "a" agrees as a whole line: accepted
    assert typing.remaining == "\n    b"
    typing = Typing(p, Typist())
    assert typing.next("a\n  ").text == "a\n  "  # half of the line break's indentation
    assert [typing.next().text, typing.next().text] == ["  ", "b"]
    assert typing.done


def test_accepting_the_end_of_the_plan_ends_it():
    typing = Typing(plan("ab"), Typist())
    action = typing.next("ab")
    assert action.accepted and typing.done and typing.next_at is None


def test_no_accepts_before_the_user_has_seen_the_suggestion_or_when_it_never_accepts():
    p = plan()
    typing = Typing(p, Typist())
    at = typing.next_at
    assert not typing.next("total", shown_at=at - 0.1).accepted  # appeared 100 ms before: typed over
    assert typing.next("otal", shown_at=at - 5).accepted
    never = Typing(p, Typist(accepts=False))
    assert not never.next("total").accepted


def test_typing_along_a_suggestion_keeps_the_moment_it_was_first_seen():
    assert seen_since("otal = a", 1.0, "o", "tal = a", answered=1.2) == 1.0
    assert seen_since("otal = a", 1.0, "x", "tal = a", answered=1.2) == 1.2  # something else
    assert seen_since("", None, "o", "tal", answered=1.2) == 1.2
