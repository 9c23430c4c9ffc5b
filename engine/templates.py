"""Prompt templates per model family. They belong to models, not to LSP: pure functions over strings.

A template is a layout string with placeholders, e.g. `<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>`:
`{prefix}` (required, once), `{suffix}` (at most once: prefix-only templates have none) and, in the
variant with a file path, `{path}`. Other open documents are rendered with `file` (`{path}`, `{content}`)
and come before the layout. Substitution is one pass over the layout's own pieces, so code that happens
to contain `{suffix}` is never substituted again.

Which family a model belongs to is read from its tokenizer's special tokens first (they are what the
model was trained with) and from its name only when the tokens are unknown (a remote server whose
tokenizer we have not seen).

Suffix-before-prefix (SPM) layouts are used for the families trained on them (BigCode's FIM
training, used for SantaCoder and StarCoder, mixes PSM and SPM half and half; Code Llama's reference
code has a suffix-first mode; Codestral only has SPM). StarCoder2 is assumed to share BigCode's FIM
mix; a custom template gives PSM if the infill benchmark says otherwise. When typing at the
cursor the suffix does not change, so in SPM the only tokens that change from one keystroke to the
next are the last ones of the prefix: everything before them is served by vLLM's prefix cache. In PSM
the whole suffix follows the changing end of the prefix and is recomputed on every keystroke.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PREFIX, SUFFIX, PATH, CONTENT = "{prefix}", "{suffix}", "{path}", "{content}"
_PLACEHOLDER = re.compile(r"(\{prefix\}|\{suffix\}|\{path\}|\{content\})")


def _substitute(layout: str, values: Mapping[str, str]) -> str:
    return "".join(values.get(piece, piece) for piece in _PLACEHOLDER.split(layout))


@dataclass(frozen=True)
class Template:
    """How the text around the cursor (and other open files) becomes one prompt string."""

    name: str
    #: The cursor's file: `{prefix}` and optionally `{suffix}`.
    layout: str = PREFIX
    #: The same with a file path header (`{path}`), for models trained with file paths; None: no paths.
    layout_with_path: str | None = None
    #: One other open document (`{path}`, `{content}`); None: the model has no tokens for file boundaries.
    file: str | None = None
    #: Strings that end generation (end-of-middle, end-of-text, the start of another file).
    stop: tuple[str, ...] = ()
    #: Vocabulary entries that identify the family (all must be present).
    requires: frozenset[str] = field(default_factory=frozenset)
    #: Lower-case substrings of model names that identify the family when the vocabulary is unknown.
    names: tuple[str, ...] = ()

    @property
    def uses_suffix(self) -> bool:
        return SUFFIX in self.layout

    @property
    def suffix_first(self) -> bool:
        return self.uses_suffix and self.layout.index(SUFFIX) < self.layout.index(PREFIX)

    @property
    def takes_files(self) -> bool:
        return self.file is not None

    def render(
        self, prefix: str, suffix: str = "", path: str | None = None,
        files: Sequence[tuple[str, str]] = (),
    ) -> str:
        """The prompt: other files in the order given, then the cursor's file around the hole."""
        head = "".join(self.render_file(p, c) for p, c in files) if self.file else ""
        layout = self.layout_with_path if path and self.layout_with_path else self.layout
        return head + _substitute(layout, {PREFIX: prefix, SUFFIX: suffix, PATH: path or ""})

    def render_file(self, path: str, content: str) -> str:
        if self.file is None:
            return ""
        if content and not content.endswith("\n"):
            content += "\n"  # the next file's marker starts on a line of its own
        return _substitute(self.file, {PATH: path, CONTENT: content})

    def overhead(self, path: str | None = None) -> str:
        """The template's own text around an empty prefix and suffix (its token cost is fixed)."""
        return self.render("", "", path)

    def with_stop(self, vocabulary: frozenset[str]) -> Template:
        """Keep only the stop strings that are special tokens of this model (when it is known)."""
        if not vocabulary:
            return self
        kept = tuple(s for s in self.stop if s in vocabulary or not _looks_special(s))
        return Template(self.name, self.layout, self.layout_with_path, self.file, kept, self.requires, self.names)


def _looks_special(text: str) -> bool:
    return bool(re.fullmatch(r"▁?<[^<>\s]+>|\[[A-Z_]+\]", text))


def _t(name: str, layout: str, *, path: str | None = None, file: str | None = None,
       stop: Iterable[str] = (), requires: Iterable[str] = (), names: Iterable[str] = ()) -> Template:
    return Template(name, layout, path, file, tuple(stop), frozenset(requires), tuple(names))


PREFIX_ONLY = _t("prefix-only", PREFIX, stop=("<|endoftext|>", "<file_sep>", "<filename>", "<|im_end|>"))

#: The embedded SmolLM2 has StarCoder2's `<file_sep>` in its vocabulary; whether a path header helps a
#: model this small is for the infill benchmark to decide, so it is not chosen automatically.
PREFIX_ONLY_PATHS = _t(
    "prefix-only-paths", PREFIX,
    path="<file_sep>{path}\n{prefix}",
    file="<file_sep>{path}\n{content}",
    stop=("<|endoftext|>", "<file_sep>", "<filename>", "<|im_end|>"),
    requires=("<file_sep>",),
)

# StarCoder2 was trained on repository-level data: `<file_sep>path\ncode` per file, the FIM file's path
# inside the FIM prefix. SPM (suffix first) is half of the BigCode FIM training data.
STARCODER2 = _t(
    "starcoder2", "<fim_prefix><fim_suffix>{suffix}<fim_middle>{prefix}",
    path="<file_sep><fim_prefix><fim_suffix>{suffix}<fim_middle>{path}\n{prefix}",
    file="<file_sep>{path}\n{content}",
    stop=("<|endoftext|>", "<file_sep>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    requires=("<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>"),
    names=("starcoder2",),
)
# StarCoder / StarCoderBase: `<filename>path\ncode` metadata, no multi-file separator of its own.
STARCODER = _t(
    "starcoder", "<fim_prefix><fim_suffix>{suffix}<fim_middle>{prefix}",
    path="<filename>{path}\n<fim_prefix><fim_suffix>{suffix}<fim_middle>{prefix}",
    stop=("<|endoftext|>", "<filename>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    requires=("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    names=("starcoder", "stable-code", "stablecode"),
)
SANTACODER = _t(
    "santacoder", "<fim-prefix><fim-suffix>{suffix}<fim-middle>{prefix}",
    stop=("<|endoftext|>", "<fim-prefix>", "<fim-suffix>", "<fim-middle>"),
    requires=("<fim-prefix>", "<fim-suffix>", "<fim-middle>"),
    names=("santacoder",),
)
# Qwen2.5-Coder: PSM only; repository-level context as `<|file_sep|>path\ncode`.
QWEN25_CODER = _t(
    "qwen2.5-coder", "<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>",
    path="<|file_sep|>{path}\n<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>",
    file="<|file_sep|>{path}\n{content}",
    stop=("<|endoftext|>", "<|file_sep|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
          "<|fim_pad|>", "<|repo_name|>", "<|im_end|>"),
    requires=("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_sep|>"),
    names=("qwen2.5-coder", "qwen2-coder", "qwen3-coder", "codeqwen"),
)
# CodeGemma: the same FIM tokens as Qwen, but `<|file_separator|>` between files.
CODEGEMMA = _t(
    "codegemma", "<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>",
    file="{path}\n{content}<|file_separator|>",
    stop=("<|file_separator|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<eos>",
          "<end_of_turn>"),
    requires=("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_separator|>"),
    names=("codegemma",),
)
DEEPSEEK_CODER = _t(
    "deepseek-coder", "<｜fim▁begin｜>{prefix}<｜fim▁hole｜>{suffix}<｜fim▁end｜>",
    stop=("<｜end▁of▁sentence｜>", "<|EOT|>", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
    requires=("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
    names=("deepseek-coder",),
)
# Code Llama's suffix-first mode, as its reference implementation formats it:
# "<PRE> <SUF>{suffix} <MID> {prefix}". Its tokenizer names the tokens "▁<PRE>" etc.
CODELLAMA = _t(
    "codellama", "<PRE> <SUF>{suffix} <MID> {prefix}",
    stop=("<EOT>", "▁<EOT>", "</s>"),
    requires=("▁<PRE>", "▁<SUF>", "▁<MID>"),
    names=("codellama", "code-llama"),
)
# Codestral / Mistral FIM has only one order, suffix first: [SUFFIX]suffix[PREFIX]prefix.
CODESTRAL = _t(
    "codestral", "[SUFFIX]{suffix}[PREFIX]{prefix}",
    stop=("</s>", "[SUFFIX]", "[PREFIX]", "[MIDDLE]"),
    requires=("[SUFFIX]", "[PREFIX]"),
    names=("codestral",),
)

#: The families `auto` chooses from, in order of precedence: a vocabulary matching several (Qwen and
#: CodeGemma share FIM tokens; StarCoder2 has StarCoder's) takes the first whose `requires` all match.
AUTO: tuple[Template, ...] = (
    QWEN25_CODER, CODEGEMMA, STARCODER2, STARCODER, SANTACODER, DEEPSEEK_CODER, CODELLAMA, CODESTRAL,
)
BUILTIN: tuple[Template, ...] = (*AUTO, PREFIX_ONLY, PREFIX_ONLY_PATHS)
_BY_NAME = {t.name: t for t in BUILTIN}
#: Alternative spellings users write in settings.
_ALIASES = {"qwen": "qwen2.5-coder", "deepseek": "deepseek-coder", "mistral": "codestral",
            "code-llama": "codellama", "none": "prefix-only", "prefix": "prefix-only"}


def builtin(name: str) -> Template:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _BY_NAME:
        raise ValueError(f"unknown template {name!r}; known: {', '.join(sorted(_BY_NAME))}")
    return _BY_NAME[key]


def choose(model_name: str, special_tokens: frozenset[str]) -> Template:
    """The template for a model, from its tokenizer's special tokens and, failing that, its name."""
    # CodeLlama's tokenizer spells its tokens with SentencePiece's word marker; accept both spellings.
    vocabulary = special_tokens | {s.removeprefix("▁") for s in special_tokens}
    for template in AUTO:
        if template.requires <= vocabulary:
            return template.with_stop(special_tokens)
    if not special_tokens:
        lowered = model_name.lower()
        for template in AUTO:
            if any(n in lowered for n in template.names):
                return template
    return PREFIX_ONLY.with_stop(special_tokens)


def from_setting(value: str | Mapping[str, Any] | None, model_name: str, special_tokens: frozenset[str]) -> Template:
    """The template a `template` setting asks for: `auto`, a built-in name, or a custom layout."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return choose(model_name, special_tokens)
    if isinstance(value, str):
        return builtin(value).with_stop(special_tokens)
    return custom(value)


def custom(spec: Mapping[str, Any]) -> Template:
    """A user template: `{"layout": "...{prefix}...{suffix}...", "layoutWithPath": ..., "file": ..., "stop": [...]}`.

    Raises ValueError with the reason when the spec cannot work.
    """
    known = {"name", "layout", "layoutWithPath", "file", "stop"}
    unknown = set(spec) - known
    if unknown:
        raise ValueError(f"unknown template keys {sorted(unknown)}; known: {sorted(known)}")
    layout = spec.get("layout")
    if not isinstance(layout, str):
        raise ValueError("a custom template needs `layout`, a string with {prefix} (and usually {suffix})")
    _check_layout(layout, "layout", allow_path=False)
    with_path = spec.get("layoutWithPath")
    if with_path is not None:
        if not isinstance(with_path, str):
            raise ValueError("`layoutWithPath` must be a string")
        _check_layout(with_path, "layoutWithPath", allow_path=True)
        if (SUFFIX in with_path) != (SUFFIX in layout):
            raise ValueError("`layout` and `layoutWithPath` must agree on whether they use {suffix}")
    file = spec.get("file")
    if file is not None:
        if not isinstance(file, str) or CONTENT not in file or file.count(CONTENT) != 1:
            raise ValueError("`file` must be a string with {content} once (and usually {path})")
        if PREFIX in file or SUFFIX in file:
            raise ValueError("`file` may use only {path} and {content}")
    stop = spec.get("stop", [])
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise ValueError("`stop` must be a list of non-empty strings")
    name = spec.get("name", "custom")
    return Template(str(name), layout, with_path, file, tuple(stop))


def _check_layout(layout: str, key: str, allow_path: bool) -> None:
    if layout.count(PREFIX) != 1:
        raise ValueError(f"`{key}` must contain {{prefix}} exactly once")
    if layout.count(SUFFIX) > 1:
        raise ValueError(f"`{key}` may contain {{suffix}} at most once")
    if CONTENT in layout:
        raise ValueError(f"`{key}` may not contain {{content}} (that belongs to `file`)")
    if PATH in layout and not allow_path:
        raise ValueError(f"`{key}` may not contain {{path}}; put the path variant in `layoutWithPath`")
    if allow_path and layout.count(PATH) != 1:
        raise ValueError(f"`{key}` must contain {{path}} exactly once")
    if layout.endswith(SUFFIX):
        raise ValueError(f"`{key}` may not end with {{suffix}}: the model would continue the suffix")
    if layout.find(SUFFIX) < layout.index(PREFIX) and not layout.endswith(PREFIX):
        # Text after a final {prefix} would sit between the prefix and the completion.
        raise ValueError(f"`{key}`: when {{prefix}} comes after the suffix nothing may follow it")
