"""Pure: what a case expects of its completion, and which of those expectations a result misses."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Expectations:
    non_empty: bool | None = None  # True: something must be suggested; False: nothing may be
    exact: str | None = None
    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    regex: tuple[re.Pattern[str], ...] = ()
    max_lines: int | None = None
    max_latency_ms: float | None = None  # the only expectation about time; latency is always reported

    @property
    def empty(self) -> bool:
        return self == Expectations()


@dataclass(frozen=True)
class Failure:
    expectation: str  # the spec key: "contains", "max_lines", ...
    expected: str  # what the spec asked for, in words or as the literal text
    actual: str  # what came back, when it is not simply the completion text
    literal: bool = False  # `expected` is text to show verbatim (a block), not a description


def evaluate(expect: Expectations, text: str, latency_ms: float) -> list[Failure]:
    """The expectations `text` (the completion) and `latency_ms` do not meet; empty means passed."""
    failures: list[Failure] = []
    lines = len(text.splitlines())
    if expect.non_empty is True and not text.strip():
        failures.append(Failure("non_empty", "a non-empty completion", "nothing"))
    if expect.non_empty is False and text.strip():
        failures.append(Failure("non_empty", "no completion", _lines_word(lines)))
    if expect.exact is not None and text != expect.exact:
        failures.append(Failure("exact", expect.exact, "different text", literal=True))
    for needle in expect.contains:
        if needle not in text:
            failures.append(Failure("contains", needle, "not found", literal=True))
    for needle in expect.not_contains:
        if needle in text:
            failures.append(Failure("not_contains", needle, "found", literal=True))
    for pattern in expect.regex:
        if not pattern.search(text):
            failures.append(Failure("regex", pattern.pattern, "no match", literal=True))
    if expect.max_lines is not None and lines > expect.max_lines:
        failures.append(Failure("max_lines", f"at most {_lines_word(expect.max_lines)}", _lines_word(lines)))
    if expect.max_latency_ms is not None and latency_ms > expect.max_latency_ms:
        failures.append(Failure(
            "max_latency_ms", f"at most {expect.max_latency_ms:g} ms", f"{latency_ms:.0f} ms"))
    return failures


def _lines_word(n: int) -> str:
    return f"{n} line" if n == 1 else f"{n} lines"
