"""Position conversion: UTF-16 code units, line breaks of every kind, clamping."""

from hypothesis import given
from hypothesis import strategies as st

from lsp_server.text import indent_width, line_starts, offset_at, position_at, units_len, utf16_len


def test_ascii_positions():
    text = "def f():\n    return 1\n"
    assert offset_at(text, 0, 0) == 0
    assert offset_at(text, 1, 4) == text.index("return")
    assert offset_at(text, 2, 0) == len(text)


def test_non_ascii_line_counts_utf16_units():
    text = "s = 'héllo'\nx = 1"
    # 'é' is one UTF-16 unit: column 7 is right after it.
    assert text[: offset_at(text, 0, 7)] == "s = 'hé"


def test_emoji_is_two_utf16_units():
    text = "a = '😀' + b\nnext"
    after_emoji = offset_at(text, 0, 7)
    assert text[:after_emoji] == "a = '😀"
    # A position inside the surrogate pair rounds down to the emoji's start.
    assert text[: offset_at(text, 0, 6)] == "a = '"


def test_utf8_and_utf32_encodings():
    text = "é😀x"
    assert offset_at(text, 0, 2, encoding="utf-8") == 1  # é is two bytes
    assert offset_at(text, 0, 6, encoding="utf-8") == 2  # 😀 is four bytes
    assert offset_at(text, 0, 2, encoding="utf-32") == 2


def test_crlf_and_lone_cr_end_lines():
    text = "a\r\nbb\rccc\nd"
    assert line_starts(text) == [0, 3, 6, 10]
    assert offset_at(text, 1, 1) == 4
    assert offset_at(text, 2, 3) == 9
    # Past the end of a CRLF line clamps before the \r, never between \r and \n.
    assert offset_at(text, 0, 99) == 1


def test_out_of_range_positions_clamp():
    text = "ab\ncd"
    assert offset_at(text, 99, 0) == len(text)
    assert offset_at(text, -1, 5) == 0
    assert offset_at(text, 1, -3) == 3


def test_position_at_roundtrip_examples():
    text = "x😀y\r\nz"
    assert position_at(text, 3) == position_at(text, 3)
    assert position_at(text, 2).character == 3
    assert position_at(text, 5).line == 1


def test_indent_width_tabs():
    assert indent_width("\tx") == 4
    assert indent_width("  \tx") == 4
    assert indent_width("     x") == 5


lines = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n")), max_size=6)
breaks = st.sampled_from(["\n", "\r\n", "\r"])


@given(lines, breaks)
def test_every_line_start_roundtrips(parts, brk):
    text = brk.join(parts)
    for number, start in enumerate(line_starts(text)):
        assert offset_at(text, number, 0) == start
        assert position_at(text, start).line == number


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))), st.integers(0, 200))
def test_position_then_offset_is_identity_on_char_boundaries(text, raw_offset):
    offset = min(raw_offset, len(text))
    if 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n":
        return  # between \r and \n is not a position
    pos = position_at(text, offset)
    assert offset_at(text, pos.line, pos.character) == offset


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
def test_units_len_matches_encoders(text):
    assert utf16_len(text) == len(text.encode("utf-16-le")) // 2
    assert units_len(text, "utf-8") == len(text.encode("utf-8"))
    assert units_len(text, "utf-32") == len(text)
