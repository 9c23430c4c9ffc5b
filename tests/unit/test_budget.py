"""The token budget: exact counts only when the cheap bounds cannot decide; prefix cut to fit."""

from engine.templates import PREFIX_ONLY
from lsp_server.budget import MARGIN_TOKENS, TokenBudget
from lsp_server.prompt import PromptOptions, build_prompt

DOC = "".join(f"line_{i} = compute({i}, 'é')\n" for i in range(400)) + "result = "


def builder(max_tokens=32):
    def build(max_prefix_chars):
        return build_prompt(DOC, len(DOC), PREFIX_ONLY, PromptOptions(
            max_prefix_chars=max_prefix_chars, max_tokens=max_tokens, max_line_tokens=max_tokens,
            prefix_step_lines=8))
    return build


def tokens_of(text):  # a stand-in tokenizer: one token per 3 characters, rounded up
    return -(-len(text) // 3)


async def test_small_prompt_is_never_counted():
    budget, calls = TokenBudget(), []

    async def count(text):
        calls.append(text)
        return tokens_of(text)

    prompt = await budget.fit(builder(), 200, 2048, count)
    assert calls == [] and len(prompt.prefix) <= 200


async def test_prompt_over_the_context_is_cut_to_fit_exactly():
    budget, calls = TokenBudget(), []

    async def count(text):
        calls.append(text)
        return tokens_of(text)

    context = 1024
    prompt = await budget.fit(builder(), 100_000, context, count)
    assert tokens_of(prompt.text) <= context - prompt.max_tokens - MARGIN_TOKENS
    assert prompt.text.endswith("result =")  # the cursor's line stays
    assert len(calls) == 1  # measured once; the cut prompt is cleared by the measured density
    assert budget.density > 0


async def test_learned_density_spares_later_counts():
    budget = TokenBudget()

    async def count(text):
        return tokens_of(text)

    await budget.fit(builder(), 100_000, 1024, count)
    counted = budget.exact_counts
    # A smaller prompt that the bytes bound cannot clear but the measured density can.
    prompt = await budget.fit(builder(), 2000, 1024, count)
    assert budget.exact_counts == counted
    assert tokens_of(prompt.text) <= 1024 - prompt.max_tokens - MARGIN_TOKENS


async def test_consecutive_keystrokes_keep_the_same_prompt_start():
    budget = TokenBudget()

    async def count(text):
        return tokens_of(text)

    starts = set()
    for typed in ("", "f", "fo", "foo", "foo(", "foo(1"):
        doc = DOC + typed

        def build(max_prefix_chars, doc=doc):
            return build_prompt(doc, len(doc), PREFIX_ONLY, PromptOptions(
                max_prefix_chars=max_prefix_chars, max_tokens=32, max_line_tokens=32, prefix_step_lines=8))

        prompt = await budget.fit(build, 100_000, 1024, count)
        starts.add(prompt.text[:40])
    assert len(starts) == 1
