"""Auto-closed brackets and quotes: what a suggestion may close, and which closers after the cursor it covers.

Editors insert the closer when the user types an opener: the user types `foo(` and sees `foo(|)`,
types `"` and sees `"|"`, and `def f(` often ends as `def f(|):`. A model that writes the closer
itself (`x)`) must not leave two behind when the suggestion is accepted. `fit()` decides, for the
suggestion's text, the cursor's line before the cursor and the line after it:

- the text ends inside what the line already has after the cursor (`x)` before `)`, `a, b):` before
  `):`): the text is trimmed to before its closer (`x`), so every editor leaves one, even one that
  ignores ranges;
- the text must end in the closer and goes on after it (`a) + b` before `)`, a block `{` … `}` before
  an auto-closed `}`, `bar: str):` + a body before `):`): the text stays whole and `replace` says
  how many characters after the cursor it covers; the features turn that into the item's range
  (LSP 3.18 `InlineCompletionItem.range`, a completion item's `textEdit`), so accepting replaces the
  closer that is there;
- the text closes a bracket that the suffix closes again further on (`foo(` + `a) + b` + `), c)` with
  one bracket too many, or a call closed on the next line): it is cut before its own closer;
- the text starts a line comment while code follows the cursor: it ends before the comment, which
  would swallow that code.

`fit()` is idempotent, and a suggestion the user types along keeps its `replace` (the typed-ahead
cache asks again with the rest of the text). Brackets and quotes inside string literals and line
comments do not count. Pure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

_PAIRS = {")": "(", "]": "[", "}": "{"}
_OPENERS = frozenset(_PAIRS.values())
#: Characters after the auto-inserted closers that still make the rest of the line "auto-closed"
#: (`def f(|):`, `foo(|);`, `if (|) {`).
_TRAILING = frozenset(":;, {")
#: Line comment markers by language family; languages not listed get none (never a wrong guess).
_HASH_COMMENTS = frozenset({"python", "ruby", "shellscript", "bash", "sh", "perl", "r", "yaml", "toml", "elixir"})
_SLASH_COMMENTS = frozenset({
    "javascript", "javascriptreact", "typescript", "typescriptreact", "go", "rust", "java", "c", "cpp",
    "csharp", "kotlin", "swift", "scala", "dart", "php", "jsonc", "zig",
})


@dataclass(frozen=True)
class Fit:
    text: str
    #: Characters after the cursor (on its line) that the text replaces when accepted.
    replace: int = 0


#: Languages whose backticks open strings (template literals, Go raw strings, shell commands). In
#: the others a backtick is text (Python, Rust): counted as a quote, an odd one in generated text
#: hid the closer after it and the auto-closed `)` stayed twice. Unknown languages keep it.
_BACKTICK_STRINGS = frozenset({
    "javascript", "javascriptreact", "typescript", "typescriptreact", "go", "shellscript", "bash", "sh",
})


def _quotes(language: str) -> str:
    # Rust lifetimes (`&'a str`) are not quotes; its char literals are rare at a cursor.
    quotes = '"' if language == "rust" else "\"'"
    return quotes + "`" if not language or language in _BACKTICK_STRINGS else quotes


def _comment(language: str) -> str | None:
    if language in _HASH_COMMENTS:
        return "#"
    if language in _SLASH_COMMENTS:
        return "//"
    return None


@dataclass
class _Scan:
    """Bracket and quote state while reading text left to right."""

    language: str = ""
    stack: list[tuple[str, int | None]] | None = None  # (opener, index in the text; None: before it)
    quote: str | None = None
    quote_at: int | None = None  # where the open quote started (None: before the text)
    escaped: bool = False
    comment: bool = False

    def __post_init__(self) -> None:
        if self.stack is None:
            self.stack = []

    def feed(self, text: str, origin: bool) -> list[tuple[int, str, str]]:
        """Read `text`; events (index, char, kind) with kind "open", "close", "outer" (closes what
        was open before `text`), "unopened" (closes nothing this scan has seen: a bracket opened on
        an earlier line) or "mismatch".

        `origin`: record positions (the suggestion) rather than None (the text before the cursor).
        """
        events: list[tuple[int, str, str]] = []
        quotes, marker = _quotes(self.language), _comment(self.language)
        stack = self.stack
        assert stack is not None
        for i, ch in enumerate(text):
            if self.comment:
                if ch == "\n":
                    self.comment = False
                continue
            if self.quote is not None:
                if self.escaped:
                    self.escaped = False
                elif ch == "\\":
                    self.escaped = True
                elif ch == self.quote:
                    events.append((i, ch, "outer" if self.quote_at is None else "close"))
                    self.quote = None
                elif ch == "\n" and self.quote != "`":
                    self.quote = None  # an unterminated string ends with its line
                continue
            if marker is not None and text.startswith(marker, i):
                self.comment = True
                events.append((i, marker, "comment"))
            elif ch in quotes:
                self.quote, self.quote_at = ch, (i if origin else None)
                events.append((i, ch, "open"))
            elif ch in _OPENERS:
                stack.append((ch, i if origin else None))
                events.append((i, ch, "open"))
            elif ch in _PAIRS:
                if stack and stack[-1][0] == _PAIRS[ch]:
                    opened_at = stack.pop()[1]
                    events.append((i, ch, "outer" if opened_at is None else "close"))
                elif not stack:
                    events.append((i, ch, "unopened"))  # opened on an earlier line
                else:
                    events.append((i, ch, "mismatch"))
        return events


def _state_after(line_prefix: str, language: str) -> _Scan:
    scan = _Scan(language)
    scan.feed(line_prefix, origin=False)
    return scan


def auto_closed(line_prefix: str, line_suffix: str, language: str = "") -> bool:
    """The rest of the line is only closers of what is open before the cursor (what an editor
    inserts on its own), maybe followed by `:`, `;`, `,` or ` {`: `foo(|)`, `def f(|):`, `"|")`."""
    rest = line_suffix.strip()
    if not rest:
        return False
    scan = _state_after(line_prefix, language)
    if scan.comment:
        return False
    stack = list(scan.stack or [])
    quote = scan.quote
    i = 0
    while i < len(rest):
        ch = rest[i]
        if quote is not None and ch == quote:
            quote = None
        elif quote is None and ch in _PAIRS and stack and stack[-1][0] == _PAIRS[ch]:
            stack.pop()
        else:
            break
        i += 1
    return i > 0 and all(ch in _TRAILING for ch in rest[i:])


def fit(text: str, line_prefix: str, line_suffix: str, next_line: str = "", language: str = "") -> Fit:
    """The suggestion `text` made to fit what follows the cursor (see the module docstring).

    `line_suffix` is the cursor's line after the cursor; `next_line` the first non-blank line below
    it (a bracket the suffix closes on a later line must not be closed again).
    """
    if not text:
        return Fit(text)
    if line_suffix.strip():
        text = _before_comment(text, line_prefix, language)
    if not line_suffix.strip():
        closing = _leading_closers(next_line.strip())
        if closing and _closes_same(text, line_prefix, next_line, language):
            cut = _cut_double_closes(text, line_prefix, closing, language)
            return Fit(text) if cut == text else fit(cut, line_prefix, line_suffix, next_line, language)
        return Fit(text)
    double = _double_close(text, line_prefix, line_suffix, language)
    if double is None:
        if "\n" not in text and auto_closed(line_prefix, line_suffix, language):
            head = _without_open_tail(text, line_prefix, language)
            # What is left may now close the cursor's bracket itself (`a) + f(` → `a)`): fit it again.
            return Fit(text) if head == text else fit(head, line_prefix, line_suffix, next_line, language)
        return Fit(text)  # nothing is closed twice: the closers after the cursor close something else
    if "\n" not in text:
        # The line already ends this way (`x)` before `)`): leave its closers where they are, so
        # an editor that ignores ranges gets it right too.
        trimmed = _trim_overlap(text, line_suffix)
        if trimmed != text and _double_close(trimmed, line_prefix, line_suffix, language) is None:
            return fit(trimmed, line_prefix, line_suffix, next_line, language)
    covered = len(os.path.commonprefix([text[double:], line_suffix]))
    if covered == 0:
        return fit(text[:double].rstrip(), line_prefix, line_suffix, next_line, language)
    rest = text[double + covered:]
    if "\n" in rest and not _opens_block(line_prefix + text[: double + covered]):
        # The line is complete with its closers: only a body may follow them on later lines.
        return fit(text[: double + covered + rest.index("\n")].rstrip(), line_prefix, line_suffix, next_line,
                   language)
    cut = _double_close(text, line_prefix, line_suffix[covered:], language)
    if cut is not None:
        return fit(text[:cut].rstrip(), line_prefix, line_suffix, next_line, language)
    return Fit(text, covered)


def _without_open_tail(text: str, line_prefix: str, language: str) -> str:
    """`text` up to where the closers after the cursor can follow it: a suggestion that stops inside
    a bracket it opened itself (cut by its token limit: `max(|)` + `a, max(b` ) would have the
    editor's `)` close that one and leave the outer call open. Cut before the first such bracket,
    with the name it calls and the operator that led to it."""
    scan = _state_after(line_prefix, language)
    scan.feed(text, origin=True)
    assert scan.stack is not None
    opened = [at for _, at in scan.stack if at is not None]
    if not opened:
        return text
    head = text[: min(opened)]
    head = head.rstrip(_NAME_CHARS)
    return head.rstrip(_TAIL_CHARS)


#: What is cut with an unclosed bracket at a suggestion's end: the name before it, then spaces and
#: the operator or separator that led to it.
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_."
_TAIL_CHARS = " \t+-*/%=&|^<>,!~:"


def _closes_same(text: str, line_prefix: str, next_line: str, language: str) -> bool:
    """The next line's closer closes the bracket that `text` closes, judged by indentation: one
    opened on the cursor's line is closed at that line's indentation; one opened further up, further
    left (`if x {` + `}` one level out closes the function, not the `if`)."""
    scan = _state_after(line_prefix, language)
    kinds = [kind for _, ch, kind in scan.feed(text, origin=True) if ch in _PAIRS and kind in ("outer", "unopened")]
    if not kinds:
        return False
    here, there = _indent(line_prefix), _indent(next_line)
    return there == here if kinds[0] == "outer" else there < here


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def doubles_closer(text: str, line_prefix: str, line_suffix: str, language: str = "") -> bool:
    """Accepting `text` between `line_prefix` and `line_suffix` leaves a bracket or the cursor's
    string closed twice (what the bench counts)."""
    return _double_close(text, line_prefix, line_suffix, language) is not None


def trim(text: str, line_prefix: str, line_suffix: str, language: str = "") -> str:
    """Only trimming, never covering (0.1's rule, `generation.coverClosers: false`): a comment that
    would swallow the code after the cursor, the end of `text` that the line has after the cursor,
    then anything that closes a bracket the suffix closes again."""
    if line_suffix.strip():
        text = _before_comment(text, line_prefix, language)
    return _cut_double_closes(_trim_overlap(text, line_suffix), line_prefix, line_suffix, language)


def _before_comment(text: str, line_prefix: str, language: str) -> str:
    """`text` up to a line comment it starts on the cursor's line: with code after the cursor, the
    comment would swallow it (`print(|)` + `f(x))  # note` leaves `)` inside the comment)."""
    line_end = text.find("\n")
    for i, _, kind in _state_after(line_prefix, language).feed(text, origin=True):
        if kind == "comment" and (line_end == -1 or i < line_end):
            return text[:i].rstrip()
    return text


def _opens_block(line: str) -> bool:
    last = line.rstrip().rsplit("\n", 1)[-1]
    return last.endswith((":", "{", "=>"))


def _leading_closers(line: str) -> str:
    end = 0
    while end < len(line) and line[end] in _PAIRS:
        end += 1
    return line[:end]


def _trim_overlap(text: str, line_suffix: str) -> str:
    """Drop the end of `text` that the line already has after the cursor (`")` before `")`).

    A closing bracket is only dropped when `text` closes more of that bracket than it opens, so a
    suggestion that closes its own call (`foo(a)` before a `)`) keeps its bracket.
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


def _cut_double_closes(text: str, line_prefix: str, line_suffix: str, language: str) -> str:
    """`text` cut before each closer that the suffix closes again (`foo(` + `a) + b` + `)` → `a`)."""
    for _ in range(len(text) + 1):
        cut = _double_close(text, line_prefix, line_suffix, language)
        if cut is None:
            return text
        text = text[:cut].rstrip()
    return text


def _double_close(text: str, line_prefix: str, line_suffix: str, language: str) -> int | None:
    """Where `text` closes a bracket (or the string) that `line_suffix` closes again, or None."""
    scan = _state_after(line_prefix, language)
    outer: dict[str, list[int]] = {}
    for i, ch, kind in scan.feed(text, origin=True):
        if kind == "mismatch":
            return None  # mismatched brackets: not ours to repair
        if kind in ("outer", "unopened"):
            outer.setdefault(ch, []).append(i)
    for quote in _quotes(language):
        if outer.get(quote) and scan.quote is None and line_suffix.startswith(quote):
            return outer[quote][0]  # the string the cursor is in ends twice
    for _, ch, kind in scan.feed(line_suffix, origin=True):
        if ch not in _PAIRS:
            continue
        if kind == "unopened":
            return outer[ch][-1] if outer.get(ch) else None
        if kind == "mismatch":
            # The suffix closes what the text's own closer already closed (`if (a` + `b) {` + `) {`).
            closes = [i for c, found in outer.items() if c in _PAIRS for i in found]
            return min(closes) if closes else None
    return None


def closes_open_bracket(line_prefix: str, text: str, language: str = "") -> bool:
    """`text` closes a bracket or the string open at the end of `line_prefix` (`{` + ` a: 1 }`)."""
    scan = _state_after(line_prefix, language)
    return any(kind == "outer" for _, _, kind in scan.feed(text, origin=True))


def fit_at(document: str, offset: int, text: str, language: str = "") -> Fit:
    """`fit()` for a suggestion at `offset` in `document` (the typed-ahead cache's answers)."""
    start = max(document.rfind("\n", 0, offset), document.rfind("\r", 0, offset)) + 1
    ends = [i for i in (document.find("\n", offset), document.find("\r", offset)) if i != -1]
    end = min(ends) if ends else len(document)
    following = next((line for line in document[end:].splitlines() if line.strip()), "")
    return fit(text, document[start:offset], document[offset:end], following, language)
