"""The prompt is the document window around the cursor and nothing else: its prefix and suffix put
back together are the document's text around the cursor, whatever the text holds (CRLF, lone CR,
NUL, characters beyond the BMP), and the rendered prompt is exactly the template around them."""

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.templates import builtin
from lsp_server.completion.prompt import ContextDocument, PromptOptions, build_prompt
from lsp_server.text import line_content_end, line_starts

TEMPLATES = [builtin(name) for name in ("prefix-only", "qwen2.5-coder", "starcoder2", "codestral", "codellama",
                                        "deepseek-coder", "prefix-only-paths")]
PIECES = ["a", "b", " ", "    ", "\t", "\n", "\r\n", "\r", "\x00", "é", "😀", "def f():", "return x", "#"]
documents = st.lists(st.sampled_from(PIECES), max_size=120).map("".join)


def count(text: str) -> int:
    return -(-len(text.encode("utf-8")) // 4)


@settings(max_examples=400, deadline=None)
@given(documents, st.integers(0, 2000), st.integers(1, 200), st.floats(0.0, 0.9), st.sampled_from(TEMPLATES),
       st.booleans())
def test_prefix_and_suffix_are_the_window_around_the_cursor(text, cursor, budget, share, template, with_path):
    offset = min(cursor, len(text))
    path = "pkg/mod.py" if with_path else None
    prompt = build_prompt(text, offset, template, PromptOptions(max_prompt_tokens=budget, suffix_share=share),
                          count, path)
    start = offset - len(prompt.prefix)
    assert text[start: offset + len(prompt.suffix)] == prompt.prefix + prompt.suffix
    # The rendered prompt is the template around that window (less the healed space), nothing more.
    healed = prompt.prefix[: len(prompt.prefix) - len(prompt.heal)]
    assert prompt.text == template.render(healed, prompt.suffix, path)


@settings(max_examples=300, deadline=None)
@given(documents, st.integers(0, 2000))
def test_the_cursor_line_is_split_at_the_cursor(text, cursor):
    offset = min(cursor, len(text))
    prompt = build_prompt(text, offset, builtin("qwen2.5-coder"), PromptOptions(max_prompt_tokens=10_000), count)
    if 0 < offset < len(text) and text[offset - 1:offset + 1] == "\r\n":
        return  # between the CR and LF of one line break: not a position an editor can send
    line_start = max(s for s in line_starts(text) if s <= offset)
    assert prompt.line_prefix == text[line_start:offset]
    assert prompt.line_suffix == text[offset: line_content_end(text, offset)]


@settings(max_examples=200, deadline=None)
@given(documents, st.integers(0, 2000), st.lists(documents, max_size=3), st.integers(64, 400))
def test_other_documents_appear_as_heads_of_their_text(text, cursor, others, budget):
    template = builtin("qwen2.5-coder")
    offset = min(cursor, len(text))
    context = [ContextDocument(f"o{i}.py", body) for i, body in enumerate(others)]
    prompt = build_prompt(text, offset, template, PromptOptions(max_prompt_tokens=budget, context_quantum=8),
                          count, "cur.py", context)
    bodies = {doc.path: doc.text for doc in context}
    files = []
    for path in prompt.files:
        marker = template.render_file(path, "")
        at = prompt.text.index(marker) + len(marker)
        nxt = prompt.text.find("<|file_sep|>", at)
        content = prompt.text[at: nxt]
        files.append((path, content))
        assert bodies[path].lstrip("\r\n").startswith(content.rstrip("\n"))
    healed = prompt.prefix[: len(prompt.prefix) - len(prompt.heal)]
    assert prompt.text == template.render(healed, prompt.suffix, "cur.py", files)
