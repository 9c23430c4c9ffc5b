"""The range a suggestion replaces: the cursor, over the closers it covers, in the client's units."""

from lsprotocol import types

from lsp_server.completion.completer import Completion
from lsp_server.features.common import covered_range

CURSOR = types.Position(line=3, character=7)


def test_nothing_covered_is_an_empty_range_at_the_cursor():
    assert covered_range(CURSOR, "", "utf-16") == types.Range(start=CURSOR, end=CURSOR)


def test_covered_closers_extend_the_range_on_the_cursors_line():
    assert covered_range(CURSOR, "):", "utf-16").end == types.Position(line=3, character=9)


def test_units_follow_the_negotiated_encoding():
    covers = "\U0001F600\")"  # an emoji inside the string, then its closers
    assert covered_range(CURSOR, covers, "utf-16").end.character == 7 + 4
    assert covered_range(CURSOR, covers, "utf-8").end.character == 7 + 6
    assert covered_range(CURSOR, covers, "utf-32").end.character == 7 + 3


def test_each_candidate_keeps_its_own_cover():
    completion = Completion("a) + b", texts=("a) + b", "a"), covers=(")", ""))
    assert completion.items == (("a) + b", ")"), ("a", ""))
    assert Completion("x").items == (("x", ""),)
