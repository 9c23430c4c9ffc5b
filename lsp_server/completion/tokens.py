"""Token counts from the engine's own tokenizer, cached per chunk, for the pure prompt builder.

`prompt.build_prompt` takes a plain `count` function. Here that function answers from a cache of
chunk → token count, and records the chunks it had to guess; `build()` then tokenizes just those
(one batch through the engine) and builds again. From one keystroke to the next only the cursor's
line is a new chunk, so budgeting a prompt costs one short tokenization per keystroke.

Guesses are deliberately low (8 characters per token): the guessing build then reaches further back
than the exact one needs, so the second build finds every count it needs in the cache.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable

from .prompt import Prompt

#: Tokenizes texts with the engine's tokenizer: texts → their token counts.
CountTokens = Callable[[list[str]], Awaitable[list[int]]]

_GUESS_CHARS_PER_TOKEN = 8
_MAX_ROUNDS = 4


class TokenCounts:
    """Token counts of prompt chunks by the engine's tokenizer, cached (module docstring)."""

    def __init__(self, capacity: int = 50_000):
        self.capacity = capacity
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._owner: object | None = None
        self.tokenized = 0  # chunks sent to the tokenizer since start (for tests and stats)

    def bind(self, owner: object) -> None:
        """Counts belong to one tokenizer: a different engine starts afresh."""
        if owner is not self._owner:
            self._owner = owner
            self._counts.clear()

    def counter(self, missing: set[str]) -> Callable[[str], int]:
        """A `count` function for the prompt builder: cached counts, low guesses for the rest
        (which it adds to `missing`)."""
        counts = self._counts

        def count(text: str) -> int:
            if not text:
                return 0
            known = counts.get(text)
            if known is not None:
                return known
            missing.add(text)
            return len(text) // _GUESS_CHARS_PER_TOKEN

        return count

    async def fill(self, texts: Iterable[str], count_tokens: CountTokens) -> None:
        """Tokenize the texts not counted yet, in one batch through the engine."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._counts]
        if not todo:
            return
        self.tokenized += len(todo)
        for text, n in zip(todo, await count_tokens(todo), strict=True):
            self._counts[text] = n
        while len(self._counts) > self.capacity:
            self._counts.popitem(last=False)

    async def build(self, make: Callable[[Callable[[str], int]], Prompt], count_tokens: CountTokens) -> Prompt:
        """`make(count)` with exact counts for every chunk it consults."""
        for _ in range(_MAX_ROUNDS):
            missing: set[str] = set()
            prompt = make(self.counter(missing))
            if not missing:
                return prompt
            await self.fill(missing, count_tokens)
        # Pathological inputs only (each build reaching further than the last): the cache is warm
        # enough that the guesses left are a few chunks at the prompt's edge.
        return prompt
