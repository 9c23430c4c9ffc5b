"""Chunk token counts (exact counts, one new chunk per keystroke) and the other-documents context."""

import asyncio

from engine.templates import builtin
from lsp_server.completion.context import RecentDocuments, display_path
from lsp_server.completion.prompt import PromptOptions, build_prompt
from lsp_server.completion.tokens import TokenCounts


class Tokenizer:
    """Counts words and punctuation; records every batch it was asked for."""

    def __init__(self):
        self.batches: list[list[str]] = []

    async def count(self, texts: list[str]) -> list[int]:
        self.batches.append(list(texts))
        return [len(t.split()) + t.count("\n") for t in texts]


def build(counts: TokenCounts, tokenizer: Tokenizer, text: str, offset: int, budget: int = 400):
    options = PromptOptions(max_prompt_tokens=budget)
    return asyncio.run(counts.build(
        lambda count: build_prompt(text, offset, builtin("prefix-only"), options, count), tokenizer.count,
    ))


def test_counts_are_exact_after_the_build_and_a_keystroke_costs_one_chunk():
    text = "".join(f"item_{i} = make({i})\n" for i in range(300))
    counts, tokenizer = TokenCounts(), Tokenizer()
    prompt = build(counts, tokenizer, text, len(text))
    exact = sum(len(c.split()) + c.count("\n") for c in _chunks(prompt.prefix))
    # The cut line is counted with the line break before it, which the prompt does not hold.
    assert exact <= prompt.tokens <= exact + 1, "budgeted with the tokenizer's counts, not guesses"
    assert prompt.tokens <= 400
    first = sum(map(len, tokenizer.batches))
    text += "x"
    build(counts, tokenizer, text, len(text))
    assert sum(map(len, tokenizer.batches)) - first == 1, "only the cursor's line is new"


def test_a_new_tokenizer_starts_afresh():
    counts, tokenizer = TokenCounts(), Tokenizer()
    counts.bind("engine-1")
    build(counts, tokenizer, "a = 1\nb = 2\n", 12)
    asked = sum(map(len, tokenizer.batches))
    counts.bind("engine-1")
    build(counts, tokenizer, "a = 1\nb = 2\n", 12)
    assert sum(map(len, tokenizer.batches)) == asked
    counts.bind("engine-2")
    build(counts, tokenizer, "a = 1\nb = 2\n", 12)
    assert sum(map(len, tokenizer.batches)) == 2 * asked


def test_bounded():
    counts, tokenizer = TokenCounts(capacity=10), Tokenizer()
    asyncio.run(counts.fill([f"t{i}" for i in range(50)], tokenizer.count))
    assert len(counts._counts) == 10


def _chunks(text):
    from lsp_server.completion.prompt import chunks
    return chunks(text)


def test_recent_documents_most_recent_first():
    recent = RecentDocuments(capacity=3)
    for uri in ("a", "b", "c", "a", "d"):
        recent.touch(uri)
    assert recent.most_recent() == ["d", "a", "c"]
    assert recent.most_recent(exclude="a") == ["d", "c"]
    recent.forget("d")
    assert recent.most_recent() == ["a", "c"]


def test_display_path_is_relative_to_the_workspace():
    assert display_path("file:///home/u/proj/src/app.py", "file:///home/u/proj") == "src/app.py"
    assert display_path("file:///home/u/proj/My%20File.py", "file:///home/u/proj/") == "My File.py"
    assert display_path("file:///elsewhere/x.py", "file:///home/u/proj") == "x.py"
    assert display_path("file:///elsewhere/x.py", None) == "x.py"
    assert display_path("untitled:Untitled-1", "file:///home/u/proj") == "Untitled-1"
