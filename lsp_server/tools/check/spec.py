"""Pure: read `vllm-ls check` spec files (TOML) into cases, or say exactly what is wrong and where.

Every problem is reported as `FILE:LINE: message`, all of them at once, before any server starts:
a CI run should fail in a second on a typo, not after loading a model.

    [settings]                 # for every case of this file (validated like an editor's settings)
    scheduling.debounceMs = 0  # dotted names, or [settings.scheduling] tables

    [defaults]                 # any case key below except name/file/source/cursor
    language = "python"

    [[case]]
    name = "completes a function body"
    source = '''
    def fibonacci(n):
        <cursor>
    '''                        # or: file = "src/fib.py" (relative to the spec) and cursor = "5:5"
    trigger = "invoked"        # or "automatic" (what an editor sends while typing)
    method = "inline"          # or "completion" (textDocument/completion)
    settings = { generation.multiline = "never" }
    [case.expect]
    non_empty = true
    contains = "return"        # a string or a list of strings; so are not_contains and regex
    max_lines = 8
    max_latency_ms = 5000      # only fails the case when given
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic.alias_generators import to_camel

from ...languages import language_of, suffix_of
from ...settings import GROUP_PATHS, SECRET_FIELDS, SECTION, dotted, is_engine_setting, parse_settings
from ...text import line_content_end, line_starts, utf16_len
from .expect import Expectations
from .tomllines import TomlLines

DEFAULT_MARKER = "<cursor>"
TRIGGERS = ("invoked", "automatic")
METHODS = ("inline", "completion")

_TOP_KEYS = ("settings", "defaults", "case")
_DEFAULT_KEYS = ("language", "trigger", "method", "marker", "expect")
_CASE_KEYS = ("name", "file", "source", "cursor", "settings", *_DEFAULT_KEYS)
_EXPECT_KEYS = ("non_empty", "exact", "contains", "not_contains", "regex", "max_lines", "max_latency_ms")
# The engine is chosen on the command line, as for the server: one spec runs unchanged against the
# embedded model in one CI job and a GPU server in another.
_COMMAND_LINE_SETTINGS = {"engine.url": "--engine-url", "engine.model": "--model"}
_CURSOR = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int | None  # None: about the file as a whole (it is missing, unreadable)
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{where}: {self.message}"


class SpecError(Exception):
    """One or more problems in spec files; `str()` lists them one per line as FILE:LINE: message."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Case:
    spec: Path  # the spec file, as given on the command line
    line: int  # of the case's [[case]] header
    index: int  # 1-based position in its spec
    name: str
    uri: str
    text: str  # the document, cursor marker removed
    position: tuple[int, int]  # LSP line and character (0-based, UTF-16 code units)
    language: str
    trigger: str
    method: str
    settings: dict[str, Any]  # the spec's settings with the case's on top (dotted names, as the server reads them)
    expect: Expectations

    @property
    def location(self) -> str:
        return f"{self.spec}:{self.line}"


@dataclass(frozen=True)
class Spec:
    path: Path
    cases: tuple[Case, ...]
    engine_settings: dict[str, Any] = field(default_factory=dict)  # those the engine is built from
    engine_lines: dict[str, int] = field(default_factory=dict)


def load_specs(paths: Iterable[str | Path]) -> list[Spec]:
    """Read every spec; raise SpecError with all the problems of all the files."""
    specs: list[Spec] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            specs.append(load_spec(Path(path)))
        except SpecError as exc:
            problems += exc.problems
    if not problems:
        problems = _engine_conflicts(specs)
    if problems:
        raise SpecError(problems)
    return specs


def load_spec(path: Path) -> Spec:
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([Problem(path, None, "no such spec file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(path, None, f"cannot read the spec: {exc}")]) from None
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError([_toml_problem(path, source, exc)]) from None
    return _Reader(path, source).read(data)


def _toml_problem(path: Path, source: str, exc: tomllib.TOMLDecodeError) -> Problem:
    message = str(exc)
    if match := re.search(r"\s*\(at line (\d+), column (\d+)\)$", message):
        return Problem(path, int(match.group(1)), f"not valid TOML: {message[: match.start()]} "
                       f"(column {match.group(2)})")
    if message.endswith("(at end of document)"):
        last = max(1, len(source.splitlines()))
        return Problem(path, last, f"not valid TOML: {message.removesuffix(' (at end of document)')} "
                       "at the end of the file")
    return Problem(path, 1, f"not valid TOML: {message}")


class _Reader:
    """Validates one parsed spec, collecting every problem with its line."""

    def __init__(self, path: Path, source: str):
        self.path = path
        self.lines = TomlLines(source)
        self.problems: list[Problem] = []
        self.setting_lines: dict[str, int | None] = {}  # dotted setting → the line it is written on

    def problem(self, where: tuple[str | int, ...], message: str) -> None:
        self.problems.append(Problem(self.path, self.lines.line(*where), message))

    def read(self, data: dict[str, Any]) -> Spec:
        self.unknown_keys((), data, _TOP_KEYS, "top-level key")
        spec_settings = self.settings(("settings",), data.get("settings", {}), per_case=False)
        engine_settings = {k: v for k, v in spec_settings.items() if is_engine_setting(k)}
        spec_settings = {k: v for k, v in spec_settings.items() if k not in engine_settings}
        defaults = self.table(("defaults",), data.get("defaults", {}))
        self.unknown_keys(("defaults",), defaults, _DEFAULT_KEYS, "default")
        default_expect = self.expectations(("defaults", "expect"), defaults.get("expect", {}))

        raw_cases = data.get("case", [])
        if not isinstance(raw_cases, list) or not all(isinstance(c, dict) for c in raw_cases):
            self.problem(("case",), "`case` must be an array of tables: write each case as [[case]]")
            raw_cases = []
        if not raw_cases and not self.problems:
            self.problem((), "no cases: add at least one [[case]] table")
        cases: list[Case] = []
        names: dict[str, int] = {}
        for index, raw in enumerate(raw_cases):
            case = self.case(index, raw, defaults, default_expect, spec_settings)
            name = raw.get("name") if case is None else case.name
            if isinstance(name, str) and name in names:
                self.problem(("case", index, "name"), f"case name {name!r} is already used on line "
                             f"{names[name]}: names identify cases in CI reports")
                continue
            if isinstance(name, str):
                names[name] = self.lines.line("case", index)
            if case is not None:
                cases.append(case)
        if self.problems:
            raise SpecError(sorted(self.problems, key=lambda p: p.line or 0))
        return Spec(self.path, tuple(cases), engine_settings,
                    {path: line for path, line in self.setting_lines.items() if path in engine_settings})

    # -- pieces -------------------------------------------------------------------------------

    def table(self, where: tuple[str | int, ...], value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        self.problem(where, f"`{where[-1]}` must be a table, got {_type_name(value)}")
        return {}

    def unknown_keys(self, where: tuple[str | int, ...], table: dict[str, Any], known: tuple[str, ...],
                     what: str) -> None:
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
                self.problem((*where, key), f"unknown {what} {key!r}{hint}")

    def settings(self, where: tuple[str | int, ...], raw: Any, per_case: bool) -> dict[str, Any]:
        """Validate settings as the server will (lsp_server.settings); return the good ones, keyed by
        their dotted names (`scheduling.debounceMs`), which the server reads as they are."""
        raw = self.table(where, raw)
        good: dict[str, Any] = {}
        for key, value in raw.items():
            at = (*where, key)
            if to_camel(key) in (SECTION, "vllm-ls", "vllm_ls"):
                self.problem(at, f"write the settings directly in [{where[-1]}], not nested under {key!r}")
                continue
            for written, leaf in _written_leaves((key,), value):
                for path, canonical in dotted({".".join(written): leaf}).items():
                    self._setting((*where, *written), path, canonical, per_case, good)
        return good

    def _setting(self, at: tuple[str | int, ...], path: str, value: Any, per_case: bool,
                 good: dict[str, Any]) -> None:
        if path in _COMMAND_LINE_SETTINGS:
            self.problem(at, f"{path!r} chooses the engine, which a spec does not: pass "
                         f"{_COMMAND_LINE_SETTINGS[path]} to vllm-ls check")
            return
        if path.rsplit(".", 1)[-1] in SECRET_FIELDS:
            self.problem(at, f"{path!r} is a secret and does not belong in a spec file: "
                         "give it to the server through its environment")
            return
        _, problems = parse_settings({path: value})
        if problems:
            for problem in problems:
                self.problem(at, _spec_wording(problem))
            return
        if per_case and is_engine_setting(path):
            self.problem(at, f"{path!r} needs a new engine: set it in the spec's top-level "
                         "[settings] (for all cases), not per case")
            return
        good[path] = value
        self.setting_lines.setdefault(path, self.lines.line(*at))

    def expectations(self, where: tuple[str | int, ...], raw: Any) -> Expectations:
        raw = self.table(where, raw)
        self.unknown_keys(where, raw, _EXPECT_KEYS, "expectation")
        values: dict[str, Any] = {}
        for key in ("non_empty",):
            if key in raw:
                values[key] = self.typed((*where, key), raw[key], bool, "true or false")
        if "exact" in raw:
            values["exact"] = self.typed((*where, "exact"), raw["exact"], str, "a string")
        for key in ("contains", "not_contains", "regex"):
            if key in raw:
                values[key] = self.strings((*where, key), raw[key])
        if "regex" in values:
            values["regex"] = tuple(self.pattern((*where, "regex"), p) for p in values["regex"])
        if "max_lines" in raw:
            value = raw["max_lines"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                self.problem((*where, "max_lines"), f"max_lines must be a whole number of at least 1, "
                             f"got {value!r}")
            else:
                values["max_lines"] = value
        if "max_latency_ms" in raw:
            value = raw["max_latency_ms"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                self.problem((*where, "max_latency_ms"), f"max_latency_ms must be a positive number of "
                             f"milliseconds, got {value!r}")
            else:
                values["max_latency_ms"] = float(value)
        return Expectations(**{k: v for k, v in values.items() if v is not None})

    def typed(self, where: tuple[str | int, ...], value: Any, kind: type, words: str) -> Any:
        if isinstance(value, kind) and not (kind is not bool and isinstance(value, bool)):
            return value
        self.problem(where, f"`{where[-1]}` must be {words}, got {_type_name(value)} {value!r}")
        return None

    def strings(self, where: tuple[str | int, ...], value: Any) -> tuple[str, ...] | None:
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return tuple(value)
        self.problem(where, f"`{where[-1]}` must be a string or a non-empty list of strings, got {value!r}")
        return None

    def pattern(self, where: tuple[str | int, ...], text: str) -> re.Pattern[str]:
        try:
            return re.compile(text, re.MULTILINE)
        except re.error as exc:
            self.problem(where, f"regex {text!r} does not compile: {exc}")
            return re.compile("")

    def case(self, index: int, raw: dict[str, Any], defaults: dict[str, Any], default_expect: Expectations,
             spec_settings: dict[str, Any]) -> Case | None:
        at = ("case", index)
        before = len(self.problems)
        self.unknown_keys(at, raw, _CASE_KEYS, "case key")
        merged = {**{k: v for k, v in defaults.items() if k != "expect"}, **raw}

        def where(key: str) -> tuple[str | int, ...]:
            return (*at, key) if key in raw else ("defaults", key) if key in defaults else at

        name = raw.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            self.problem(where("name"), f"`name` must be a non-empty string, got {name!r}")
        marker = merged.get("marker", DEFAULT_MARKER)
        if not isinstance(marker, str) or not marker:
            self.problem(where("marker"), f"`marker` must be a non-empty string, got {marker!r}")
            marker = DEFAULT_MARKER
        trigger = merged.get("trigger", "invoked")
        if trigger not in TRIGGERS:
            self.problem(where("trigger"), f"`trigger` must be one of {', '.join(map(repr, TRIGGERS))}, "
                         f"got {trigger!r}")
        method = merged.get("method", "inline")
        if method not in METHODS:
            self.problem(where("method"), f"`method` must be one of {', '.join(map(repr, METHODS))}, "
                         f"got {method!r}")

        document = self.document(at, raw, marker)
        language = merged.get("language")
        if language is None and document is not None and document[0] is not None:
            language = language_of(document[0])
        if language is None:
            self.problem(at, "no language: set `language` (e.g. \"python\") for a case with inline source, "
                         "here or in [defaults]")
        elif not isinstance(language, str) or not language.strip():
            self.problem(where("language"), f"`language` must be a non-empty string, got {language!r}")

        case_settings = self.settings((*at, "settings"), raw.get("settings", {}), per_case=True)
        expect = self.expectations((*at, "expect"), raw.get("expect", {}))
        expect = _merge(default_expect, expect)
        if expect.empty and len(self.problems) == before:
            self.problem((*at, "expect") if "expect" in raw else at,
                         "the case expects nothing, so it could never fail: add [case.expect] "
                         "(e.g. non_empty = true) or [defaults.expect]")
        if len(self.problems) > before or document is None:
            return None
        file, text, position = document
        uri = (file.resolve() if file is not None
               else self.path.resolve().with_name(f"{self.path.stem}.case{index + 1}{suffix_of(language)}"))
        return Case(
            spec=self.path, line=self.lines.line(*at), index=index + 1,
            name=name or (f"{file.name}:{position[0] + 1}" if file is not None else f"case {index + 1}"),
            uri=uri.as_uri(), text=text, position=position, language=language, trigger=trigger,
            method=method, settings={**spec_settings, **case_settings}, expect=expect,
        )

    def document(self, at: tuple[str | int, ...], raw: dict[str, Any],
                 marker: str) -> tuple[Path | None, str, tuple[int, int]] | None:
        """(file or None, text without the marker, LSP position), or None after reporting why not."""
        has_file, has_source = "file" in raw, "source" in raw
        if has_file == has_source:
            self.problem(at, "a case needs exactly one of `file` (a path relative to the spec) "
                         "or `source` (the text itself)")
            return None
        file: Path | None = None
        if has_file:
            name = raw["file"]
            if not isinstance(name, str) or not name:
                self.problem((*at, "file"), f"`file` must be a path, got {name!r}")
                return None
            file = self.path.parent / name
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = "no such file" if isinstance(exc, FileNotFoundError) else str(exc)
                self.problem((*at, "file"), f"cannot read {str(file)!r}: {reason}")
                return None
        else:
            text = raw["source"]
            if not isinstance(text, str):
                self.problem((*at, "source"), f"`source` must be a string, got {_type_name(text)}")
                return None

        if "cursor" in raw:
            return self.cursor_at(at, raw["cursor"], file, text)
        count = text.count(marker)
        if count != 1:
            where = (*at, "file") if has_file else (*at, "source")
            found = "not found" if count == 0 else f"found {count} times"
            self.problem(where, f"cursor marker {marker!r} {found}: put it exactly once in the text, "
                         "or give cursor = \"LINE:COLUMN\"")
            return None
        offset = text.index(marker)
        text = text[:offset] + text[offset + len(marker):]
        starts = line_starts(text)
        line = max(i for i, start in enumerate(starts) if start <= offset)
        return file, text, (line, utf16_len(text[starts[line]:offset]))

    def cursor_at(self, at: tuple[str | int, ...], cursor: Any, file: Path | None,
                  text: str) -> tuple[Path | None, str, tuple[int, int]] | None:
        where = (*at, "cursor")
        match = _CURSOR.match(cursor) if isinstance(cursor, str) else None
        if match is None:
            self.problem(where, f"cursor must be \"LINE:COLUMN\" (1-based, as editors show them), got {cursor!r}")
            return None
        line, column = int(match.group(1)), int(match.group(2))
        starts = line_starts(text)
        if not 1 <= line <= len(starts):
            self.problem(where, f"cursor line {line} is outside the text (1 to {len(starts)})")
            return None
        content = text[starts[line - 1]: line_content_end(text, starts[line - 1])]
        if not 1 <= column <= len(content) + 1:
            self.problem(where, f"cursor column {column} is outside line {line} (1 to {len(content) + 1})")
            return None
        return file, text, (line - 1, utf16_len(content[: column - 1]))


def _merge(defaults: Expectations, case: Expectations) -> Expectations:
    """The case's expectations on top of the defaults, key by key."""
    fields = {name: getattr(case, name) for name in Expectations.__dataclass_fields__
              if getattr(case, name) != getattr(Expectations(), name)}
    return Expectations(**{**{name: getattr(defaults, name) for name in Expectations.__dataclass_fields__},
                           **fields})


def _engine_conflicts(specs: list[Spec]) -> list[Problem]:
    """Spec files run in one server session, so they must agree on the settings that build the engine."""
    problems: list[Problem] = []
    first: dict[str, tuple[Any, Spec]] = {}
    for spec in specs:
        for key, value in spec.engine_settings.items():
            if key in first and first[key][0] != value:
                other = first[key][1]
                problems.append(Problem(spec.path, spec.engine_lines[key], (
                    f"{key} = {value!r} differs from {key} = {first[key][0]!r} in "
                    f"{other.path}:{other.engine_lines[key]}; the cases of one run share one engine")))
            first.setdefault(key, (value, spec))
    return problems


def engine_settings(specs: list[Spec]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for spec in specs:
        merged.update(spec.engine_settings)
    return merged


def _written_leaves(written: tuple[str, ...], value: Any) -> Iterable[tuple[tuple[str, ...], Any]]:
    """The settings of a TOML table as written (`[settings.scheduling]`, `scheduling.debounceMs = 0`,
    inline tables), each with the key path it was written under, for its line."""
    if isinstance(value, dict) and ".".join(to_camel(part) for part in written) in GROUP_PATHS:
        for key, inner in value.items():
            yield from _written_leaves((*written, key), inner)
    else:
        yield written, value


def _spec_wording(problem: str) -> str:
    """parse_settings speaks to a running server (bad values fall back); a spec with them is refused."""
    return re.sub(r"(; using the default| ignored)$", "", problem)


def _type_name(value: Any) -> str:
    return {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "an array",
            dict: "a table"}.get(type(value), type(value).__name__)
