"""Prompt building: token budgets, line-aligned grid cuts, cache-friendly stability, other documents."""

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.templates import builtin
from lsp_server.completion.prompt import ContextDocument, PromptOptions, build_prompt, chunks

PREFIX_ONLY = builtin("prefix-only")
QWEN = builtin("qwen2.5-coder")
STARCODER2 = builtin("starcoder2")


def count(text: str) -> int:
    """A stand-in tokenizer: one token per 4 characters, at least one per non-empty piece."""
    return -(-len(text) // 4)


def numbered(lines: int) -> str:
    return "".join(f"value_{i:03d} = compute({i})\n" for i in range(lines))  # 26 chars: 7 tokens per line


def test_chunks_keep_each_line_with_the_break_before_it():
    assert chunks("a\n  b\r\nc\rd\n") == ["a", "\n  b", "\r\nc", "\rd", "\n"]
    assert chunks("") == []
    assert "".join(chunks("x\n\ny")) == "x\n\ny"


def test_small_document_fits_whole():
    text = "def f(x):\n    return x\n\nprint(f(1))\n"
    offset = text.index("return x") + len("return")
    prompt = build_prompt(text, offset, QWEN, PromptOptions(), count)
    assert prompt.prefix == text[:offset] and prompt.suffix == text[offset:]
    assert prompt.text == f"<|fim_prefix|>{text[:offset]}<|fim_suffix|>{text[offset:]}<|fim_middle|>"
    assert prompt.line_prefix == "    return" and prompt.line_suffix == " x"
    assert not prompt.multiline and prompt.stop[0] == "\n"


def test_prefix_cut_is_line_aligned_and_on_the_grid():
    text = numbered(300)
    offset = len(text)
    options = PromptOptions(max_prompt_tokens=700, prefix_step_lines=32)
    prompt = build_prompt(text, offset, PREFIX_ONLY, options, count)
    first_line = text[: offset - len(prompt.prefix)].count("\n")
    assert text[: offset - len(prompt.prefix)].endswith("\n"), "the cut is at a line start"
    assert first_line % 32 == 0
    assert prompt.tokens <= 700
    # The grid costs less than one step of lines.
    assert prompt.tokens > 700 - 32 * 7 - 7


def test_budget_covers_the_template_overhead_and_the_suffix_share():
    text = numbered(400)
    offset = text.index("value_200")
    options = PromptOptions(max_prompt_tokens=1000, suffix_share=0.3)
    prompt = build_prompt(text, offset, QWEN, options, count)
    assert prompt.tokens <= 1000
    suffix_tokens = sum(count(c) for c in chunks(prompt.suffix))
    assert suffix_tokens <= 0.3 * 1000
    assert text[offset:].startswith(prompt.suffix)
    assert text[offset + len(prompt.suffix)] == "\n", "the suffix ends at a line end"
    assert prompt.text.startswith("<|fim_prefix|>") and prompt.text.endswith("<|fim_middle|>")


def test_prefix_only_gives_the_suffix_budget_to_the_prefix_but_keeps_the_suffix_for_filters():
    text = numbered(400)
    offset = text.index("value_300")
    wide = build_prompt(text, offset, PREFIX_ONLY, PromptOptions(max_prompt_tokens=1000), count)
    fim = build_prompt(text, offset, QWEN, PromptOptions(max_prompt_tokens=1000), count)
    assert len(wide.prefix) > len(fim.prefix)
    assert wide.suffix and wide.suffix not in wide.text


def test_minified_line_longer_than_the_budget_is_cut_hard():
    text = "x=1;" * 2000
    prompt = build_prompt(text, len(text), PREFIX_ONLY, PromptOptions(max_prompt_tokens=200), count)
    assert text.endswith(prompt.prefix) and 0 < count(prompt.prefix) <= 200


def test_trailing_space_is_healed():
    prompt = build_prompt("if x ", 5, PREFIX_ONLY, PromptOptions(), count)
    assert prompt.text == "if x" and prompt.heal == " " and prompt.prefix == "if x "


def test_mid_line_is_single_line_and_end_of_line_is_a_block():
    text = "foo(a, )\nbar\n"
    assert not build_prompt(text, 7, PREFIX_ONLY, PromptOptions(), count).multiline
    assert build_prompt(text, 8, PREFIX_ONLY, PromptOptions(), count).multiline
    assert build_prompt(text, 7, PREFIX_ONLY, PromptOptions(multiline="always"), count).multiline
    assert not build_prompt(text, 8, PREFIX_ONLY, PromptOptions(multiline="never"), count).multiline


def test_other_documents_fill_what_is_left_most_recent_first():
    docs = [ContextDocument("recent.py", "A = 1\n" * 10), ContextDocument("older.py", "B = 2\n" * 10)]
    prompt = build_prompt("x = ", 4, QWEN, PromptOptions(max_prompt_tokens=1000), count, "cur.py", docs)
    assert prompt.files == ("recent.py", "older.py")
    assert prompt.text.startswith("<|file_sep|>recent.py\nA = 1\n")
    assert prompt.text.index("older.py") < prompt.text.index("<|file_sep|>cur.py\n<|fim_prefix|>x =")
    assert prompt.tokens <= 1000


def test_other_documents_only_with_templates_that_have_file_tokens_and_only_when_asked():
    docs = [ContextDocument("a.py", "A = 1\n")]
    assert build_prompt("x", 1, PREFIX_ONLY, PromptOptions(), count, "c.py", docs).files == ()
    assert build_prompt("x", 1, QWEN, PromptOptions(context_documents=0), count, "c.py", docs).files == ()


def test_other_documents_are_cut_line_aligned_to_the_room_left():
    big = "".join(f"line_{i} = {i}\n" for i in range(2000))
    docs = [ContextDocument("big.py", big), ContextDocument("small.py", "S = 1\n")]
    prompt = build_prompt("x", 1, QWEN, PromptOptions(max_prompt_tokens=600), count, "c.py", docs)
    assert prompt.files == ("big.py",), "the big document takes all the room; nothing is left for a header"
    start = prompt.text.index("big.py\n") + len("big.py\n")
    body = prompt.text[start: prompt.text.index("<|file_sep|>c.py")]
    assert big.startswith(body) and big[len(body) - 1] == "\n", "cut at a line end"
    assert prompt.tokens <= 600


def test_no_room_means_no_other_documents():
    text = numbered(500)
    docs = [ContextDocument("a.py", "A = 1\n")]
    prompt = build_prompt(text, len(text), QWEN, PromptOptions(max_prompt_tokens=500), count, "c.py", docs)
    assert prompt.files == ()


# -- cache friendliness -------------------------------------------------------------------------

def _head_before_cursor_line(prompt_text: str, line_prefix: str) -> str:
    return prompt_text[: prompt_text.rindex(line_prefix)] if line_prefix else prompt_text


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(st.text(alphabet="abc (){}:=_ \t", max_size=40), min_size=1, max_size=250),
    line=st.integers(min_value=0, max_value=249),
    typed=st.text(alphabet="abcdefg (:=_", min_size=1, max_size=30),
    budget=st.integers(min_value=80, max_value=1200),
    template=st.sampled_from([PREFIX_ONLY, QWEN, STARCODER2]),
)
def test_typing_at_the_cursor_keeps_the_prompt_start_byte_identical(lines, line, typed, budget, template):
    text = "\n".join(lines)
    line = min(line, len(lines) - 1)
    offset = sum(len(x) + 1 for x in lines[:line]) + len(lines[line])  # end of the chosen line
    options = PromptOptions(max_prompt_tokens=budget, prefix_step_lines=8)
    docs = [ContextDocument("other.py", "Z = 0\n" * 50)]
    previous = build_prompt(text, offset, template, options, count, "cur.py", docs)
    cut_moves = 0
    for i, ch in enumerate(typed):
        text = text[:offset] + ch + text[offset:]
        offset += 1
        prompt = build_prompt(text, offset, template, options, count, "cur.py", docs)
        assert prompt.tokens <= budget
        assert text[:offset].endswith(prompt.prefix)
        assert text[offset:].startswith(prompt.suffix)
        moved = (len(text[:offset]) - len(prompt.prefix)) != (len(text[:offset - 1]) - len(previous.prefix))
        if moved or prompt.files != previous.files:
            cut_moves += 1
        else:
            # Same cut: everything before the cursor's line is the same bytes as before.
            same = len(os.path.commonprefix([previous.text, prompt.text]))
            assert same >= _cursor_line_position(prompt, template)
        previous = prompt
    # 30 typed characters are at most 8 tokens: less than a step of 8 lines can absorb twice.
    assert cut_moves <= 2


def _cursor_line_position(prompt, template) -> int:
    """Where the cursor's line starts in the prompt text (from there on a keystroke changes it)."""
    cursor_line = prompt.prefix[len(prompt.prefix) - len(prompt.line_prefix):]
    cursor_line = cursor_line[: len(cursor_line) - len(prompt.heal)]
    after_prefix = template.layout.split("{prefix}")[1].replace("{suffix}", prompt.suffix)
    return len(prompt.text) - len(after_prefix) - len(cursor_line)


@settings(max_examples=80, deadline=None)
@given(
    text=st.text(alphabet="ab \n\r\t{}()", max_size=600),
    cursor=st.integers(min_value=0, max_value=600),
    budget=st.integers(min_value=1, max_value=400),
    share=st.floats(min_value=0.0, max_value=0.9),
    template=st.sampled_from([PREFIX_ONLY, QWEN, STARCODER2, builtin("codestral"), builtin("codellama")]),
)
def test_any_document_any_cursor_stays_within_budget(text, cursor, budget, share, template):
    cursor = min(cursor, len(text))
    prompt = build_prompt(text, cursor, template, PromptOptions(max_prompt_tokens=budget, suffix_share=share),
                          count, "p.py", [ContextDocument("o.py", text)])
    assert text[:cursor].endswith(prompt.prefix)
    assert text[cursor:].startswith(prompt.suffix)
    overhead = count(template.overhead("p.py"))
    assert prompt.tokens <= max(budget, overhead)


def test_the_cut_moves_by_whole_grid_steps_not_per_keystroke():
    text = "x\n" * 1000  # one token per line: without the grid every typed token would move the cut
    offset = len(text)
    options = PromptOptions(max_prompt_tokens=300, prefix_step_lines=32)
    cuts = []
    for ch in "result = compute_everything(a, b, c) + 1":
        text = text[:offset] + ch + text[offset:]
        offset += 1
        prompt = build_prompt(text, offset, PREFIX_ONLY, options, count)
        cuts.append(offset - len(prompt.prefix))
        assert prompt.tokens <= 300
    assert len(set(cuts)) <= 2, "at most one move of the cut while typing a line"
    assert all(cut % 64 == 0 for cut in cuts), "cuts sit on the 32-line grid (2 characters per line)"


def test_previous_lines_are_the_last_non_blank_lines_above_the_cursor():
    text = "a = 1\n\nb = 2\n   \nc = 3\nd = "
    prompt = build_prompt(text, len(text), PREFIX_ONLY, PromptOptions(), count)
    assert prompt.previous_lines == ("a = 1", "b = 2", "c = 3")
    assert build_prompt("x", 1, PREFIX_ONLY, PromptOptions(), count).previous_lines == ()


@settings(max_examples=80, deadline=None)
@given(
    lines=st.lists(st.text(alphabet="ab =()", max_size=30), min_size=1, max_size=400),
    breaks=st.sampled_from(["\n", "\r\n", "\r"]),
    cursor_line=st.integers(min_value=0, max_value=399),
    budget=st.integers(min_value=10, max_value=300),
    template=st.sampled_from([PREFIX_ONLY, QWEN]),
)
def test_splitting_only_a_window_of_a_large_file_changes_nothing(lines, breaks, cursor_line, budget, template):
    from lsp_server.completion import prompt as module

    text = breaks.join(lines)
    cursor_line = min(cursor_line, len(lines) - 1)
    offset = sum(len(x) + len(breaks) for x in lines[:cursor_line]) + len(lines[cursor_line]) // 2
    options = PromptOptions(max_prompt_tokens=budget, prefix_step_lines=8)
    windowed = build_prompt(text, offset, template, options, count)
    saved = module._WINDOW_CHARS_PER_TOKEN
    module._WINDOW_CHARS_PER_TOKEN = 10**9
    try:
        whole = build_prompt(text, offset, template, options, count)
    finally:
        module._WINDOW_CHARS_PER_TOKEN = saved
    assert windowed == whole


def test_window_starts_on_the_grid_line():
    from lsp_server.completion.prompt import _window_start

    for brk in ("\n", "\r\n", "\r"):
        text = brk.join(f"line{i:04d}" for i in range(1000))
        start, line = _window_start(text, 500, 32)
        assert line % 32 == 0 and line > 0
        assert text[start:].startswith(f"line{line:04d}"), (brk, line, text[start:start + 10])
        assert len(text) - start >= 500
