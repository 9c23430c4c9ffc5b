"""Pure, incremental post-processing: deltas in → "keep going" or "complete".

`StreamFilter.feed()` is called with each piece of generated text and answers whether the
completion is already complete. The caller then closes the engine stream, which aborts the request
inside vLLM: nothing is generated that nobody will read. `StreamFilter.result()` is the text to show.

Completeness rules, decided while tokens arrive:
- a stop string of the template (engines take only a few; the rest are checked here);
- single-line mode: the first line break;
- multi-line mode, the block closes: a line indented below the cursor's block once the block has a
  body, the suffix's next line reproduced, a run of two blank lines, `max_lines`;
- repetition: a line (or a run of up to three lines) that repeats the one right before it — small
  models loop; the copy is never what the user wants.

Filters on the result: cut where complete, trailing whitespace, overlap with the text after the cursor,
closing brackets that the suffix already closes, a single line that repeats the line above, and
whitespace-only results (nothing to show).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.remote.wire import first_stop

from ..text import indent_width

_BLOCK_OPENERS = (":", "{", "(", "[", "=>", "->")
_CLOSERS = ("}", ")", "]", "end", "fi", "done", "esac")
#: A repeated line shorter than this (`}`, `end`, `pass`) is ordinary code, not a loop.
_MIN_REPEAT_CHARS = 6
_MAX_REPEAT_BLOCK = 3


@dataclass
class StreamFilter:
    """Decides, delta by delta, when one candidate's completion is complete, and what of it to show."""

    multiline: bool
    line_prefix: str  # the cursor's line before the cursor
    line_suffix: str = ""  # the cursor's line after the cursor
    suffix: str = ""  # the document after the cursor (its next lines matter)
    max_lines: int = 8
    tab_size: int = 4
    heal: str = ""  # whitespace cut from the prompt's end that the generated text starts by re-supplying
    stop: tuple[str, ...] = ()  # strings that end the completion (not included)
    previous_lines: tuple[str, ...] = ()  # the last non-blank lines above the cursor's line, oldest first
    text: str = field(default="", init=False)  # generated text after the healed whitespace
    cut: int | None = field(default=None, init=False)  # where the completion ends in `text`
    skipped: int = field(default=0, init=False)  # generated characters before `text` (healed)
    _raw: str = field(default="", init=False)
    _healed: bool = field(default=False, init=False)

    @property
    def done(self) -> bool:
        """The completion is complete: nothing the engine generates from now on is wanted."""
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
        self.cut = self._find_cut(len(delta))
        return self.cut is not None

    def finish(self) -> None:
        """The engine ended the stream: the completion is what arrived (the last line is now whole)."""
        if self.cut is None:
            self.cut = self._final_cut(self.text)

    def _final_cut(self, text: str) -> int | None:
        """Where a completion that ends with `text` is complete (None: all of it)."""
        if not self.multiline:
            return None
        cut = self._block_cut(text + "\n")
        return None if cut is None else min(cut, len(text))

    def result(self) -> str:
        """The completion to show (see the module docstring for the filters)."""
        return self._filtered(self.text if self.cut is None else self.text[: self.cut])

    def lines_so_far(self) -> str:
        """What `result()` would be if the stream ended after its last line break: the complete
        lines generated so far, filtered. An answer given before the block is complete shows this
        (the line still being generated could yet change)."""
        if self.cut is not None or not self.multiline:
            return self.result() if self.cut is not None else ""
        end = self.text.rfind("\n")
        if end < 0:
            return ""
        text = self.text[:end]
        cut = self._final_cut(text)
        return self._filtered(text if cut is None else text[:cut])

    @property
    def usable(self) -> str:
        """The generated text a completion can come from: all of it until the cut, none after."""
        return self.text if self.cut is None else self.text[: self.cut]

    def _filtered(self, text: str) -> str:
        if not self.multiline:
            text = text.split("\n", 1)[0].split("\r", 1)[0]
        text = text.rstrip()
        text = _trim_suffix_overlap(text, self.line_suffix)
        text = balance_against_suffix(text, self.line_prefix, self.line_suffix)
        if not self.multiline and self.previous_lines and _same_line(
            self.line_prefix + text + self.line_suffix, self.previous_lines[-1]
        ):
            return ""
        return text if text.strip() else ""

    # -- completeness -------------------------------------------------------------------------

    def _find_cut(self, new: int) -> int | None:
        text = self.text
        if self.stop:
            # A stop string can straddle deltas: look back as far as the longest one. The stream
            # ends at the stop: what follows it never existed, and the line before it is whole.
            start = max(0, len(text) - new - max(map(len, self.stop)))
            stop_at = first_stop(text, self.stop, start)
            if stop_at is not None:
                final = self._final_cut(text[:stop_at])
                return stop_at if final is None else final
        cuts = []
        if not self.multiline:
            brk = _first_break(text)
            if brk is not None:
                cuts.append(brk)
        else:
            block = self._block_cut(text)
            if block is not None:
                cuts.append(block)
        return min(cuts) if cuts else None

    def _block_cut(self, text: str) -> int | None:
        base = indent_width(self.line_prefix, self.tab_size)
        stripped_prefix = self.line_prefix.rstrip()
        opens_block = stripped_prefix.endswith(_BLOCK_OPENERS)
        next_suffix_line = _first_nonblank_line(self.suffix[len(self.line_suffix):])
        # Non-blank lines seen so far, with where they start in `text` (None: above the cursor).
        history: list[tuple[str, int | None]] = [(line.strip(), None) for line in self.previous_lines]

        offset = 0
        lines = text.split("\n")
        complete = lines[:-1]  # the last element is a line still being generated
        blank_run = 0
        body_lines = 0
        for number, line in enumerate(complete):
            start, offset = offset, offset + len(line) + 1
            content = line.rstrip("\r")
            if number == 0:
                # The rest of the cursor's line. On an empty cursor line it is the first body line.
                whole = (self.line_prefix + content).strip()
                if whole:
                    if not self.line_prefix.strip():
                        body_lines += 1
                    history.append((whole, start if not self.line_prefix.strip() else None))
                    if _repeats(history):
                        return _repeat_start(history)
                continue
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
            history.append((content.strip(), start))
            if _repeats(history):
                return _repeat_start(history)
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


def _repeats(history: list[tuple[str, int | None]]) -> bool:
    return _repeat_block(history) is not None


def _repeat_block(history: list[tuple[str, int | None]]) -> int | None:
    """Length of a block of lines at the end of `history` that repeats the block right before it."""
    for k in range(1, _MAX_REPEAT_BLOCK + 1):
        if len(history) < 2 * k:
            break
        block = [line for line, _ in history[-k:]]
        if history[-k][1] is None:
            continue  # the repetition must be generated, not the document's own
        if block == [line for line, _ in history[-2 * k: -k]] and sum(map(len, block)) >= _MIN_REPEAT_CHARS:
            return k
    return None


def _repeat_start(history: list[tuple[str, int | None]]) -> int:
    k = _repeat_block(history)
    assert k is not None
    start = history[-k][1]
    assert start is not None
    return start


def _same_line(a: str, b: str) -> bool:
    a, b = a.strip(), b.strip()
    return len(a) >= _MIN_REPEAT_CHARS and a == b


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
_OPENERS = set(_PAIRS.values())


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
            for closer, opener in _PAIRS.items() if closer in overlap
        ):
            return text[: len(text) - k]
    return text


def _brackets(text: str, quote: str | None = None) -> tuple[list[tuple[int, str]], str | None]:
    """Bracket characters of `text` outside string literals, and the quote still open at its end."""
    found: list[tuple[int, str]] = []
    escaped = False
    for i, ch in enumerate(text):
        if quote is not None:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'`":
            quote = ch
        elif ch in _PAIRS or ch in _OPENERS:
            found.append((i, ch))
    return found, quote


def balance_against_suffix(text: str, line_prefix: str, line_suffix: str) -> str:
    """Cut `text` before a closing bracket that the suffix closes again.

    `foo(` + `a) + b` + `)` closes `(` twice: the completion becomes `a`. Closers of brackets opened on
    earlier lines count as outer closes too (a multi-line call closed by the suffix).
    """
    for _ in range(len(text) + 1):
        cut = _double_close(text, line_prefix, line_suffix)
        if cut is None:
            return text
        text = text[:cut].rstrip()
    return text


def _double_close(text: str, line_prefix: str, line_suffix: str) -> int | None:
    before, quote = _brackets(line_prefix)
    stack: list[tuple[str, int | None]] = []  # (opener, index in text; None: opened before the completion)
    for _, ch in before:
        if ch in _OPENERS:
            stack.append((ch, None))
        elif stack and stack[-1][0] == _PAIRS[ch]:
            stack.pop()
    outer: dict[str, list[int]] = {}  # closer → where the completion closes a bracket it did not open
    inside, quote = _brackets(text, quote)
    for i, ch in inside:
        if ch in _OPENERS:
            stack.append((ch, i))
        elif stack and stack[-1][0] == _PAIRS[ch]:
            if stack.pop()[1] is None:
                outer.setdefault(ch, []).append(i)
        elif not stack:
            outer.setdefault(ch, []).append(i)
        else:
            return None  # mismatched brackets: not ours to repair
    after, _ = _brackets(line_suffix, quote)
    for _, ch in after:
        if ch in _OPENERS:
            stack.append((ch, -1))
        elif stack and stack[-1][0] == _PAIRS[ch]:
            stack.pop()
        elif not stack:
            return outer[ch][-1] if outer.get(ch) else None
        else:
            return None
    return None
