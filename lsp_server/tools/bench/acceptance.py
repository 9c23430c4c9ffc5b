"""What the simulated user does with a suggestion it sees: accept it when it is what it was going to
type. Pure: the same plan and the same suggestions give the same actions.

The plan (`schedule.Plan`) fixes what the user means to type and when. While replaying it, the
suggestion on screen at the moment of the next keystroke is compared with the text still to type:
- the whole suggestion is the start of it: the user presses Tab and the suggestion is inserted in
  one edit, as VS Code does;
- only its first lines are ("Accept Line"): those whole lines are inserted in one edit;
- otherwise (not even the first line agrees) the user types on, ignoring it.
An accepted text must hold something other than whitespace: accepting a lone line break saves nothing.
The user needs `Typist.react_s` to see that a suggestion agrees: one that appeared just before the next
keystroke is typed over. A suggestion that keeps agreeing while the user types along it (the
typed-ahead cache answering each keystroke with the rest) counts as seen since it first appeared.

An accept takes the slot of the keystroke it replaces; the keystrokes it covers are skipped, and the
user then stops to look at what comes next (a pause drawn, seeded by the place in the text, from the
typist's pause distribution, so every profile that accepts at the same place pauses as long). The rest
of the plan keeps its rhythm, shifted by the time the accept saved or added.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .schedule import PAUSE_MIN_S, Plan, Typist


def accepted_part(suggestion: str, remaining: str) -> str:
    """What of `suggestion` the user accepts when it still means to type `remaining` ('' for none)."""
    if not suggestion.strip():
        return ""
    if remaining.startswith(suggestion):
        return suggestion
    # Whole lines only: the longest run of the suggestion's first lines that agrees.
    end = suggestion.rfind("\n")
    while end > 0:
        head = suggestion[:end].rstrip("\r")
        if head.strip() and remaining.startswith(head):
            return head
        end = suggestion.rfind("\n", 0, end)
    return ""


@dataclass(frozen=True)
class Action:
    """One edit the user makes: a keystroke of the plan, or an accepted suggestion."""

    at: float  # seconds after the editor starts typing
    text: str  # inserted at the cursor
    pause_after: bool  # the user stops after it to look
    accepted: bool  # a suggestion accepted (Tab), not a key of the plan
    #: Characters of the plan typed before this action (where it starts in `Plan.typed`).
    position: int
    #: Seconds until the next action; after the last one, how long the user looks on.
    gap: float


class Typing:
    """Walks a plan's keystrokes; `next(suggestion, shown_at)` gives the next action, given what is
    on screen. Without accepts the actions are the plan's keystrokes at the plan's moments."""

    def __init__(self, plan: Plan, typist: Typist, seed: int = 0):
        self.plan = plan
        self.typist = typist
        self.seed = seed
        self._typed = plan.typed
        self._starts = _starts(plan)
        self._key = 0  # the next keystroke of the plan
        self._position = 0  # characters of the plan typed so far (may fall inside a keystroke)
        self._shift = 0.0  # seconds the plan's moments have moved by accepts
        self._next_at: float | None = plan.keystrokes[0].at if plan.keystrokes else None
        self.accepts = 0
        self.accepted_chars = 0

    @property
    def done(self) -> bool:
        return self._next_at is None

    @property
    def remaining(self) -> str:
        return self._typed[self._position:]

    @property
    def next_at(self) -> float | None:
        """When the next action happens (seconds after the start), or None when the plan is typed."""
        return self._next_at

    def next(self, suggestion: str | None = None, shown_at: float = -math.inf) -> Action:
        """The next action: an accept of `suggestion` (on screen since `shown_at`) if it agrees and
        the user has had time to see it, else the next keystroke of the plan (what is left of it,
        when an accept ended inside it)."""
        if self._next_at is None:
            raise StopIteration("the plan is typed")
        at, start = self._next_at, self._position
        seen = shown_at <= at - self.typist.react_s
        accepted = accepted_part(suggestion, self.remaining) if suggestion and seen and self.typist.accepts else ""
        keys = self.plan.keystrokes
        if accepted:
            self._advance(len(accepted))
            self.accepts += 1
            self.accepted_chars += len(accepted)
            gap = self._look(start)
            if self._key < len(keys):
                self._next_at = at + gap
                self._shift = self._next_at - keys[self._key].at
            else:
                self._next_at = None
            return Action(at, accepted, True, True, start, gap)
        key = keys[self._key]
        text = self._typed[start: self._starts[self._key] + len(key.text)]
        self._advance(len(text))
        if self._key < len(keys):
            self._next_at = keys[self._key].at + self._shift
            gap = self._next_at - at
        else:
            self._next_at, gap = None, key.gap
        return Action(at, text, key.pause_after, False, start, gap)

    def _advance(self, chars: int) -> None:
        self._position += chars
        keys = self.plan.keystrokes
        while self._key < len(keys) and self._starts[self._key] + len(keys[self._key].text) <= self._position:
            self._key += 1

    def _look(self, position: int) -> float:
        """The pause after an accept: the same at the same place in every profile."""
        rng = random.Random(f"vllm-ls-bench-accept/{self.seed}/{self.plan.editor}/{position}")
        typist = self.typist
        gap = rng.lognormvariate(math.log(typist.pause_median_s), typist.pause_sigma)
        return round(min(typist.pause_max_s, max(PAUSE_MIN_S, gap)), 4)


def seen_since(previous: str, previous_since: float | None, typed: str, text: str, answered: float) -> float:
    """Since when the user has seen the suggestion `text`, answered at `answered` after typing `typed`:
    since the previous one's `previous_since` when `text` is the rest of it (typing along it), else
    since it arrived."""
    if previous_since is not None and text and previous == typed + text:
        return previous_since
    return answered


def _starts(plan: Plan) -> list[int]:
    """Where each keystroke starts in `plan.typed`."""
    starts, position = [], 0
    for key in plan.keystrokes:
        starts.append(position)
        position += len(key.text)
    return starts
