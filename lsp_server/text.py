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


def line_start(text: str, line: int) -> int | None:
    """Offset where line `line` starts, or None when the text has fewer lines."""
    if line <= 0:
        return 0 if line == 0 else None
    # One regex pass in C: a 10 MB document costs tens of milliseconds, and no list of every
    # line's start is built for one position.
    match = re.compile(r"(?:[^\r\n]*+(?>\r\n|\r|\n)){%d}" % line).match(text)
    return match.end() if match is not None else None


def offset_at(
    text: str, line: int, character: int, starts: list[int] | None = None, encoding: str = "utf-16"
) -> int:
    """Python string offset of the LSP position (`line`, `character` code units), clamped."""
    if line < 0:
        return 0
    if starts is not None:
        start: int | None = starts[line] if line < len(starts) else None
    else:
        start = line_start(text, line)
    if start is None:
        return len(text)
    end = line_content_end(text, start)
    return start + units_to_index(text[start:end], character, encoding)


def line_count(text: str) -> int:
    """Lines of `text`: line breaks plus one."""
    return text.count("\n") + text.count("\r") - text.count("\r\n") + 1


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


class EditOutsideDocument(ValueError):
    """An edit's range starts or ends on a line the document does not have: the editor's copy and
    ours differ, and applying it anyway would corrupt ours without anyone noticing."""


def apply_edit(
    text: str, start: tuple[int, int], end: tuple[int, int], new_text: str, encoding: str = "utf-16",
) -> str:
    """`text` with the range (`start`, `end`) — (line, character) in code units of `encoding` —
    replaced by `new_text`, as LSP's incremental `didChange` means it.

    Lines end at `\\r\\n`, `\\n` or a lone `\\r` and nowhere else (pygls splits at every character
    `str.splitlines` knows, form feed and U+2028 included, and so applies edits to the wrong line of
    documents that contain them). A character past a line's end means the line's end (the spec); a
    position inside a surrogate pair means the pair's start. One line past the last is the end of the
    document (Neovim sends such ranges); further out raises EditOutsideDocument. A start after the
    end is swapped with it (as vscode-languageserver's documents do).
    """
    lines = line_count(text)
    for line, _ in (start, end):
        if line > lines:
            raise EditOutsideDocument(f"line {line} is beyond the document's {lines} lines")
    first = offset_at(text, start[0], start[1], encoding=encoding)
    last = offset_at(text, end[0], end[1], encoding=encoding)
    if first > last:
        first, last = last, first
    return text[:first] + new_text + text[last:]


def scrub_surrogates(text: str) -> str:
    """`text` with lone surrogates (JSON may carry `\\ud800` alone) replaced by U+FFFD.

    Tokenizers and HTTP bodies need valid Unicode; a replacement keeps every later position
    unchanged, because a lone surrogate and U+FFFD are one UTF-16 code unit each.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text
