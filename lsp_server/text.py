"""Pure text helpers: LSP positions (UTF-16 code units) ↔ Python string offsets, line handling.

LSP counts a position's character in UTF-16 code units by default, and ends lines at `\\r\\n`,
`\\n` or a lone `\\r`. Python indexes strings by code point. Every conversion goes through here.
Out-of-range positions are clamped (the LSP spec says a character past the line end means the
line end), never raised, so a stale position from an editor still gets an answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def utf16_len(text: str) -> int:
    """Length of `text` in UTF-16 code units (characters above U+FFFF count twice)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def line_starts(text: str) -> list[int]:
    """Offsets where each line starts; line breaks are `\\r\\n`, `\\n` and a lone `\\r`."""
    return [0, *(m.end() for m in _LINE_BREAK.finditer(text))]


def line_content_end(text: str, start: int) -> int:
    """Offset of the end of the line starting at `start`, before its line break."""
    ends = [i for i in (text.find("\n", start), text.find("\r", start)) if i != -1]
    return min(ends) if ends else len(text)


def char_units(ch: str, encoding: str = "utf-16") -> int:
    """Code units of one character in the negotiated position encoding."""
    if encoding == "utf-32":
        return 1
    if encoding == "utf-8":
        return len(ch.encode("utf-8", "surrogatepass"))
    return 2 if ord(ch) > 0xFFFF else 1


def units_len(text: str, encoding: str = "utf-16") -> int:
    """Length of `text` in code units of the negotiated position encoding."""
    if encoding == "utf-32":
        return len(text)
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    return utf16_len(text)


def units_to_index(line: str, character: int, encoding: str = "utf-16") -> int:
    """Python index in `line` of a position `character` code units in, clamped to the line.

    A position inside a character (the middle of an emoji's surrogate pair, or of a UTF-8
    sequence) rounds down to the character's start.
    """
    if character <= 0:
        return 0
    if encoding == "utf-32":
        return min(character, len(line))
    units = 0
    for index, ch in enumerate(line):
        width = char_units(ch, encoding)
        if units + width > character:
            return index
        units += width
    return len(line)


def offset_at(
    text: str, line: int, character: int, starts: list[int] | None = None, encoding: str = "utf-16"
) -> int:
    """Python string offset of the LSP position (`line`, `character` code units), clamped."""
    starts = starts if starts is not None else line_starts(text)
    if line < 0:
        return 0
    if line >= len(starts):
        return len(text)
    start = starts[line]
    end = line_content_end(text, start)
    return start + units_to_index(text[start:end], character, encoding)


@dataclass(frozen=True)
class Position:
    line: int
    character: int  # UTF-16 code units


def position_at(text: str, offset: int) -> Position:
    """The LSP position of a Python string offset (clamped to the text)."""
    offset = max(0, min(offset, len(text)))
    starts = line_starts(text)
    # Last line start at or before offset (bisect by hand keeps this module dependency-free).
    lo, hi = 0, len(starts) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if starts[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    start = starts[lo]
    # An offset between \r and \n belongs to the line that \r\n ends.
    return Position(lo, utf16_len(text[start:offset]))


def leading_whitespace(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def indent_width(line: str, tab_size: int = 4) -> int:
    """Visual width of a line's indentation (tabs to the next multiple of `tab_size`)."""
    width = 0
    for ch in leading_whitespace(line):
        width = (width // tab_size + 1) * tab_size if ch == "\t" else width + 1
    return width
