"""Prompt templates per model family. They belong to models, not to LSP: pure functions over strings.

v0 knows one template, prefix-only, for models without fill-in-the-middle tokens (the embedded
SmolLM2). The FIM registry (StarCoder, Qwen2.5-Coder, DeepSeek-Coder, CodeLlama, ...) extends this.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Template:
    """How prefix and suffix around the cursor become one prompt string."""

    name: str
    #: Strings that end generation inside the engine (end-of-middle / end-of-text tokens).
    stop: tuple[str, ...] = ()
    #: Whether the model sees the text after the cursor at all.
    uses_suffix: bool = False

    def render(self, prefix: str, suffix: str) -> str:
        if self.name == "prefix-only":
            return prefix
        raise NotImplementedError(self.name)


PREFIX_ONLY = Template(name="prefix-only")


def choose(model_name: str, special_tokens: frozenset[str]) -> Template:
    """The template for a model, from its tokenizer's special tokens and its name."""
    return PREFIX_ONLY
