"""Scores of a completion against the text a hole removed. Pure.

Both sides are compared after dropping trailing whitespace on each line and trailing blank lines
(an editor's view of "the same code"). Exact match: equal then. Edit similarity:
1 - Levenshtein distance / length of the longer text (1.0: identical, 0.0: nothing in common).
First line: the completion's first line equals the removed text's first line, which separates "the
model knew the code" from "the completion stopped at the right place". A suggestion that replaces
text after the cursor (an auto-closed closer it covers) is compared as the removed text plus what
it covers: that is what the line holds once it is accepted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def normalize(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).rstrip("\n")


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def edit_similarity(got: str, expected: str) -> float:
    got, expected = normalize(got), normalize(expected)
    longest = max(len(got), len(expected))
    return 1.0 if longest == 0 else 1.0 - levenshtein(got, expected) / longest


@dataclass(frozen=True)
class Score:
    exact: bool
    similarity: float
    first_line: bool
    empty: bool
    #: Accepting it leaves a closer after the cursor twice (closers.py's rule, strings respected).
    doubled: bool = False
    #: Lines of it that re-type one of the lines that follow the cursor (suffix.py's rule, 8 lines).
    retyped: int = 0


def score(got: str, expected: str) -> Score:
    a, b = normalize(got), normalize(expected)
    return Score(
        exact=a == b,
        similarity=edit_similarity(a, b),
        first_line=a.split("\n", 1)[0].strip() == b.split("\n", 1)[0].strip(),
        empty=not a.strip(),
    )


def summarize(scores: Iterable[Score]) -> dict[str, float | int]:
    """Means over `scores` (rates in [0, 1]); zeros for none."""
    items = list(scores)
    n = len(items)
    if n == 0:
        return {"n": 0, "exact_match": 0.0, "edit_similarity": 0.0, "first_line_match": 0.0, "empty": 0,
                "closers_doubled": 0, "suffix_lines_retyped": 0}
    return {
        "n": n,
        "exact_match": sum(s.exact for s in items) / n,
        "edit_similarity": sum(s.similarity for s in items) / n,
        "first_line_match": sum(s.first_line for s in items) / n,
        "empty": sum(s.empty for s in items),
        "closers_doubled": sum(s.doubled for s in items),
        "suffix_lines_retyped": sum(s.retyped for s in items),
    }
