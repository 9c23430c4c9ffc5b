"""Single- or multi-line, decided by the syntax at the cursor (tree-sitter).

A block is expected after a `:` that opens a body, on an empty line (an empty body, or between
statements), after an unclosed bracket at the end of the line, after an arrow, and inside an
auto-closed `{|}`. Only the rest of the line is expected when there is code right of the cursor,
when the line is already complete (`break_on_hyphens=True,` with the next parameter below), when it
is incomplete but not a block opener (`x = `, `lambda y:`), in a comment or a string, and after an
auto-closed `(|)` or `[|]` (arguments go on one line; the closer is covered, see closers.py).

`shape_at()` answers None where no grammar is installed for the document's language (a grammar
wheel missing, or built for another tree-sitter): then the indentation rules of the post-processor
decide, as before. Only a window of lines around the cursor is parsed: from a line at column 0 before
it (or the document's start, when no such line is near) to a few lines after it. In a 2 000-line
file that is 0.3 ms per request at the median for a cursor in a top-level function and at most a
whole-file parse (~11 ms) inside a class that long, so it runs on the event loop. Pure apart from
caching parsers.
"""

from __future__ import annotations

import functools
import importlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from .closers import auto_closed

log = logging.getLogger(__name__)

#: Lines before the cursor's line that the window may reach back for a start at column 0.
WINDOW_BEFORE = 300
#: Without a line at column 0 that close (a long class), the window starts at the document's start
#: when it is at most this many lines back: a window that starts indented parses as errors, and error
#: recovery costs more than the lines (57 ms for 1 000 indented lines, 11 ms for a whole 2 000-line file).
WHOLE_PREFIX_LINES = 5000
#: Lines after the cursor's line in the window (the cursor's own construct rarely needs more).
WINDOW_AFTER = 20

#: languageId (LSP) → (grammar module, function returning the language).
_GRAMMARS = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "javascriptreact": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "typescriptreact": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
}
_OPENERS = frozenset({"(", "[", "{"})
_BLOCK_KEYWORDS = re.compile(
    r"^\s*(?:async\s+)?(?:def|class|if|elif|else|for|while|with|try|except|finally|match|case)\b")
_NOT_CODE = ("comment", "string", "string_content", "template_string", "raw_string_literal",
             "interpreted_string_literal", "string_literal", "string_fragment", "line_comment", "block_comment")


#: The reason of a line that is already complete at the cursor (speculation reads it).
COMPLETE_LINE = "complete line"


@dataclass(frozen=True)
class Shape:
    block: bool  # True: a block may follow; False: only the rest of the cursor's line
    reason: str  # for logs and tests


def available(language: str) -> bool:
    """A grammar is installed for `language`."""
    return _parser(language) is not None


@functools.cache
def _parser(language: str) -> Any:
    spec = _GRAMMARS.get(language)
    if spec is None:
        return None
    try:
        import tree_sitter

        module = importlib.import_module(spec[0])
        return tree_sitter.Parser(tree_sitter.Language(getattr(module, spec[1])()))
    except (ImportError, AttributeError, ValueError) as exc:  # not installed, or built for another ABI
        log.info("no tree-sitter grammar for %s (%s): the indentation rules decide", language, exc)
        return None


def shape_at(text: str, offset: int, language: str) -> Shape | None:
    """Whether a block or only the rest of the line is expected at `offset`; None: no grammar."""
    offset = max(0, min(offset, len(text)))
    line_start = max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1
    line_end = min((i for i in (text.find("\n", offset), text.find("\r", offset)) if i != -1), default=len(text))
    line_prefix, line_suffix = text[line_start:offset], text[offset:line_end]
    parser = _parser(language)
    if parser is None:
        return None
    closed = auto_closed(line_prefix, line_suffix, language)
    if line_suffix.strip() and not closed:
        return Shape(False, "code after the cursor")
    if not line_prefix.strip():
        return Shape(True, "empty line")
    start, end = _window(text, line_start, line_end)
    window = text[start:end]
    last = line_start + len(line_prefix.rstrip())  # just after the last code character
    tree = parser.parse(window.encode("utf-8"))
    byte = len(text[start:last].encode("utf-8"))
    node = tree.root_node.descendant_for_byte_range(byte - 1, byte)
    if node is None:
        return None
    ancestors = _ancestor_types(node)
    if any(kind in _NOT_CODE for kind in ancestors):
        return Shape(False, "comment or string")
    kind = node.type
    if kind in _OPENERS and node.end_byte == byte:
        if closed and kind != "{":
            return Shape(False, "auto-closed bracket")
        return Shape(True, "opens a body" if kind == "{" else "unclosed bracket")
    if kind == "=>":
        return Shape(True, "arrow")
    if kind == ":" and language == "python":
        parent = node.parent.type if node.parent is not None else ""
        if parent == "ERROR":
            opens = bool(_BLOCK_KEYWORDS.match(line_prefix))
        else:
            opens = parent.endswith(("_definition", "_statement", "_clause")) or parent in ("block",)
        if opens:
            return Shape(True, "opens a body")
    if closed:
        return Shape(False, "auto-closed")
    return Shape(False, "incomplete line" if _error_on_line(tree.root_node, byte) else COMPLETE_LINE)


def _ancestor_types(node: Any) -> list[str]:
    kinds = []
    while node is not None:
        kinds.append(node.type)
        node = node.parent
    return kinds


def _error_on_line(root: Any, byte: int) -> bool:
    node = root.descendant_for_byte_range(max(0, byte - 1), byte)
    while node is not None:
        if node.is_error or node.is_missing or node.has_error:
            return True
        if node.type in ("expression_statement", "lexical_declaration", "assignment", "return_statement"):
            break
        node = node.parent
    return False


def _window(text: str, line_start: int, line_end: int) -> tuple[int, int]:
    """Offsets of the text to parse: from a line at column 0 before the cursor (at most
    `WINDOW_BEFORE` lines back) to `WINDOW_AFTER` lines after the cursor's line."""
    start = line_start
    for _ in range(WINDOW_BEFORE):
        if start == 0:
            break
        previous = text.rfind("\n", 0, start - 1) + 1
        line = text[previous:start]
        start = previous
        if line[:1].strip() and line[:1] not in ")]}" and not line.startswith(("#", "//", "@")):
            break
    else:
        if text.count("\n", 0, start) <= WHOLE_PREFIX_LINES:
            start = 0
    end = line_end
    for _ in range(WINDOW_AFTER):
        following = text.find("\n", end + 1)
        if following == -1:
            end = len(text)
            break
        end = following
    return start, end
