"""Pure, incremental post-processing: deltas in → "keep going" or "complete".

`StreamFilter.feed()` is called with each piece of generated text and answers whether the
completion is already complete. The caller then closes the engine stream, which aborts the request
inside vLLM: nothing is generated that nobody will read. `StreamFilter.result()` is the text to show.

Completeness rules:
- single-line mode: the first line break ends the completion;
- multi-line mode: the block closes: a line indented at or below the cursor's block level once the
  block has a body, the suffix's next line reproduced, a run of two blank lines, or `max_lines`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .text import indent_width, leading_whitespace

_BLOCK_OPENERS = (":", "{", "(", "[", "=>", "->")
_CLOSERS = ("}", ")", "]", "end", "fi", "done", "esac")


@dataclass
class StreamFilter:
    multiline: bool
    line_prefix: str  # the cursor's line before the cursor
    line_suffix: str = ""  # the cursor's line after the cursor
    suffix: str = ""  # the document after the cursor (its next lines matter)
    max_lines: int = 8
    tab_size: int = 4
    heal: str = ""  # whitespace cut from the prompt's end that the generated text starts by re-supplying
    text: str = field(default="", init=False)  # generated text after the healed whitespace
    cut: int | None = field(default=None, init=False)  # where the completion ends in `text`
    skipped: int = field(default=0, init=False)  # generated characters before `text` (healed)
    _raw: str = field(default="", init=False)
    _healed: bool = field(default=False, init=False)

    @property
    def done(self) -> bool:
        return self.cut is not None

    def feed(self, delta: str) -> bool:
        """Add generated text; True once the completion is complete (stop the engine)."""
        if self.cut is not None:
            return True
        if self._healed:
            self.text += delta
        else:
            self._raw += delta
            common = _common_prefix_len(self._raw, self.heal)
            if common == len(self._raw) and common < len(self.heal):
                return False  # still inside the whitespace we cut from the prompt
            self.text, self._healed, self.skipped = self._raw[common:], True, common
        self.cut = self._find_cut()
        return self.cut is not None

    def result(self) -> str:
        """The completion to show: cut where it ends, trailing whitespace and suffix overlap removed."""
        text = self.text if self.cut is None else self.text[: self.cut]
        if not self.multiline:
            text = text.split("\n", 1)[0].split("\r", 1)[0]
        text = text.rstrip()
        text = _trim_suffix_overlap(text, self.line_suffix)
        return text if text.strip() else ""

    # -- completeness -------------------------------------------------------------------------

    def _find_cut(self) -> int | None:
        text = self.text
        if not self.multiline:
            brk = _first_break(text)
            return brk
        return self._block_cut(text)

    def _block_cut(self, text: str) -> int | None:
        base = indent_width(self.line_prefix, self.tab_size)
        stripped_prefix = self.line_prefix.rstrip()
        opens_block = stripped_prefix.endswith(_BLOCK_OPENERS)
        next_suffix_line = _first_nonblank_line(self.suffix[len(self.line_suffix):])

        offset = 0
        lines = text.split("\n")
        complete = lines[:-1]  # the last element is a line still being generated
        blank_run = 0
        body_lines = 0
        for number, line in enumerate(complete):
            start, offset = offset, offset + len(line) + 1
            if number == 0:
                # The rest of the cursor's line. On an empty cursor line it is the first body line.
                if not self.line_prefix.strip() and line.strip():
                    body_lines += 1
                continue
            content = line.rstrip("\r")
            if number >= self.max_lines:
                return start
            if not content.strip():
                blank_run += 1
                if blank_run >= 2:
                    return start
                continue
            blank_run = 0
            if next_suffix_line and content.strip() == next_suffix_line.strip():
                return start  # the model reproduces what already follows the cursor
            indent = indent_width(content, self.tab_size)
            if opens_block:
                if indent <= base and body_lines:
                    if content.strip().startswith(_CLOSERS) and indent == base:
                        return offset - 1  # a closing line at the block's level completes it
                    return start
            elif indent < base:
                return start
            body_lines += 1
        if len(complete) >= self.max_lines + 1:
            return offset - 1
        return None


def _common_prefix_len(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _first_break(text: str) -> int | None:
    positions = [p for p in (text.find("\n"), text.find("\r")) if p != -1]
    return min(positions) if positions else None


def _first_nonblank_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


_PAIRS = {")": "(", "]": "[", "}": "{"}


def _trim_suffix_overlap(text: str, line_suffix: str) -> str:
    """Drop the end of `text` that the cursor line already has after the cursor (e.g. `")`).

    A closing bracket is only dropped when `text` closes more of that bracket than it opens, so a
    completion that closes its own call (`foo(a)` before a `)`) keeps its bracket.
    """
    tail = line_suffix.strip()
    for k in range(min(len(tail), len(text)), 0, -1):
        overlap = tail[:k]
        if text.endswith(overlap) and all(
            text.count(closer) - text.count(opener) >= overlap.count(closer)
            for closer, opener in _PAIRS.items()
        ):
            return text[: len(text) - k]
    return text


def completion_indent(line_prefix: str) -> str:
    return leading_whitespace(line_prefix)
