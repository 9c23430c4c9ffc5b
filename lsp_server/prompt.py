"""Pure prompt building: document text + cursor + budget → the prompt and the rules to stop by.

Cache-friendly layout: vLLM's prefix cache reuses KV blocks for an identical token prefix, so the
start of the prompt must not move from one keystroke to the next. When the prefix has to be cut,
the cut is line-aligned and snapped to a coarse grid of lines (`prefix_step_lines`): it moves only
when the cursor has travelled a whole step, not on every keystroke.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.templates import Template

from .text import leading_whitespace, line_starts

Multiline = Literal["auto", "always", "never"]


@dataclass(frozen=True)
class PromptOptions:
    max_prefix_chars: int = 6000
    max_suffix_chars: int = 1500
    multiline: Multiline = "auto"
    max_tokens: int = 96
    max_line_tokens: int = 48
    #: The prefix cut snaps to multiples of this many lines (see module docstring).
    prefix_step_lines: int = 32


@dataclass(frozen=True)
class Prompt:
    text: str
    prefix: str  # document text before the cursor that the prompt holds
    suffix: str  # document text after the cursor that the prompt holds (or would, for prefix-only)
    line_prefix: str  # the cursor's line, before the cursor
    line_suffix: str  # the cursor's line, after the cursor
    multiline: bool
    stop: tuple[str, ...]
    max_tokens: int
    #: Whitespace cut from the end of the prompt; the completion's start must re-supply it.
    heal: str = ""


def is_mid_line(line_suffix: str) -> bool:
    """The cursor has code after it on its line: complete only to the end of the line."""
    return bool(line_suffix.strip())


def build_prompt(text: str, offset: int, template: Template, options: PromptOptions) -> Prompt:
    offset = max(0, min(offset, len(text)))
    before, after = text[:offset], text[offset:]
    line_start = max(before.rfind("\n"), before.rfind("\r")) + 1
    line_prefix = before[line_start:]
    line_end = len(after)
    for brk in ("\n", "\r"):
        found = after.find(brk)
        if found != -1:
            line_end = min(line_end, found)
    line_suffix = after[:line_end]

    if options.multiline == "always":
        multiline = True
    elif options.multiline == "never":
        multiline = False
    else:
        multiline = not is_mid_line(line_suffix)

    prefix = _cut_prefix(before, options.max_prefix_chars, options.prefix_step_lines)
    suffix = _cut_suffix(after, options.max_suffix_chars)
    # BPE vocabularies attach a space to the word after it (" if", " return"): a prompt ending in
    # a space makes the model start with another one. End the prompt before that last space and
    # let the model write it; the post-processor removes it again (light token healing).
    heal = " " if line_prefix.endswith(" ") else ""
    stop = template.stop + (() if multiline else ("\n",))
    return Prompt(
        text=template.render(prefix[: len(prefix) - len(heal)], suffix),
        prefix=prefix,
        suffix=suffix,
        line_prefix=line_prefix,
        line_suffix=line_suffix,
        multiline=multiline,
        stop=stop,
        max_tokens=options.max_tokens if multiline else min(options.max_tokens, options.max_line_tokens),
        heal=heal,
    )


def _cut_prefix(before: str, budget: int, step: int) -> str:
    """The longest line-aligned tail of `before` within `budget`, its start snapped to the line grid."""
    if len(before) <= budget:
        return before
    starts = line_starts(before)
    earliest = len(before) - budget
    # First line starting at or after `earliest`, then rounded up to the grid of `step` lines.
    first = next((i for i, s in enumerate(starts) if s >= earliest), len(starts) - 1)
    snapped = -(-first // step) * step
    if snapped >= len(starts) - 1:
        # Even the snapped cut would drop the cursor line: keep the whole cursor line instead.
        snapped = len(starts) - 1
    # A single line longer than the budget (minified code) is cut hard.
    return before[starts[snapped]:][-budget:]


def _cut_suffix(after: str, budget: int) -> str:
    """The longest line-aligned head of `after` within `budget` (the cursor line is always kept)."""
    if len(after) <= budget:
        return after
    cut = max(after.rfind("\n", 0, budget), after.rfind("\r", 0, budget))
    if cut == -1:
        return after[:budget]
    return after[: cut + 1]


def cursor_indent(line_prefix: str) -> str:
    return leading_whitespace(line_prefix)
