"""Line numbers for the tables and keys of a TOML file.

`tomllib` gives values but no positions, and a spec error must name its line. This scanner reads
the file line by line the way the spec format is written (headers and `key = value` lines, inline
tables on one line, multi-line strings for source code) and remembers where each key path starts.
Anything it does not understand falls back to the nearest enclosing table, so an error always
points at a real line, at worst the `[[case]]` header of the case it is about.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Path = tuple[str | int, ...]  # ("case", 0, "expect", "contains"): array tables carry their index

_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED_KEY = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_ARRAY_HEADER = re.compile(rf"^\s*\[\[\s*({_DOTTED_KEY})\s*\]\]\s*(?:#.*)?$")
_TABLE_HEADER = re.compile(rf"^\s*\[\s*({_DOTTED_KEY})\s*\]\s*(?:#.*)?$")
_KEY_LINE = re.compile(rf"^\s*({_DOTTED_KEY})\s*=(.*)$")
_KEY_PARTS = re.compile(_KEY_PART)


def _split_key(dotted: str) -> list[str]:
    parts = []
    for match in _KEY_PARTS.finditer(dotted):
        part = match.group(0)
        if part[0] in "\"'":
            part = part[1:-1]
        parts.append(part)
    return parts


class TomlLines:
    """Where each table and key of a TOML text starts (1-based line numbers)."""

    def __init__(self, text: str):
        self._lines: dict[Path, int] = {}
        self._arrays: dict[tuple[str, ...], int] = {}  # array table name path → index of its last element
        table: Path = ()
        open_string: str | None = None  # the delimiter of a multi-line string we are inside
        for number, line in enumerate(text.splitlines(), start=1):
            if open_string is not None:
                if line.count(open_string) % 2 == 1:
                    open_string = None
                continue
            if match := _ARRAY_HEADER.match(line):
                names = _split_key(match.group(1))
                index = self._arrays.get(tuple(names), -1) + 1
                self._arrays[tuple(names)] = index
                # A new element forgets the sub-tables of the previous one.
                for key in [k for k in self._arrays if len(k) > len(names) and k[: len(names)] == tuple(names)]:
                    del self._arrays[key]
                table = (*self._resolve(names[:-1]), names[-1], index)
                self._lines[table] = number
                self._lines.setdefault(table[:-1], number)
                continue
            if match := _TABLE_HEADER.match(line):
                table = self._resolve(_split_key(match.group(1)))
                self._lines[table] = number
                continue
            if match := _KEY_LINE.match(line):
                self._lines.setdefault((*table, *_split_key(match.group(1))), number)
                value = match.group(2)
                for delimiter in ('"""', "'''"):
                    if value.lstrip().startswith(delimiter) and value.count(delimiter) % 2 == 1:
                        open_string = delimiter
                        break

    def _resolve(self, names: Sequence[str]) -> Path:
        """A dotted table name with the current index of every array table along it."""
        path: list[str | int] = []
        for depth, name in enumerate(names):
            path.append(name)
            index = self._arrays.get(tuple(names[: depth + 1]))
            if index is not None:
                path.append(index)
        return tuple(path)

    def line(self, *path: str | int) -> int:
        """The line of `path`, or of its nearest enclosing table or key that is known; 1 if none."""
        for end in range(len(path), 0, -1):
            found = self._lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return 1
