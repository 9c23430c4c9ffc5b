"""Pure prompt building: document text + cursor + token budget → the prompt and the rules to stop by.

Budgets are in tokens of the engine's own tokenizer. Counting is passed in (`count`), so this module
stays pure: the caller counts *chunks* — a line together with the line break before it, the way BPE
tokenizers merge a newline with the next line's indentation — and caches the counts, so a keystroke
costs one new chunk to tokenize. Sums of chunk counts are within about 1 % of the count of the joined
text, and err on the high side.

Cache-friendly layout: vLLM's prefix cache reuses KV blocks of an identical token prefix, so from one
keystroke to the next the start of the prompt must not move:
- the prefix is cut at a line start snapped to a grid of `prefix_step_lines` lines: the cut moves
  only when the budget is exceeded, and then by a whole step, not on every keystroke;
- the suffix budget does not depend on the prefix, and typing at the cursor does not change the
  text after it, so in suffix-first layouts everything but the end of the prefix is reused;
- other open documents come first, most recently used first, each cut line-aligned; the room they
  get is rounded down to `context_quantum` tokens, so a growing prefix changes them only rarely.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from engine.templates import Template

Multiline = Literal["auto", "always", "never"]
#: Token count of a piece of text (a chunk, see the module docstring).
Count = Callable[[str], int]

_BEFORE_BREAK = re.compile(r"(?=\r)|(?<!\r)(?=\n)")
#: Only this many characters per token of budget are split into chunks: no tokenizer averages more,
#: and a large file then costs no more per keystroke than a small one.
_WINDOW_CHARS_PER_TOKEN = 16


@dataclass(frozen=True)
class PromptOptions:
    """The settings that shape a prompt (budget, layout, single- or multi-line)."""

    #: Most prompt tokens (the caller caps it by the model's context length minus the completion).
    max_prompt_tokens: int = 1536
    #: Share of the budget for the text after the cursor (FIM templates only).
    suffix_share: float = 0.25
    #: How many other open documents may fill what the cursor's document leaves of the budget.
    context_documents: int = 3
    multiline: Multiline = "auto"
    max_tokens: int = 96
    max_line_tokens: int = 48
    #: The prefix cut snaps to multiples of this many lines (see module docstring).
    prefix_step_lines: int = 32
    #: The room for other documents is a multiple of this many tokens (see module docstring).
    context_quantum: int = 128
    #: Other documents smaller than this after cutting are not worth their header.
    min_context_tokens: int = 32


@dataclass(frozen=True)
class ContextDocument:
    """Another open document: its path (as the model should see it) and its text."""

    path: str
    text: str


@dataclass(frozen=True)
class Prompt:
    """A prompt for the engine and what post-processing must know about the text around the cursor."""

    text: str
    prefix: str  # document text before the cursor that the prompt holds
    suffix: str  # document text after the cursor within the suffix budget (in the prompt if FIM)
    line_prefix: str  # the cursor's line, before the cursor
    line_suffix: str  # the cursor's line, after the cursor
    multiline: bool
    stop: tuple[str, ...]
    max_tokens: int
    #: Whitespace cut from the end of the prompt; the completion's start must re-supply it.
    heal: str = ""
    #: Prompt tokens by the chunk counts (see module docstring).
    tokens: int = 0
    #: Paths of the other documents the prompt holds, in prompt order.
    files: tuple[str, ...] = ()
    #: The last non-blank lines above the cursor's line, oldest first (repetition is judged by them).
    previous_lines: tuple[str, ...] = ()
    #: The document's language (LSP languageId); the post-processor reads comments and quotes by it.
    language: str = ""


def is_mid_line(line_suffix: str) -> bool:
    """The cursor has code after it on its line: complete only to the end of the line."""
    return bool(line_suffix.strip())


def chunks(text: str) -> list[str]:
    """`text` split before each line break: chunk i is line i with the break that precedes it."""
    return _BEFORE_BREAK.split(text) if text else []


def build_prompt(
    text: str,
    offset: int,
    template: Template,
    options: PromptOptions,
    count: Count,
    path: str | None = None,
    documents: Sequence[ContextDocument] = (),
    block: bool | None = None,
    language: str = "",
) -> Prompt:
    """The prompt for `text` at `offset` in `template`'s layout, within the token budget, with
    the stop rules that end the completion (module docstring for the layout rules). `block`: whether
    the syntax at the cursor expects a block (syntax.py); None leaves `multiline: auto` to the rule of
    thumb (a block unless code follows the cursor)."""
    offset = max(0, min(offset, len(text)))
    before, after = text[:offset], text[offset:]
    window = max(1, options.max_prompt_tokens) * _WINDOW_CHARS_PER_TOKEN
    start, first_line = _window_start(before, window, options.prefix_step_lines)
    before_chunks, after_chunks = chunks(before[start:]), chunks(after[: _window_end(after, window)])
    line_prefix = before_chunks[-1].lstrip("\r\n") if before_chunks else ""
    line_suffix = after_chunks[0] if after_chunks and not after_chunks[0].startswith(("\n", "\r")) else ""

    if options.multiline == "always":
        multiline = True
    elif options.multiline == "never":
        multiline = False
    elif block is not None:
        multiline = block
    else:
        multiline = not is_mid_line(line_suffix)

    available = max(0, options.max_prompt_tokens - count(template.overhead(path)))
    suffix, suffix_tokens = _cut_suffix(after_chunks, int(available * options.suffix_share), count)
    rendered_suffix_tokens = suffix_tokens if template.uses_suffix else 0
    prefix, prefix_tokens = _cut_prefix(
        before_chunks, available - rendered_suffix_tokens, options.prefix_step_lines, count, first_line)

    files: list[tuple[str, str]] = []
    files_tokens = 0
    if template.takes_files and options.context_documents > 0 and documents:
        room = available - prefix_tokens - rendered_suffix_tokens
        room -= room % max(1, options.context_quantum)
        files, files_tokens = _fill_documents(template, documents[: options.context_documents], room, options, count)

    # BPE vocabularies attach a space to the word after it (" if", " return"): a prompt ending in
    # a space makes the model start with another one. End the prompt before that last space and
    # let the model write it; the post-processor removes it again (light token healing).
    heal = " " if line_prefix.endswith(" ") and prefix.endswith(" ") else ""
    # The line break first: an engine that takes only a few stop strings keeps the one that matters most.
    stop = (() if multiline else ("\n",)) + template.stop
    return Prompt(
        text=template.render(prefix[: len(prefix) - len(heal)], suffix, path, files),
        prefix=prefix,
        suffix=suffix,
        line_prefix=line_prefix,
        line_suffix=line_suffix,
        multiline=multiline,
        stop=stop,
        max_tokens=options.max_tokens if multiline else min(options.max_tokens, options.max_line_tokens),
        heal=heal,
        tokens=options.max_prompt_tokens - available + prefix_tokens + rendered_suffix_tokens + files_tokens,
        files=tuple(p for p, _ in files),
        previous_lines=_previous_lines(before_chunks),
        language=language,
    )


def _previous_lines(before: list[str], n: int = 3) -> tuple[str, ...]:
    found: list[str] = []
    for piece in reversed(before[:-1]):
        line = piece.lstrip("\r\n")
        if line.strip():
            found.append(line)
            if len(found) == n:
                break
    return tuple(reversed(found))


def _window_start(before: str, chars: int, step: int) -> tuple[int, int]:
    """Where to start splitting `before` into chunks, and that line's number in the document.

    The start is a line on the grid (a multiple of `step`), at least `chars` characters back, so a
    prefix that uses the whole window still starts at the same place from keystroke to keystroke.
    """
    if len(before) <= chars:
        return 0, 0
    approx = len(before) - chars
    line = _breaks(before, approx)  # the line `approx` lies in
    grid_line = line - line % step
    if grid_line == 0:
        return 0, 0
    # Walk back to the break that ends line `grid_line - 1`: the one that starts `line`, and more.
    position = approx
    for _ in range(line - grid_line + 1):
        position = max(before.rfind("\n", 0, position), before.rfind("\r", 0, position))
        if before.startswith("\r\n", position - 1):
            position -= 1  # one break, two characters
    return position + (2 if before.startswith("\r\n", position) else 1), grid_line


def _breaks(text: str, end: int) -> int:
    """Line breaks (`\r\n`, `\n`, lone `\r`) in `text[:end]`."""
    return text.count("\n", 0, end) + text.count("\r", 0, end) - text.count("\r\n", 0, end)


def _window_end(after: str, chars: int) -> int:
    if len(after) <= chars:
        return len(after)
    end = max(after.rfind("\n", 0, chars), after.rfind("\r", 0, chars))
    return end if end > 0 else chars


def _cut_prefix(before: list[str], budget: int, step: int, count: Count, first_line: int = 0) -> tuple[str, int]:
    """The longest line-aligned tail of the chunks within `budget`, its start snapped to the line grid.

    `first_line` is the document's line number of the first chunk (the grid is the document's).
    """
    if not before:
        return "", 0
    cursor_line = len(before) - 1
    total = 0
    first = len(before)  # first line that fits
    sums: dict[int, int] = {}
    for line in range(cursor_line, -1, -1):
        cost = count(before[line])
        if total + cost > budget:
            break
        total += cost
        sums[line] = total
        first = line
    if first == 0:
        return "".join(before).lstrip("\r\n") if first_line else "".join(before), total
    if first > cursor_line:
        # Not even the cursor line fits (minified code): keep its end, as much as the budget allows.
        return _hard_tail(before[cursor_line].lstrip("\r\n"), budget, count)
    snapped = min(-(-(first + first_line) // step) * step - first_line, cursor_line)
    # The first kept line starts the prompt: its chunk's leading break is not part of the prefix.
    return "".join(before[snapped:]).lstrip("\r\n") if snapped else "".join(before), sums[snapped]


def _cut_suffix(after: list[str], budget: int, count: Count) -> tuple[str, int]:
    """The longest line-aligned head of the chunks within `budget`."""
    total = 0
    kept = 0
    for piece in after:
        cost = count(piece)
        if total + cost > budget:
            break
        total += cost
        kept += 1
    if kept == 0 and after:
        return _hard_head(after[0], budget, count)
    return "".join(after[:kept]), total


def _hard_tail(line: str, budget: int, count: Count) -> tuple[str, int]:
    """The end of one over-long line within `budget` (characters; counted again to be sure)."""
    cost = max(1, count(line))
    keep = len(line) * max(0, budget) // cost
    tail = line[len(line) - keep:] if keep else ""
    return tail, count(tail) if tail else 0


def _hard_head(line: str, budget: int, count: Count) -> tuple[str, int]:
    cost = max(1, count(line))
    keep = len(line) * max(0, budget) // cost
    head = line[:keep]
    return head, count(head) if head else 0


def _fill_documents(
    template: Template, documents: Sequence[ContextDocument], room: int, options: PromptOptions, count: Count,
) -> tuple[list[tuple[str, str]], int]:
    """Heads of other documents, most recently used first, within `room` tokens."""
    files: list[tuple[str, str]] = []
    used = 0
    for document in documents:
        header = count(template.render_file(document.path, ""))
        budget = room - used - header
        if budget < options.min_context_tokens:
            break
        head = document.text[: _window_end(document.text, budget * _WINDOW_CHARS_PER_TOKEN)]
        content, tokens = _cut_suffix(chunks(head), budget, count)
        content = content.lstrip("\r\n")
        if tokens < options.min_context_tokens and len(content) < len(document.text):
            continue  # only a sliver of it fits: not worth its header
        if not content.strip():
            continue
        files.append((document.path, content))
        used += header + tokens
    return files, used
