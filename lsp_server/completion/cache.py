"""Typed-ahead cache: a suggestion the user is typing along is answered from memory, not the engine.

A shown suggestion is stored under its document and the text around the cursor when it was made.
When the text before the cursor has since grown by characters that match the beginning of the
suggestion — the user types it, or deletes back into what they typed of it — and the text after the
cursor is unchanged, the rest of the suggestion is the answer. Zero engine calls.

Entries keep the text around the cursor as a length, a hash and a short tail rather than a copy, so a
bounded cache of large documents stays small.

An engine stream that goes on after its answer (completion/streams.py) stores its lines here as they
complete, under the same key: the entry grows, and the lines after the one shown are there when the
user accepts or types it. Such an entry carries its `source`, which counts the engine tokens behind
the text it serves the first time they reach the editor (`tokens_shown`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

#: How much of the text before the cursor an entry keeps verbatim (compared before the hash).
_TAIL = 256


@dataclass(frozen=True)
class _Key:
    uri: str
    before_len: int
    before_hash: int
    before_tail: str
    after_len: int
    after_hash: int


class Source(Protocol):
    """Where an entry's text came from: counts the engine tokens behind what is served of it."""

    def shown(self, start: int, end: int) -> int:
        """Tokens behind characters `start:end` of the entry's first text not counted before."""
        ...


@dataclass(frozen=True)
class _Entry:
    key: _Key
    texts: tuple[str, ...]
    source: Source | None = None


@dataclass(frozen=True)
class Hit:
    """A cache answer: the rest of each suggestion after what was typed, and where it came from."""

    rest: tuple[str, ...]
    typed: int  # characters typed (or deleted back to) since the entry was stored
    #: The entry's source, when `rest[0]` is the rest of the text it counts for (the entry's first).
    source: Source | None = None

    def shown_tokens(self) -> int:
        """Engine tokens behind `rest[0]` that no earlier answer showed (0 without a source)."""
        if self.source is None or not self.rest:
            return 0
        return self.source.shown(self.typed, self.typed + len(self.rest[0]))


class CompletionCache:
    """Suggestions shown recently, by document and cursor context, LRU-bounded (module docstring)."""

    def __init__(self, capacity: int = 128):
        self.capacity = capacity
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def store(self, uri: str, before: str, after: str, texts: tuple[str, ...], source: Source | None = None) -> None:
        """Keep `texts` (suggestions for the cursor between `before` and `after`); replaces the entry
        stored under the same text, so a stream can grow its entry line by line."""
        texts = tuple(t for t in dict.fromkeys(texts) if t)
        if not texts or self.capacity <= 0:
            return
        key = _Key(uri, len(before), hash(before), before[-_TAIL:], len(after), hash(after))
        self._entries.pop(key, None)
        self._entries[key] = _Entry(key, texts, source)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def lookup(self, uri: str, before: str, after: str) -> tuple[str, ...]:
        """The rest of every cached suggestion that the text typed since matches; empty: a miss."""
        hit = self.find(uri, before, after)
        return hit.rest if hit is not None else ()

    def find(self, uri: str, before: str, after: str) -> Hit | None:
        """Like `lookup`, with what the answer needs to count the tokens it shows; None: a miss."""
        after_hash: int | None = None
        for key in reversed(self._entries):
            if key.uri != uri or key.after_len != len(after) or key.before_len > len(before):
                continue
            start = key.before_len - len(key.before_tail)
            if before[start: key.before_len] != key.before_tail:
                continue
            typed = before[key.before_len:]
            rest = tuple(t[len(typed):] for t in self._entries[key].texts if t.startswith(typed) and len(t) > len(typed))
            if not rest or not any(r.strip() for r in rest):
                continue
            if after_hash is None:
                after_hash = hash(after)
            if key.after_hash != after_hash or key.before_hash != hash(before[: key.before_len]):
                continue
            self._entries.move_to_end(key)
            entry = self._entries[key]
            shown = tuple(r for r in rest if r.strip())
            first = entry.texts[0]
            from_first = first.startswith(typed) and first[len(typed):] == shown[0]
            return Hit(shown, len(typed), entry.source if from_first else None)
        return None

    def forget(self, uri: str) -> None:
        """Drop every entry of a document (it was closed)."""
        for key in [k for k in self._entries if k.uri == uri]:
            del self._entries[key]

    def clear(self) -> None:
        """Drop everything."""
        self._entries.clear()
