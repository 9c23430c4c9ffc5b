"""The FIM template registry: every layout pinned byte for byte, auto choice, validated custom templates."""

import pytest

from engine import templates
from engine.templates import builtin, choose, custom, from_setting

PREFIX, SUFFIX, PATH = "def f(x):\n    ret", "\n\nprint(f(1))\n", "pkg/mod.py"
FILES = [("pkg/util.py", "X = 1\n"), ("README.md", "# Title")]

# name → (plain layout, with a path, with a path and two other files)
GOLDEN = {
    "prefix-only": (
        "def f(x):\n    ret",
        "def f(x):\n    ret",
        "def f(x):\n    ret",
    ),
    "prefix-only-paths": (
        "def f(x):\n    ret",
        "<file_sep>pkg/mod.py\ndef f(x):\n    ret",
        "<file_sep>pkg/util.py\nX = 1\n<file_sep>README.md\n# Title\n<file_sep>pkg/mod.py\ndef f(x):\n    ret",
    ),
    "starcoder2": (
        "<fim_prefix><fim_suffix>\n\nprint(f(1))\n<fim_middle>def f(x):\n    ret",
        "<file_sep><fim_prefix><fim_suffix>\n\nprint(f(1))\n<fim_middle>pkg/mod.py\ndef f(x):\n    ret",
        "<file_sep>pkg/util.py\nX = 1\n<file_sep>README.md\n# Title\n"
        "<file_sep><fim_prefix><fim_suffix>\n\nprint(f(1))\n<fim_middle>pkg/mod.py\ndef f(x):\n    ret",
    ),
    "starcoder": (
        "<fim_prefix><fim_suffix>\n\nprint(f(1))\n<fim_middle>def f(x):\n    ret",
        "<filename>pkg/mod.py\n<fim_prefix><fim_suffix>\n\nprint(f(1))\n<fim_middle>def f(x):\n    ret",
        "<filename>pkg/mod.py\n<fim_prefix><fim_suffix>\n\nprint(f(1))\n<fim_middle>def f(x):\n    ret",
    ),
    "santacoder": (
        "<fim-prefix><fim-suffix>\n\nprint(f(1))\n<fim-middle>def f(x):\n    ret",
        "<fim-prefix><fim-suffix>\n\nprint(f(1))\n<fim-middle>def f(x):\n    ret",
        "<fim-prefix><fim-suffix>\n\nprint(f(1))\n<fim-middle>def f(x):\n    ret",
    ),
    "qwen2.5-coder": (
        "<|fim_prefix|>def f(x):\n    ret<|fim_suffix|>\n\nprint(f(1))\n<|fim_middle|>",
        "<|file_sep|>pkg/mod.py\n<|fim_prefix|>def f(x):\n    ret<|fim_suffix|>\n\nprint(f(1))\n<|fim_middle|>",
        "<|file_sep|>pkg/util.py\nX = 1\n<|file_sep|>README.md\n# Title\n"
        "<|file_sep|>pkg/mod.py\n<|fim_prefix|>def f(x):\n    ret<|fim_suffix|>\n\nprint(f(1))\n<|fim_middle|>",
    ),
    "codegemma": (
        "<|fim_prefix|>def f(x):\n    ret<|fim_suffix|>\n\nprint(f(1))\n<|fim_middle|>",
        "<|fim_prefix|>def f(x):\n    ret<|fim_suffix|>\n\nprint(f(1))\n<|fim_middle|>",
        "pkg/util.py\nX = 1\n<|file_separator|>README.md\n# Title\n<|file_separator|>"
        "<|fim_prefix|>def f(x):\n    ret<|fim_suffix|>\n\nprint(f(1))\n<|fim_middle|>",
    ),
    "deepseek-coder": (
        "<｜fim▁begin｜>def f(x):\n    ret<｜fim▁hole｜>\n\nprint(f(1))\n<｜fim▁end｜>",
        "<｜fim▁begin｜>def f(x):\n    ret<｜fim▁hole｜>\n\nprint(f(1))\n<｜fim▁end｜>",
        "<｜fim▁begin｜>def f(x):\n    ret<｜fim▁hole｜>\n\nprint(f(1))\n<｜fim▁end｜>",
    ),
    "codellama": (
        "<PRE> <SUF>\n\nprint(f(1))\n <MID> def f(x):\n    ret",
        "<PRE> <SUF>\n\nprint(f(1))\n <MID> def f(x):\n    ret",
        "<PRE> <SUF>\n\nprint(f(1))\n <MID> def f(x):\n    ret",
    ),
    "codestral": (
        "[SUFFIX]\n\nprint(f(1))\n[PREFIX]def f(x):\n    ret",
        "[SUFFIX]\n\nprint(f(1))\n[PREFIX]def f(x):\n    ret",
        "[SUFFIX]\n\nprint(f(1))\n[PREFIX]def f(x):\n    ret",
    ),
}


def test_every_builtin_has_a_golden_layout():
    assert set(GOLDEN) == {t.name for t in templates.BUILTIN}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_layouts(name):
    template = builtin(name)
    plain, with_path, with_files = GOLDEN[name]
    assert template.render(PREFIX, SUFFIX) == plain
    assert template.render(PREFIX, SUFFIX, PATH) == with_path
    assert template.render(PREFIX, SUFFIX, PATH, FILES) == with_files


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_placeholders_inside_code_are_not_substituted(name):
    template = builtin(name)
    tricky = "s = '{suffix}{prefix}{path}{content}'"
    rendered = template.render(tricky, tricky, PATH, [("a.py", tricky)])
    # Every occurrence of the code survives verbatim: one pass over the layout's own pieces.
    expected = 1 + template.uses_suffix + (template.takes_files)
    assert rendered.count(tricky) == expected


def test_suffix_first_families():
    spm = {t.name for t in templates.BUILTIN if t.suffix_first}
    assert spm == {"starcoder2", "starcoder", "santacoder", "codellama", "codestral"}
    assert not builtin("prefix-only").uses_suffix


QWEN_VOCAB = frozenset({"<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
                        "<|repo_name|>", "<|file_sep|>", "<|im_start|>", "<|im_end|>"})
GEMMA_VOCAB = frozenset({"<bos>", "<eos>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
                         "<|file_separator|>", "<start_of_turn>", "<end_of_turn>"})
STARCODER2_VOCAB = frozenset({"<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>",
                              "<repo_name>", "<file_sep>", "<issue_start>", "<filename>", "<gh_stars>"})
STARCODER_VOCAB = frozenset({"<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>",
                             "<filename>", "<gh_stars>", "<reponame>"})
SANTA_VOCAB = frozenset({"<|endoftext|>", "<fim-prefix>", "<fim-middle>", "<fim-suffix>", "<fim-pad>"})
DEEPSEEK_VOCAB = frozenset({"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜fim▁hole｜>", "<｜fim▁begin｜>",
                            "<｜fim▁end｜>", "<|EOT|>"})
CODELLAMA_VOCAB = frozenset({"<s>", "</s>", "<unk>", "▁<PRE>", "▁<MID>", "▁<SUF>", "▁<EOT>"})
CODESTRAL_VOCAB = frozenset({"<s>", "</s>", "[INST]", "[/INST]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]"})
SMOLLM2_VOCAB = frozenset({"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>",
                           "<file_sep>", "<filename>", "<gh_stars>"})


@pytest.mark.parametrize("vocabulary, expected", [
    (QWEN_VOCAB, "qwen2.5-coder"),
    (GEMMA_VOCAB, "codegemma"),
    (STARCODER2_VOCAB, "starcoder2"),
    (STARCODER_VOCAB, "starcoder"),
    (SANTA_VOCAB, "santacoder"),
    (DEEPSEEK_VOCAB, "deepseek-coder"),
    (CODELLAMA_VOCAB, "codellama"),
    (CODESTRAL_VOCAB, "codestral"),
    # The embedded model: StarCoder2's file tokens but no FIM tokens → prefix-only.
    (SMOLLM2_VOCAB, "prefix-only"),
    (frozenset({"<s>", "</s>"}), "prefix-only"),
])
def test_chosen_from_the_vocabulary_even_under_a_misleading_name(vocabulary, expected):
    assert choose("some/starcoder2-or-qwen2.5-coder-fork", vocabulary).name == expected


@pytest.mark.parametrize("name, expected", [
    ("Qwen/Qwen2.5-Coder-7B", "qwen2.5-coder"),
    ("bigcode/starcoder2-3b", "starcoder2"),
    ("bigcode/starcoderbase-1b", "starcoder"),
    ("deepseek-ai/deepseek-coder-1.3b-base", "deepseek-coder"),
    ("codellama/CodeLlama-7b-hf", "codellama"),
    ("google/codegemma-2b", "codegemma"),
    ("mistralai/Codestral-22B-v0.1", "codestral"),
    ("mistralai/Mistral-7B-v0.1", "prefix-only"),
    ("HuggingFaceTB/SmolLM2-135M-Instruct", "prefix-only"),
])
def test_chosen_from_the_name_when_the_vocabulary_is_unknown(name, expected):
    assert choose(name, frozenset()).name == expected


def test_stop_strings_keep_only_special_tokens_the_model_has():
    chosen = choose("", SMOLLM2_VOCAB)
    assert chosen.stop == ("<|endoftext|>", "<file_sep>", "<filename>", "<|im_end|>")
    codellama = choose("", CODELLAMA_VOCAB)
    assert codellama.stop == ("▁<EOT>", "</s>")
    # Unknown vocabulary: keep them all.
    assert choose("starcoder2", frozenset()).stop == builtin("starcoder2").stop


def test_setting_auto_name_or_custom():
    assert from_setting("auto", "", QWEN_VOCAB).name == "qwen2.5-coder"
    assert from_setting(None, "", QWEN_VOCAB).name == "qwen2.5-coder"
    assert from_setting("prefix-only-paths", "", SMOLLM2_VOCAB).name == "prefix-only-paths"
    assert from_setting("Qwen", "", frozenset()).name == "qwen2.5-coder"
    mine = from_setting({"layout": "<A>{prefix}<B>{suffix}<C>", "stop": ["<C>"]}, "", frozenset())
    assert mine.render("p", "s") == "<A>p<B>s<C>" and mine.stop == ("<C>",) and not mine.suffix_first


def test_custom_template_with_path_and_files():
    mine = custom({
        "name": "mine", "layout": "<S>{suffix}<P>{prefix}", "layoutWithPath": "# {path}\n<S>{suffix}<P>{prefix}",
        "file": "# {path}\n{content}",
    })
    assert mine.suffix_first and mine.takes_files
    assert mine.render("p", "s", "a.py", [("b.py", "B")]) == "# b.py\nB\n# a.py\n<S>s<P>p"


@pytest.mark.parametrize("spec, reason", [
    ({}, "needs `layout`"),
    ({"layout": "no placeholders"}, "{prefix} exactly once"),
    ({"layout": "{prefix}{prefix}"}, "{prefix} exactly once"),
    ({"layout": "{prefix}<m>{suffix}"}, "may not end with {suffix}"),
    ({"layout": "{suffix}<m>{suffix}{prefix}"}, "at most once"),
    ({"layout": "<s>{suffix}<p>{prefix}<m>"}, "nothing may follow"),
    ({"layout": "{prefix}", "extra": 1}, "unknown template keys"),
    ({"layout": "{path}{prefix}"}, "layoutWithPath"),
    ({"layout": "{prefix}<s>{suffix}<m>", "layoutWithPath": "{prefix}<s>{suffix}<m>"}, "{path} exactly once"),
    ({"layout": "{prefix}<s>{suffix}<m>", "layoutWithPath": "{path}{prefix}"}, "must agree"),
    ({"layout": "{prefix}", "file": "{path}"}, "{content} once"),
    ({"layout": "{prefix}", "file": "{content}{prefix}"}, "only {path} and {content}"),
    ({"layout": "{prefix}", "stop": "x"}, "list of non-empty strings"),
    ({"layout": "{prefix}", "stop": [""]}, "list of non-empty strings"),
])
def test_custom_templates_are_validated(spec, reason):
    with pytest.raises(ValueError, match=reason.replace("{", r"\{").replace("}", r"\}").replace("`", ".")):
        custom(spec)


def test_unknown_builtin_names_the_known_ones():
    with pytest.raises(ValueError, match="starcoder2"):
        builtin("gpt-17")
