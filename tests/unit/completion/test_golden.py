"""Golden cases of the whole post-processing path: document + cursor → prompt (and the syntax's
single- or multi-line decision) → the engine's stream → the text shown and what it replaces.

Each file under golden/ holds `[[case]]` tables:
    description  what a user would notice
    language     the document's languageId (decides the grammar and the closer rules)
    text         the document, `‸` marking the cursor
    stream       the engine's output: a list of deltas, or one string split like a tokenizer would
    settings     optional overrides (wire names, dotted: `"generation.syntax" = false`)
    [case.expected]
    shown        the suggestion's text ("" = nothing offered)
    covers       the text after the cursor that accepting replaces (default "")
    accepted     optional: the document after accepting, without the marker
    mode         optional: "block" or "line", the decision the prompt was built with

Every case also checks, on the document after accepting, the two things users complain about most:
no bracket closed twice (where a grammar is installed, accepting adds no syntax error) and no line of
the near suffix re-typed.
"""

from __future__ import annotations

import re
import sysconfig
import tomllib
from pathlib import Path

import pytest

from engine.templates import builtin
from lsp_server.completion import syntax
from lsp_server.completion.completer import block_expected, filter_for
from lsp_server.completion.prompt import PromptOptions, build_prompt
from lsp_server.completion.suffix import NearSuffix
from lsp_server.settings import parse_settings

GOLDEN = Path(__file__).with_name("golden")
CURSOR = "‸"
_EXTENSION = {"python": ".py", "javascript": ".js", "typescript": ".ts", "typescriptreact": ".tsx", "go": ".go",
              "rust": ".rs", "lua": ".lua"}


def _cases() -> list[pytest.param]:
    params = []
    for file in sorted(GOLDEN.glob("**/*.toml")):
        for number, case in enumerate(tomllib.loads(file.read_text(encoding="utf-8"))["case"], 1):
            name = f"{file.relative_to(GOLDEN).with_suffix('')}#{number}"
            params.append(pytest.param(case, id=name))
    return params


def deltas(stream: str | list[str]) -> list[str]:
    if isinstance(stream, list):
        return stream
    return re.findall(r"\n[ \t]*|[ \t]+|\w+|[^\w\s]", stream)


def complete(text: str, offset: int, language: str, stream: list[str], overrides: dict | None = None):
    """What the server shows for `stream` at `offset`: (prompt, shown text, covered text)."""
    settings, problems = parse_settings(overrides or {})
    assert not problems
    block = block_expected(settings, text, offset, language)
    generation = settings.generation
    options = PromptOptions(multiline=generation.multiline, max_tokens=generation.max_tokens,
                            max_line_tokens=generation.max_line_tokens, max_prompt_tokens=4096)
    prompt = build_prompt(text, offset, builtin("prefix-only"), options, lambda chunk: max(1, len(chunk) // 4),
                          path=f"golden{_EXTENSION.get(language, '.txt')}", block=block, language=language)
    post = filter_for(prompt, settings)
    for piece in stream:
        if post.feed(piece):
            break
    else:
        post.finish()
    shown = post.suggestion()
    return prompt, shown.text, text[offset: offset + shown.replace], settings


def syntax_errors(text: str, language: str) -> int | None:
    parser = syntax._parser(language)
    if parser is None:
        return None
    tree = parser.parse(text.encode("utf-8"))
    count, stack = 0, [tree.root_node]
    while stack:
        node = stack.pop()
        count += node.is_error or node.is_missing
        stack.extend(node.children)
    return count


def check_nothing_doubled(text: str, offset: int, shown: str, covers: str, language: str, suffix_lines: int):
    accepted = text[:offset] + shown + text[offset + len(covers):]
    before, after = syntax_errors(text, language), syntax_errors(accepted, language)
    if before is not None:
        assert after <= before, f"accepting adds a syntax error (a closer twice?):\n{accepted}"
    line_end = text.find("\n", offset)
    near = NearSuffix(text[line_end + 1:] if line_end != -1 else "", suffix_lines)
    line_start = text.rfind("\n", 0, offset) + 1
    lines = (text[line_start:offset] + shown).split("\n")
    blank_prefix = not text[line_start:offset].strip()
    for number, line in enumerate(lines):
        if number or blank_prefix:
            assert not near.retypes(line), f"re-types a line that follows the cursor: {line!r}"
    return accepted


@pytest.mark.parametrize("case", _cases())
def test_golden(case):
    document = case["text"]
    offset = document.index(CURSOR)
    text = document.replace(CURSOR, "", 1)
    language = case["language"]
    prompt, shown, covers, settings = complete(text, offset, language, deltas(case["stream"]), case.get("settings"))
    expected = case["expected"]
    assert (shown, covers) == (expected["shown"], expected.get("covers", ""))
    if "mode" in expected:
        assert ("block" if prompt.multiline else "line") == expected["mode"]
    accepted = check_nothing_doubled(text, offset, shown, covers, language, settings.generation.suffix_lines)
    if "accepted" in expected:
        assert accepted == expected["accepted"]


def test_there_are_golden_cases_for_each_language():
    languages = {case.values[0]["language"] for case in _cases()}
    assert {"python", "javascript", "typescript", "go", "rust"} <= languages


# -- the case from the issue, on the real file -------------------------------------------------------

TEXTWRAP = Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py"
#: What SmolLM2 wrote there before (the parameters below the cursor, with other values).
RETYPED = "\n                 max_lines=None,\n                 placeholder=None,\n                 wordsep_simple_re=None,\n"


@pytest.mark.skipif(not TEXTWRAP.is_file(), reason="no textwrap.py in this Python's standard library")
@pytest.mark.parametrize("overrides", [{}, {"generation.syntax": False}], ids=["syntax", "indentation-rules"])
def test_textwrap_parameter_list_offers_nothing_that_retypes_the_parameters_below(overrides):
    text = TEXTWRAP.read_text(encoding="utf-8")
    offset = text.index("break_on_hyphens=True,") + len("break_on_hyphens=True,")
    assert "max_lines=None," in text[offset: offset + 200], "the parameters below the cursor are as in the issue"
    _, shown, covers, _ = complete(text, offset, "python", deltas(RETYPED), overrides)
    assert (shown, covers) == ("", "")
