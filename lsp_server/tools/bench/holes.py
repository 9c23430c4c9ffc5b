"""Holes punched in real source files for the infill benchmark. Pure and seeded.

A *line* hole removes one line of code after its indentation (the line break stays): the cursor sits
on an indented, otherwise empty line, as after pressing Enter. A *block* hole removes the first lines
of an indented body (up to `MAX_BLOCK_LINES`, stopping at a blank line or a dedent), again from after
the first line's indentation to the end of its last line. In both cases the text after the cursor on
its line is empty, so the server completes a block and must itself know where to stop (the dedent,
the suffix's next line): that is part of what is measured.

A *call* hole removes the arguments of the call that ends a line (`print("done")`, `def f(a, b):`)
and keeps its closer after the cursor, as an editor that auto-closes brackets leaves it: the cursor
sits in `print(|)`. The suggestion must fill the arguments without a second closer.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from .schedule import code_lines, indentation, line_offsets

MAX_BLOCK_LINES = 6
_MIN_CONTEXT_LINES = 8
_LINE_CHARS = (6, 120)


@dataclass(frozen=True)
class Hole:
    name: str  # the file's name
    line: int  # 0-based line where the hole starts
    kind: str  # "line" | "block"
    text: str  # the document with the hole
    offset: int  # the cursor, at the hole
    expected: str  # the removed text

    @property
    def label(self) -> str:
        return f"{self.name}:{self.line + 1}"


#: What may follow a call's closer at the end of a line in a call hole.
_CALL_TAIL = ("):", ")", "),", ");")


def call_span(line: str) -> tuple[int, int] | None:
    """Where the arguments of the call that ends `line` start and end, or None."""
    code = line.rstrip()
    tail = next((t for t in _CALL_TAIL if code.endswith(t)), None)
    if tail is None:
        return None
    close = len(code) - len(tail)
    if "#" in code:
        return None  # a comment may hold anything
    depth = 0
    quote: str | None = None
    for i in range(close, -1, -1):
        ch = code[i]
        if quote is not None:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch  # brackets inside strings do not count
        elif ch == ")":
            depth += 1
        elif ch == "(":
            depth -= 1
            if depth == 0:
                args = code[i + 1: close]
                return (i + 1, close) if len(args.strip()) >= 3 and args.strip() == args else None
    return None


def line_candidates(lines: Sequence[str]) -> list[int]:
    return [
        i for i in code_lines(lines)
        if i >= _MIN_CONTEXT_LINES and _LINE_CHARS[0] <= len(lines[i].strip()) <= _LINE_CHARS[1]
    ]


def block_span(lines: Sequence[str], first: int) -> int | None:
    """The last line of the block hole starting at `first`, or None when `first` starts no block.

    A block starts on the first line of an indented body (the code line before it ends with `:`)
    and runs while lines are non-blank and indented at least as deep, up to `MAX_BLOCK_LINES`.
    """
    if first < _MIN_CONTEXT_LINES or not lines[first].strip() or lines[first].lstrip().startswith(("#", '"', "'")):
        return None
    previous = first - 1
    while previous >= 0 and not lines[previous].strip():
        previous -= 1
    if previous < 0:
        return None
    opener = lines[previous].split("#", 1)[0].rstrip()
    depth = len(indentation(lines[first]))
    if not opener.endswith(":") or depth <= len(indentation(lines[previous])):
        return None
    last = first
    while (last + 1 < len(lines) and last + 1 - first < MAX_BLOCK_LINES and lines[last + 1].strip()
           and len(indentation(lines[last + 1])) >= depth):
        last += 1
    return last if last > first else None


def punch(name: str, text: str, first: int, last: int, kind: str) -> Hole:
    """The hole from after line `first`'s indentation to the end of line `last`."""
    lines = text.split("\n")
    starts = line_offsets(text)
    offset = starts[first] + len(indentation(lines[first]))
    end = starts[last] + len(lines[last].rstrip("\r"))
    return Hole(name, first, kind, text[:offset] + text[end:], offset, text[offset:end])


def punch_call(name: str, text: str, line: int) -> Hole:
    """The call hole in line `line`: its arguments removed, its closer kept."""
    lines = text.split("\n")
    span = call_span(lines[line])
    assert span is not None
    start = line_offsets(text)[line]
    offset, end = start + span[0], start + span[1]
    return Hole(name, line, "call", text[:offset] + text[end:], offset, text[offset:end])


def punch_holes(files: Sequence[tuple[str, str]], count: int, seed: int) -> list[Hole]:
    """`count` holes over `files`: a quarter (rounded down) call holes, half of the rest (rounded
    down) blocks, the others single lines."""
    rng = random.Random(f"vllm-ls-bench-holes/{seed}")
    line_pool: list[tuple[int, int, int]] = []
    block_pool: list[tuple[int, int, int]] = []
    call_pool: list[tuple[int, int]] = []
    for index, (_, text) in enumerate(files):
        lines = text.split("\n")
        candidates = line_candidates(lines)
        line_pool += [(index, i, i) for i in candidates]
        call_pool += [(index, i) for i in candidates if call_span(lines[i]) is not None]
        for i in range(len(lines)):
            last = block_span(lines, i)
            if last is not None:
                block_pool.append((index, i, last))
    wanted_calls = min(count // 4, len(call_pool))
    wanted_blocks = min((count - wanted_calls) // 2, len(block_pool))
    wanted_lines = min(count - wanted_calls - wanted_blocks, len(line_pool))
    holes = [punch(files[f][0], files[f][1], first, last, "line")
             for f, first, last in rng.sample(line_pool, wanted_lines)]
    holes += [punch(files[f][0], files[f][1], first, last, "block")
              for f, first, last in rng.sample(block_pool, wanted_blocks)]
    holes += [punch_call(files[f][0], files[f][1], line) for f, line in rng.sample(call_pool, wanted_calls)]
    return holes
