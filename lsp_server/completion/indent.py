"""The indentation an empty line inside a body needs, for a cursor at its column 0. Pure.

Why: with the cursor at the start of an empty line (an editor without auto-indent, or a blank line
the user stops on) the model does not write the indentation itself: its first token is a line
break, and most such requests came back empty. With the indentation in front of the cursor the same
model writes the line (9 requests in 10 were served after auto-indentation). So the server supplies
the indentation the syntax expects, prompts the model after it, and puts it in front of the
suggestion, so the editor inserts it together with the code.

The pipeline then completes the text as if the user had typed the indentation (`indented`): the
prompt ends with it, the post-processor judges lines against it, the typed-ahead cache keeps the
suggestion under it (so accepting it, or typing the spaces by hand, finds the next lines), and a
keystroke other than the indentation contradicts the engine stream as any other would.

The indentation expected is the enclosing block body's:
- after a line that opens a block (ends in `:`, `{`, `(` or `[`, comments aside) one level deeper
  than that line;
- otherwise the previous non-blank line's, when the cursor is inside its body: right below it, or
  below blank lines that the next code line's indentation shows to be inside the body.
Only at column 0 of an otherwise empty line: a cursor after some whitespace is where the user put it
(often a deliberate dedent).
"""

from __future__ import annotations

import re

from ..text import indent_width, leading_whitespace

_OPENERS = (":", "{", "(", "[")
#: A trailing comment (`# ...`, `// ...`) after code, so `if x:  # why` still opens a block.
_TRAILING_COMMENT = re.compile(r"\s+(#|//).*$")
#: How far back to look for the previous non-blank line and the file's indentation step.
_LOOK_BACK_LINES = 200
_DEFAULT_STEP = "    "


def indented(text: str, offset: int) -> tuple[str, int, str]:
    """`text` with the supplied indentation at `offset`: (that text, the offset after the
    indentation, the indentation; empty and `text` unchanged when there is none to supply)."""
    lead = supplied_indentation(text[:offset], text[offset:])
    return (text[:offset] + lead + text[offset:], offset + len(lead), lead) if lead else (text, offset, "")


def supplied_indentation(before: str, after: str) -> str:
    """The indentation to put before the cursor (`before` | `after` the document's text around it);
    empty when there is none to supply (see the module docstring)."""
    line_start = max(before.rfind("\n"), before.rfind("\r")) + 1
    if line_start != len(before):
        return ""  # not at column 0
    rest = re.split(r"\r\n|\r|\n", after, maxsplit=1)[0]
    if rest.strip():
        return ""  # the line has code after the cursor
    lines = re.split(r"\r\n|\r|\n", before[:line_start])[:-1][-_LOOK_BACK_LINES:]
    previous, blank_between = None, False
    for line in reversed(lines):
        if line.strip():
            previous = line
            break
        blank_between = True
    if previous is None:
        return ""
    indent = leading_whitespace(previous)
    code = _TRAILING_COMMENT.sub("", previous).rstrip()
    if code.endswith(_OPENERS):
        return indent + indentation_step(lines, indent)
    if not indent:
        return ""
    if blank_between and indent_width(_next_code_line(after)) < indent_width(indent):
        return ""  # blank lines and then a dedent: the cursor is after the body, not in it
    return indent


def indentation_step(lines: list[str], indent: str) -> str:
    """One level of indentation as the file writes it: a tab in tab-indented code, else the smallest
    step between a line and a deeper one below it (4 spaces when the file shows none)."""
    if indent.startswith("\t"):
        return "\t"
    steps = []
    previous: str | None = None
    for line in lines:
        if not line.strip():
            continue
        current = leading_whitespace(line)
        if previous is not None and len(current) > len(previous) and current.startswith(previous):
            step = current[len(previous):]
            if step.strip(" ") == "":
                steps.append(len(step))
        previous = current
    return " " * min(steps) if steps else _DEFAULT_STEP


def _next_code_line(after: str) -> str:
    for line in re.split(r"\r\n|\r|\n", after)[1:_LOOK_BACK_LINES]:
        if line.strip():
            return line
    return ""
