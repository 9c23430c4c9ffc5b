"""The token budget: a prompt plus its completion must fit the model's context window.

Character budgets (`maxPrefixChars`) are what users set; the model counts tokens. Counting every
keystroke's prompt exactly would cost a tokenizer pass (or, for a remote model without local
tokenizer files, an HTTP round trip to `/tokenize`) per keystroke, so the exact count runs only
when the cheap bounds cannot decide:

1. UTF-8 bytes: every token of a byte-level or byte-fallback vocabulary covers at least one byte,
   so a prompt with no more bytes than the budget fits (most prompts for 16k-context code models).
2. The densest tokens-per-character ratio measured so far, with a 10 % margin.
3. Otherwise the exact count from the engine (cached there by prompt text). When it is over, the
   prefix is cut by the measured excess and the prompt built again; the cut stays line-aligned and
   on the prompt builder's grid, so consecutive keystrokes keep the same prompt start.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .prompt import Prompt

#: Special tokens the engine adds (BOS) and rounding: kept free of the budget.
MARGIN_TOKENS = 8
_ESTIMATE_SLACK = 1.1
_MAX_ROUNDS = 4


@dataclass
class TokenBudget:
    #: The highest tokens per character an exact count has shown for the current model.
    density: float = 0.0
    exact_counts: int = 0  # how often the exact count was needed (tests and benchmarks read it)

    def reset(self) -> None:
        self.density = 0.0

    async def fit(
        self,
        build: Callable[[int], Prompt],
        max_prefix_chars: int,
        context_tokens: int,
        count: Callable[[str], Awaitable[int]],
    ) -> Prompt:
        """The prompt from `build(max_prefix_chars)`, its prefix cut until it fits the context."""
        prompt = build(max_prefix_chars)
        for _ in range(_MAX_ROUNDS):
            budget = context_tokens - prompt.max_tokens - MARGIN_TOKENS
            if self.fits_without_counting(prompt.text, budget):
                return prompt
            tokens = await count(prompt.text)
            self.exact_counts += 1
            density = tokens / max(1, len(prompt.text))
            self.density = max(self.density, density)
            if tokens <= budget or not prompt.prefix:
                return prompt
            excess_chars = int((tokens - budget) / density * _ESTIMATE_SLACK) + 1
            prompt = build(max(1, len(prompt.prefix) - excess_chars))
        return prompt

    def fits_without_counting(self, text: str, budget: int) -> bool:
        if len(text.encode("utf-8")) <= budget:
            return True
        return self.density > 0 and len(text) * self.density * _ESTIMATE_SLACK <= budget
