"""What the user did with each suggestion: shown, accepted, partly accepted, dismissed.

Every suggestion returned gets an id; editors report what happened to it by that id (the
notifications Copilot's language server defines, and the accept command on each item: see
`features/outcomes.py`). Nothing leaves the machine: these are counters in `vllm-ls/stats`.

A suggestion the user types along is answered again from the typed-ahead cache with what is left
of it; that answer continues the same suggestion, so typing along is not a dismissal, and
accepting the rest accepts the suggestion. A suggestion that was shown and is then replaced by a
different one for its document (or its document closes) without any acceptance was dismissed.
Only editors that report "shown" can report a dismissal; acceptance is reported by more editors
(every one that runs an item's command), so `completions_accepted / completions_returned` is the
acceptance rate wherever "shown" is not reported.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass

from .counters import ServerCounters

#: Suggestions remembered for late reports (an editor reports "shown" after it drew the text).
CAPACITY = 512


@dataclass
class Suggestion:
    """One suggestion as the user saw it, across the answers that continue it."""

    uri: str
    shown: bool = False
    accepted: bool = False
    partly_accepted: bool = False
    settled: bool = False


@dataclass
class _Item:
    """One answer's text, and how much of it has been counted as accepted."""

    suggestion: Suggestion
    length: int
    counted: int = 0


class Offers:
    """The suggestions returned per document and what became of them; counts into `counters`."""

    def __init__(self, counters: ServerCounters, capacity: int = CAPACITY):
        self._counters = counters
        self._capacity = capacity
        self._ids = itertools.count(1)
        self._by_id: OrderedDict[str, _Item] = OrderedDict()
        self._current: dict[str, Suggestion] = {}  # per document: the suggestion on screen

    def offer(self, uri: str, texts: list[str] | tuple[str, ...], continues: bool = False) -> list[str]:
        """Ids for the candidates `texts` of an answer for `uri`. `continues`: the answer is what is
        left of the document's current suggestion (typed along), not a new one."""
        current = self._current.get(uri)
        if continues and current is not None and not current.settled:
            suggestion = current
        else:
            if current is not None:
                self._settle(current)
            suggestion = Suggestion(uri)
            self._current[uri] = suggestion
        ids = []
        for text in texts:
            offer_id = f"s{next(self._ids)}"
            self._by_id[offer_id] = _Item(suggestion, len(text))
            ids.append(offer_id)
        while len(self._by_id) > self._capacity:
            self._by_id.popitem(last=False)
        return ids

    def shown(self, offer_id: str) -> bool:
        """The editor drew the suggestion. False for an id it does not know (or forgot)."""
        item = self._by_id.get(offer_id)
        if item is None:
            return False
        if not item.suggestion.shown:
            item.suggestion.shown = True
            self._counters.completions_shown += 1
        return True

    def accepted(self, offer_id: str) -> bool:
        """The user took the (rest of the) answer `offer_id`."""
        item = self._by_id.get(offer_id)
        if item is None:
            return False
        if not item.suggestion.accepted:
            item.suggestion.accepted = True
            self._counters.completions_accepted += 1
        self._count(item, item.length)
        return True

    def partly_accepted(self, offer_id: str, characters: int) -> bool:
        """The user took the answer's first `characters` so far (a word, a line: editors report
        the total, not the step)."""
        item = self._by_id.get(offer_id)
        if item is None:
            return False
        if not item.suggestion.partly_accepted:
            item.suggestion.partly_accepted = True
            self._counters.completions_partially_accepted += 1
        self._count(item, min(characters, item.length))
        return True

    def _count(self, item: _Item, total: int) -> None:
        if total > item.counted:
            self._counters.characters_accepted += total - item.counted
            item.counted = total

    def document_closed(self, uri: str) -> None:
        current = self._current.pop(uri, None)
        if current is not None:
            self._settle(current)

    def _settle(self, suggestion: Suggestion) -> None:
        if suggestion.settled:
            return
        suggestion.settled = True
        if suggestion.shown and not (suggestion.accepted or suggestion.partly_accepted):
            self._counters.completions_dismissed += 1
