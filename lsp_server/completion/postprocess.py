"""Pure, incremental post-processing: deltas in → "keep going" or "complete".

`StreamFilter.feed()` is called with each piece of generated text and answers whether the
completion is already complete. The caller then closes the engine stream, which aborts the request
inside vLLM: nothing is generated that nobody will read. `StreamFilter.result()` is the text to show.

Completeness rules, decided while tokens arrive:
- a stop string of the template (engines take only a few; the rest are checked here);
- single-line mode: the first line break;
- multi-line mode, the block closes: a line indented below the cursor's block once the block has a
  body, a line that re-types one of the near suffix lines (suffix.py: reproduces it, or re-declares
  its name), a run of two blank lines, `max_lines`;
- repetition: a line (or a run of up to three lines) that repeats the one right before it — small
  models loop; the copy is never what the user wants.

Filters on the result: cut where complete, trailing whitespace, the closers the text after the cursor
already has (closers.py: trimmed, or covered by the item's range: `replace`), a single line that
repeats the line above, and whitespace-only results (nothing to show).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.remote.wire import first_stop

from ..text import indent_width
from . import closers
from .suffix import NearSuffix

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
    language: str = ""  # the document's languageId (comments and quotes for the closer rules)
    #: Near suffix lines a block must not re-type (suffix.py); 0: none.
    suffix_lines: int = 1
    #: Fit the result to the closers after the cursor, covering them with `replace` where the text
    #: must end in them (closers.py); False: only trim them (v0.1).
    cover_closers: bool = True
    text: str = field(default="", init=False)  # generated text after the healed whitespace
    cut: int | None = field(default=None, init=False)  # where the completion ends in `text`
    skipped: int = field(default=0, init=False)  # generated characters before `text` (healed)
    #: Characters after the cursor that `result()` replaces when accepted (closers it covers).
    replace: int = field(default=0, init=False)
    _raw: str = field(default="", init=False)
    _healed: bool = field(default=False, init=False)
    _near: NearSuffix | None = field(default=None, init=False)

    @property
    def near(self) -> NearSuffix:
        if self._near is None:
            self._near = NearSuffix(self.suffix[len(self.line_suffix):], self.suffix_lines, self.tab_size)
        return self._near

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
        """The completion to show (see the module docstring for the filters); `replace` says how
        many characters after the cursor it covers."""
        return self.suggestion().text

    def suggestion(self) -> closers.Fit:
        """The completion to show and the characters after the cursor it covers (also `replace`)."""
        fitted = self._filtered(self.text if self.cut is None else self.text[: self.cut])
        self.replace = fitted.replace
        return fitted

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
        return self._filtered(text if cut is None else text[:cut]).text

    @property
    def usable(self) -> str:
        """The generated text a completion can come from: all of it until the cut, none after."""
        return self.text if self.cut is None else self.text[: self.cut]

    def _filtered(self, text: str) -> closers.Fit:
        if not self.multiline:
            text = text.split("\n", 1)[0].split("\r", 1)[0]
        text = text.rstrip()
        if self.cover_closers:
            fitted = closers.fit(text, self.line_prefix, self.line_suffix,
                                 _first_nonblank_line(self.suffix[len(self.line_suffix):]), self.language)
            text, replace = fitted.text, fitted.replace
        else:
            text, replace = closers.trim(text, self.line_prefix, self.line_suffix, self.language), 0
        if not self.multiline and self.previous_lines and _same_line(
            self.line_prefix + text + self.line_suffix[replace:], self.previous_lines[-1]
        ):
            return closers.Fit("")
        if not text.strip():
            return closers.Fit("")
        return closers.Fit(text, replace)

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
        near = self.near
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
                if self.line_suffix.strip() and closers.closes_open_bracket(self.line_prefix, content, self.language):
                    return offset - 1  # `{|}` + ` a: 1 }`: the auto-closed bracket closes on its own line
                if whole:
                    if not self.line_prefix.strip():
                        if near.retypes(self.line_prefix + content):
                            return start  # the suggestion starts with what already follows the cursor
                        body_lines += 1
                    elif opens_block and content.strip():
                        body_lines += 1  # the body starts on the cursor's line (`=> x * x;`)
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
            indent = indent_width(content, self.tab_size)
            if (self.line_suffix.strip() and opens_block and indent == base and body_lines
                    and content.strip().startswith(_CLOSERS)):
                return offset - 1  # `{|}`: the suggestion closes the block the editor closed (covered)
            if near.retypes(content):
                return start  # the model re-types what already follows the cursor
            history.append((content.strip(), start))
            if _repeats(history):
                return _repeat_start(history)
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
