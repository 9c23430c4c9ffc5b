"""A stream's text and the editor's: what the user typed since a stream's anchor, whether it agrees
with what the stream generated, and which of the generated tokens have reached the editor (each
counted as shown once, however it got there). Pure; the ledger only adds to a counter."""

from __future__ import annotations

from dataclasses import dataclass, field

from .counters import ServerCounters
from .postprocess import StreamFilter


@dataclass
class _Piece:
    start: int
    end: int
    tokens: int
    counted: bool = False


@dataclass
class Ledger:
    """The tokens behind one candidate's generated text, so each is counted as shown at most once,
    whenever (and however: the answer, a reused stream, the cache) its text first reaches the editor."""

    filter: StreamFilter
    counters: ServerCounters
    pieces: list[_Piece] = field(default_factory=list)
    generated: int = 0

    def add(self, text: str, tokens: int) -> None:
        self.pieces.append(_Piece(self.generated, self.generated + len(text), tokens))
        self.generated += len(text)

    def shown(self, start: int, end: int) -> int:
        """Count the tokens behind characters `start:end` of the filtered text not counted yet; the
        whitespace the filter healed belongs to an answer that starts at 0."""
        skipped = self.filter.skipped
        first, last = (0 if start == 0 else skipped + start), skipped + end
        tokens = 0
        for piece in self.pieces:
            if piece.counted or piece.start >= last:
                continue
            if piece.end > first or piece.start >= first:
                piece.counted = True
                tokens += piece.tokens
        self.counters.tokens_shown += tokens
        return tokens


def typed_since(before: str, after: str, anchor_before: str, anchor_after: str) -> str | None:
    """What was typed at the anchor to make `before`|`after` out of it; None if it is not that."""
    if after != anchor_after or not before.startswith(anchor_before):
        return None
    return before[len(anchor_before):]


def agrees(generated: str, typed: str, running: bool) -> bool | None:
    """Whether `typed` agrees with the `generated` text: True, False, or None while a running
    stream has not generated that far yet (everything it generated is the start of `typed`)."""
    if generated.startswith(typed):
        return True
    if running and typed.startswith(generated):
        return None
    return False
