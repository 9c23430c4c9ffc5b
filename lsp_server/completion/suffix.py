"""Suffix-aware endings: a suggestion never re-types what already follows the cursor.

Models, and above all prefix-only ones that never see the text after the cursor, go on writing the
lines that are already below it, or write them again with other values: at the end of
`break_on_hyphens=True,` in a parameter list whose next lines are `tabsize=8,` and `max_lines=None,`,
the suggestion `max_lines=None,` / `placeholder=None,` would break the code once accepted.
`NearSuffix` holds the first non-blank lines after the cursor's line and tells whether a generated
line *re-types* one of them:

- it reproduces it: the same code after the indentation, at the same indentation (for the very
  next line, at any indentation when it is more than a closer or a keyword: a `}` one level
  deeper closes the suggestion's own block, not the one below), and for lines further down only
  when it is more than a closer or a keyword (`}`, `else:`, `pass`);
- it re-declares it: it assigns, defines or passes as a keyword the same name at the same
  indentation (`max_lines=4,` against `max_lines=None,`, `def wrap(` against `def wrap(`).

The post-processor ends the suggestion before the first such line. How many lines count as "near"
(`suffixLines`) was decided on the bench's infill holes (docs/prompts.md). Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..text import indent_width

#: Shorter lines (`}`, `pass`, `i += 1` is not) are ordinary code that may well appear twice.
_MIN_CHARS = 6
_KEYWORD_LINE = re.compile(r"^(?:else|try|finally|except|do|end|done|fi|esac|break|continue|return|pass)\b\W*$")
_DEFINITION = re.compile(
    r"^(?:(?:export|default|pub(?:\([^)]*\))?|async|static|public|private|protected|final|override|unsafe)\s+)*"
    r"(?:def|class|function|func|fn|let|const|var|val|type|struct|enum|interface|trait|impl|mod)\s+"
    r"(?:mut\s+)?(?:\([^)]*\)\s*)?([A-Za-z_$][\w$]*)"
)
#: `name = …`, `name: T = …`, `self.name = …`, keyword arguments `name=…`, Go's `name := …`; not `==`.
_ASSIGNMENT = re.compile(r"^((?:self\.|this\.)?[A-Za-z_$][\w$]*)\s*(?::\s*[^=]+?)?\s*:?=(?!=)")
_NOT_KEYS = frozenset({"else", "try", "finally", "except", "default", "case", "do", "lambda", "match"})
#: Keys of object and dict literals: `name: value`, `"name": value`.
_KEY = re.compile(r"""^(["']?)([A-Za-z_$][\w$-]*)\1\s*:\s*\S""")


def declared_name(line: str) -> str | None:
    """The name `line` assigns, defines, or passes as a keyword argument or a literal key."""
    code = line.strip()
    match = _DEFINITION.match(code)
    if match:
        return match.group(1)
    match = _ASSIGNMENT.match(code)
    if match:
        return match.group(1)
    match = _KEY.match(code)
    if match and match.group(2) not in _NOT_KEYS:
        return match.group(2)
    return None


@dataclass(frozen=True)
class _Line:
    code: str  # after the indentation, trailing whitespace dropped
    indent: int
    name: str | None


class NearSuffix:
    """The first `count` non-blank lines after the cursor's line."""

    def __init__(self, after_cursor_line: str, count: int, tab_size: int = 4):
        self.tab_size = tab_size
        self.lines: list[_Line] = []
        if count <= 0:
            return
        for line in after_cursor_line.splitlines():
            if not line.strip():
                continue
            self.lines.append(_Line(line.strip(), indent_width(line, tab_size), declared_name(line)))
            if len(self.lines) >= count:
                break

    def retypes(self, line: str) -> bool:
        """`line` (a whole generated line, with its indentation) re-types a near suffix line."""
        code = line.strip()
        if not code:
            return False
        indent = indent_width(line, self.tab_size)
        name: str | None = None
        named = False
        for number, near in enumerate(self.lines):
            if code == near.code:
                same_indent, substantial = indent == near.indent, _substantial(code)
                if (same_indent or substantial) if number == 0 else (same_indent and substantial):
                    return True
            if near.name is not None and indent == near.indent:
                if not named:
                    name, named = declared_name(code), True
                if name == near.name:
                    return True
        return False


def _substantial(code: str) -> bool:
    return len(code) >= _MIN_CHARS and not _KEYWORD_LINE.match(code)
