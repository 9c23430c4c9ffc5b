"""Incremental edits (`didChange`) against a reference that works the way editors count: in code
units of the negotiated encoding, lines ending only at CR LF, LF and a lone CR."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsp_server.text import EditOutsideDocument, apply_edit, line_count, offset_at, scrub_surrogates

# Characters that matter: line breaks of every kind, characters that `str.splitlines` also breaks
# at (but LSP does not), characters of 1, 2, 3 and 4 UTF-8 bytes, and NUL.
ALPHABET = ["a", "b", " ", "\t", "\n", "\r", "\r\n", "\x0c", "\x0b", "\x85", "\u2028", "é", "€", "😀", "\x00"]
documents = st.lists(st.sampled_from(ALPHABET), max_size=40).map("".join)
positions = st.tuples(st.integers(0, 12), st.integers(0, 12))
encodings = st.sampled_from(["utf-16", "utf-8", "utf-32"])


def units(text: str, encoding: str) -> list[int]:
    if encoding == "utf-8":
        return list(text.encode("utf-8"))
    if encoding == "utf-32":
        return [ord(ch) for ch in text]
    data = text.encode("utf-16-le", "surrogatepass")
    return [int.from_bytes(data[i: i + 2], "little") for i in range(0, len(data), 2)]


def from_units(code_units: list[int], encoding: str) -> str:
    if encoding == "utf-8":
        return bytes(code_units).decode("utf-8")
    if encoding == "utf-32":
        return "".join(map(chr, code_units))
    return b"".join(u.to_bytes(2, "little") for u in code_units).decode("utf-16-le", "surrogatepass")


def starts_a_character(code_units: list[int], i: int, encoding: str) -> bool:
    if i >= len(code_units):
        return True
    if encoding == "utf-8":
        return code_units[i] & 0xC0 != 0x80
    if encoding == "utf-16":
        return not 0xDC00 <= code_units[i] <= 0xDFFF
    return True


def reference_offset(code_units: list[int], line: int, character: int, encoding: str) -> int:
    """How vscode-languageserver's TextDocument finds a position, in code units."""
    starts, i, n = [0], 0, len(code_units)
    while i < n:
        if code_units[i] == 13 and i + 1 < n and code_units[i + 1] == 10:
            i += 1
        if code_units[i] in (10, 13):
            starts.append(i + 1)
        i += 1
    if line >= len(starts):
        return n
    start = starts[line]
    following = starts[line + 1] if line + 1 < len(starts) else n
    offset = min(start + character, following)
    while offset > start and code_units[offset - 1] in (10, 13):
        offset -= 1
    while not starts_a_character(code_units, offset, encoding):
        offset -= 1  # inside a character: its start (an editor never sends such a position)
    return offset


def reference_apply(text: str, start: tuple[int, int], end: tuple[int, int], new: str, encoding: str) -> str:
    code_units = units(text, encoding)
    first = reference_offset(code_units, *start, encoding)
    last = reference_offset(code_units, *end, encoding)
    first, last = min(first, last), max(first, last)
    return from_units(code_units[:first] + units(new, encoding) + code_units[last:], encoding)


@settings(max_examples=600, deadline=None)
@given(documents, positions, positions, documents, encodings)
def test_an_edit_applies_as_editors_count(text, start, end, new, encoding):
    lines = line_count(text)
    if max(start[0], end[0]) > lines:
        with pytest.raises(EditOutsideDocument):
            apply_edit(text, start, end, new, encoding)
        return
    assert apply_edit(text, start, end, new, encoding) == reference_apply(text, start, end, new, encoding)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(positions, positions, documents), min_size=1, max_size=8), documents)
def test_a_sequence_of_edits_tracks_the_editors_copy(edits, text):
    ours = reference = text
    for start, end, new in edits:
        if max(start[0], end[0]) > line_count(ours):
            continue
        ours = apply_edit(ours, start, end, new)
        reference = reference_apply(reference, start, end, new, "utf-16")
        assert ours == reference


def test_form_feed_and_line_separator_are_not_line_breaks():
    # pygls' documents split lines with str.splitlines and would edit line 1 = "b" here.
    text = "a\x0cb\u2028c\nd"
    assert apply_edit(text, (1, 0), (1, 1), "D") == "a\x0cb\u2028c\nD"


def test_one_line_past_the_end_is_the_end_and_further_is_refused():
    assert apply_edit("a\nb", (2, 0), (2, 0), "!") == "a\nb!"
    with pytest.raises(EditOutsideDocument):
        apply_edit("a\nb", (3, 0), (3, 0), "!")


def test_a_reversed_range_is_swapped():
    assert apply_edit("abcdef", (0, 4), (0, 1), "X") == "aXef"


def test_lone_surrogates_become_replacement_characters_without_moving_positions():
    text = "a\ud83db\nc\ude00"
    clean = scrub_surrogates(text)
    assert clean == "a\ufffdb\nc\ufffd"
    clean.encode("utf-8")
    for line, character in ((0, 2), (1, 1), (1, 2)):
        assert offset_at(clean, line, character) == offset_at(text, line, character)
    assert scrub_surrogates("plain 😀") == "plain 😀"
