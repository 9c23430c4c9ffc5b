"""Typing plans: which text each simulated editor types where, and when each keystroke happens.

Pure: a seed in, the same plan out, so every profile of a run (and every run with the same seed)
replays the same keystrokes at the same moments.

Where: a line of real code in the file (outside string blocks, with context above it) is taken out
together with what follows it up to the end of the typed stretch's last line, and typed back in. The
text after it stays, as when someone writes new code in the middle of an existing module.

How: a keystroke inserts one character, except Enter: editors insert the line break together with
the next line's indentation (auto-indent), so that is one keystroke too. Gaps inside a burst are
log-normal around 1/cps and stay below `PAUSE_MIN_S`; after a line break (often) and after a word
(rarely) the typist pauses for longer, which is when a completion is worth showing.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

#: A gap at least this long is a pause (the user stops to look); gaps inside a burst stay below it.
PAUSE_MIN_S = 0.6
_BURST_MAX_S = 0.5
_BURST_MIN_S = 0.02
_WORD_ENDS = frozenset(" (),.:=[]")
_TRIPLE_QUOTE = re.compile(r'"""|\'\'\'')

STYLES = ("vscode", "neovim")


@dataclass(frozen=True)
class Typist:
    """How the simulated user types. `cps`: characters per second inside a burst."""

    cps: float = 6.0
    jitter: float = 0.4  # sigma of the log-normal burst gap
    line_pause: float = 0.5  # chance of a pause after a line break
    word_pause: float = 0.06  # chance of a pause after a word
    pause_median_s: float = 2.0
    pause_sigma: float = 0.6
    pause_max_s: float = 6.0
    #: The user accepts a shown suggestion that agrees with what it means to type (acceptance.py).
    accepts: bool = True
    #: Seconds a suggestion must have been on screen before the user can accept it.
    react_s: float = 0.3

    def __post_init__(self) -> None:
        if not 2.0 <= self.cps <= 40.0:
            # Slower than 2 cps, burst gaps would reach the length of pauses and the two blur.
            raise ValueError(f"cps must be between 2 and 40, got {self.cps:g}")


@dataclass(frozen=True)
class Keystroke:
    at: float  # seconds after the editor starts typing
    text: str  # inserted at the cursor
    pause_after: bool  # the user stops after this keystroke (the last one always)
    gap: float  # seconds until the next keystroke; after the last one, how long the user looks on


@dataclass(frozen=True)
class Plan:
    """One simulated editor: the document it opens and the keystrokes it types into it."""

    editor: int
    name: str  # the file's name, as the document is called
    style: str  # "vscode": cancels the outstanding request on each keystroke; "neovim": never cancels
    initial: str  # the document when opened
    cursor: int  # where typing starts (an offset into `initial`)
    keystrokes: tuple[Keystroke, ...]

    @property
    def typed(self) -> str:
        return "".join(k.text for k in self.keystrokes)

    @property
    def final(self) -> str:
        return self.initial[: self.cursor] + self.typed + self.initial[self.cursor:]

    @property
    def pauses(self) -> int:
        return sum(k.pause_after for k in self.keystrokes)


def keystroke_pieces(text: str) -> list[str]:
    """`text` as keystrokes: one per character, a line break together with the indentation after it."""
    pieces: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("\r\n", i):
            end = i + 2
        elif text[i] in "\r\n":
            end = i + 1
        else:
            pieces.append(text[i])
            i += 1
            continue
        while end < n and text[end] in " \t":
            end += 1
        pieces.append(text[i:end])
        i = end
    return pieces


def code_lines(lines: Sequence[str]) -> list[int]:
    """Indices of lines that hold code: not blank, not a comment, not inside a triple-quoted string."""
    found: list[int] = []
    in_string = False
    for index, line in enumerate(lines):
        stripped = line.strip()
        quotes = len(_TRIPLE_QUOTE.findall(line))
        if not in_string and stripped and not stripped.startswith(("#", '"', "'")):
            found.append(index)
        if quotes % 2:
            in_string = not in_string
    return found


def indentation(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def line_offsets(text: str) -> list[int]:
    """Offset of each `\\n`-separated line's start."""
    offsets = [0]
    position = text.find("\n")
    while position != -1:
        offsets.append(position + 1)
        position = text.find("\n", position + 1)
    return offsets


def choose_region(text: str, keystrokes: int, rng: random.Random, min_context_lines: int = 20) -> tuple[str, int, str]:
    """A stretch of `keystrokes` keystrokes of `text` to type: (document before typing, cursor, typed text).

    Typing starts after the indentation of a line of code with at least `min_context_lines` lines
    above it (fewer when the file is short). The rest of the last typed line is left out, so the
    cursor never has stale code after it; everything after that line stays.
    """
    lines = text.split("\n")
    starts = line_offsets(text)
    candidates = code_lines(lines)
    if not candidates:
        candidates = [0]
    context = [i for i in candidates if i >= min_context_lines] or candidates
    # Room to type all keystrokes (a keystroke is at least one character).
    roomy = [i for i in context if len(text) - starts[i] >= keystrokes] or context[:1]
    line = rng.choice(roomy)
    cursor = starts[line] + len(indentation(lines[line]))
    typed = "".join(keystroke_pieces(text[cursor:])[:keystrokes])
    cut = cursor + len(typed)
    line_end = text.find("\n", cut)
    after = len(text) if line_end == -1 else line_end + 1
    return text[:cursor] + "\n" + text[after:], cursor, typed


def keystroke_times(pieces: Sequence[str], typist: Typist, rng: random.Random, start: float = 0.0) -> list[Keystroke]:
    """When each piece is typed, and after which ones the user pauses (always after the last)."""
    out: list[Keystroke] = []
    t = start
    burst_median = math.log(1.0 / typist.cps)
    pause_median = math.log(typist.pause_median_s)
    for n, piece in enumerate(pieces):
        roll = rng.random()
        if piece[:1] in ("\n", "\r"):
            pause = roll < typist.line_pause
        elif piece in _WORD_ENDS:
            pause = roll < typist.word_pause
        else:
            pause = False
        pause = pause or n == len(pieces) - 1
        if pause:
            gap = min(typist.pause_max_s, max(PAUSE_MIN_S, rng.lognormvariate(pause_median, typist.pause_sigma)))
        else:
            gap = min(_BURST_MAX_S, max(_BURST_MIN_S, rng.lognormvariate(burst_median, typist.jitter)))
        out.append(Keystroke(round(t, 4), piece, pause, round(gap, 4)))
        t += gap
    return out


def editor_style(style: str, editor: int) -> str:
    """`both` alternates: even editors behave like VS Code, odd ones like Neovim."""
    if style == "both":
        return STYLES[editor % 2]
    if style not in STYLES:
        raise ValueError(f"unknown client style {style!r}: vscode, neovim or both")
    return style


def plan_editors(
    files: Sequence[tuple[str, str]],
    editors: int,
    keystrokes: int,
    typist: Typist,
    style: str,
    seed: int,
    stagger_s: float = 1.0,
) -> list[Plan]:
    """One plan per editor: editor i types in file i mod len(files), each at its own place and pace."""
    if not files:
        raise ValueError("no files to type")
    plans = []
    for editor in range(editors):
        name, text = files[editor % len(files)]
        rng = random.Random(f"vllm-ls-bench/{seed}/{editor}")
        initial, cursor, typed = choose_region(text, keystrokes, rng)
        start = rng.uniform(0.0, stagger_s)  # editors do not type in lockstep
        keys = keystroke_times(keystroke_pieces(typed), typist, rng, start)
        plans.append(Plan(editor, name, editor_style(style, editor), initial, cursor, tuple(keys)))
    return plans
