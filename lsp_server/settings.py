"""The one settings model, in groups: `engine` (which engine, and `engine.remote` for a vLLM server),
`prompt` (what the model sees), `generation` (what it writes) and `scheduling` (when it is asked).

Editors send it as `initializationOptions` and in `workspace/didChangeConfiguration`: the object
itself or nested under `vllmLs`, with camelCase keys, each group a nested object
(`{"scheduling": {"debounceMs": 300}}`) or dotted keys (`{"scheduling.debounceMs": 300}`, as Helix's
TOML and VS Code's flat settings keys have them). The flat keys of vllm-ls 0.1 (`debounceMs`,
`engineUrl`, ...) are still read, each with one logged deprecation naming its new place.

It also generates `docs/configuration.md` and the VS Code extension's settings
(`vllm-ls settings-schema`), so every field's description is user documentation. Invalid values never
stop the server: the offending fields fall back to their defaults and the user is told which and why.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from engine import templates

from .logs import register_secret

SECTION = "vllmLs"
#: Decided on the bench's infill holes (docs/prompts.md).
SUFFIX_LINES_DEFAULT = 4
#: Settings whose values are secrets, under both spellings a client may use.
SECRET_FIELDS = ("apiKey", "api_key")


class _Group(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class RemoteSettings(_Group):
    """How to reach remote vLLM servers (used when `engine.url` is set)."""

    api_key: SecretStr | None = Field(
        default=None,
        description="The API key the vLLM server was started with (`--api-key`), sent as a bearer token. "
        "Prefer the environment variable named by `apiKeyEnv`. Never logged.",
    )
    api_key_env: str = Field(
        default="VLLM_API_KEY",
        description="The environment variable that holds the API key when `apiKey` is not set.",
    )
    ca_bundle: str | None = Field(
        default=None,
        description="A PEM file of CA certificates to verify `https://` servers with (e.g. a company CA) "
        "instead of the system's.",
    )
    tls_verify: bool = Field(
        default=True,
        description="Verify `https://` servers' certificates. Turning it off exposes the API key and your "
        "code to anyone on the path; use `caBundle` for private CAs instead.",
    )
    connect_timeout_s: float = Field(
        default=3.0, gt=0, le=120,
        description="Seconds to wait for a connection; a server that takes longer counts as down.",
    )
    read_timeout_s: float = Field(
        default=30.0, gt=0, le=600,
        description="Longest silence inside a response, in seconds (the first token waits for queueing "
        "and prefill).",
    )
    tokenizer: str | None = Field(
        default=None,
        description="A local copy of the served model's tokenizer (a `tokenizer.json` or a directory with "
        "one) for exact token budgets without asking the server's `/tokenize`.",
    )


class EngineSettings(_Group):
    """Which engine serves completions. Any change here builds a new engine; nothing else does."""

    url: list[str] = Field(
        default=[],
        description="URLs of remote vLLM OpenAI-compatible servers (e.g. `http://gpu-box:8000`). "
        "Empty: run the engine inside the server process. Several URLs: requests are spread over "
        "the healthy ones.",
    )
    model: str | None = Field(
        default=None,
        description="In-process engine: a model directory or name for vLLM; empty means the embedded "
        "SmolLM2-135M (converted on first use). Remote engine: the served model name to request; "
        "empty means the first model the server lists.",
    )
    kv_cache_memory_mb: int = Field(
        default=1024, ge=64,
        description="In-process engine: memory for vLLM's KV cache (and so for its prefix cache).",
    )
    max_model_len: int = Field(
        default=2048, ge=256, description="In-process engine: the longest prompt + completion, in tokens."
    )
    remote: RemoteSettings = Field(default_factory=RemoteSettings)

    @field_validator("url", mode="before")
    @classmethod
    def _one_or_many_urls(cls, value: Any) -> Any:
        if value is None or value == "":
            return []
        return [value] if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http:// or https:// URL")
        return [url.rstrip("/") for url in urls]


class PromptSettings(_Group):
    """What the model is shown: the template and the token budget around the cursor."""

    template: str | dict[str, Any] = Field(
        default="auto",
        description="Prompt template. `auto`: chosen from the model's special tokens (and name). A "
        "built-in name: `starcoder2`, `starcoder`, `santacoder`, `qwen2.5-coder`, `codegemma`, "
        "`deepseek-coder`, `codellama`, `codestral`, `prefix-only`, `prefix-only-paths`. Or a custom "
        "object: `{\"layout\": \"<pre>{prefix}<suf>{suffix}<mid>\", \"layoutWithPath\": ..., "
        "\"file\": \"<sep>{path}\\n{content}\", \"stop\": [...]}`.",
    )
    max_prompt_tokens: int = Field(
        default=1536, ge=64, le=131072,
        description="Most prompt tokens (counted by the model's tokenizer); capped by the model's "
        "context length minus `generation.maxTokens`. More context costs a slower first request per "
        "document; later keystrokes are served from vLLM's prefix cache.",
    )
    suffix_share: float = Field(
        default=0.25, ge=0.0, le=0.9,
        description="Share of `maxPromptTokens` for the text after the cursor (fill-in-the-middle "
        "models only); the text before the cursor gets the rest.",
    )
    context_documents: int = Field(
        default=3, ge=0, le=32,
        description="How many other open documents (most recently used first) may fill the prompt "
        "budget that the current document leaves, for models with file-separator tokens. 0: never.",
    )

    @field_validator("template")
    @classmethod
    def _valid_template(cls, value: str | dict[str, Any]) -> str | dict[str, Any]:
        if isinstance(value, str):
            if value.strip().lower() not in ("", "auto"):
                templates.builtin(value)
        else:
            templates.custom(value)
        return value


class GenerationSettings(_Group):
    """What the engine is asked to write, and when it stops."""

    multiline: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="`auto`: complete to the end of the line when the cursor has code after it, "
        "otherwise a block; `always` / `never` force one mode.",
    )
    max_tokens: int = Field(default=96, ge=1, le=4096, description="Most tokens generated for a block.")
    max_line_tokens: int = Field(
        default=48, ge=1, le=1024, description="Most tokens generated for a single-line completion."
    )
    max_lines: int = Field(default=8, ge=1, le=200, description="Most lines in a block completion.")
    syntax: bool = Field(
        default=True,
        description="With `multiline: auto`, decide from the syntax at the cursor (tree-sitter, for Python, "
        "JavaScript, TypeScript, Go and Rust) whether a block is expected (after a `:` or bracket that opens "
        "a body, on an empty line) or only the rest of the line (code after the cursor, a complete line). "
        "Off, or for other languages: a block unless code follows the cursor.",
    )
    suffix_lines: int = Field(
        default=SUFFIX_LINES_DEFAULT, ge=0, le=50,
        description="A block suggestion ends before a line that re-types one of this many non-blank lines "
        "after the cursor: the same code, or the same name assigned, defined or passed again. 0: only "
        "the other rules end a block.",
    )
    cover_closers: bool = Field(
        default=True,
        description="When a suggestion must end in a bracket or quote the editor already inserted after "
        "the cursor (`foo(|)`, `def f(|):`, `{|}`), offer it as replacing that closer (the item's range), "
        "so accepting leaves exactly one. Off: such a suggestion is only trimmed before the closer.",
    )
    auto_indent: bool = Field(
        default=True,
        description="With the cursor at column 0 of an empty line inside a body (an editor without "
        "auto-indent, or a blank line), complete after the indentation the body needs and offer it "
        "in front of the code. Without it the model starts with a line break and most such requests "
        "come back empty.",
    )
    speculate: bool = Field(
        default=True,
        description="After a suggestion is shown and the engine is idle, compute the completion that "
        "follows accepting it (at the lowest priority: any request that needs the engine stops it, and so "
        "does any keystroke but the accept), so accepting shows the next suggestion at once. Needs "
        "`reuseStream` and `scheduling.cache`.",
    )
    temperature: float = Field(
        default=0.0, ge=0.0, le=2.0,
        description="Sampling temperature; 0 is greedy (deterministic, best for ghost text).",
    )
    candidates: int = Field(
        default=3, ge=1, le=8,
        description="Completions asked for when the user invokes completion explicitly; duplicates "
        "are dropped and the rest are all offered. Typing-triggered requests ask for one.",
    )
    candidate_temperature: float = Field(
        default=0.6, ge=0.0, le=2.0,
        description="Sampling temperature for explicitly invoked requests with `candidates` > 1 "
        "(at 0 every candidate would be the same).",
    )
    early_stop: bool = Field(
        default=True,
        description="Stop the engine as soon as the completion is known to be complete "
        "(end of line, end of block) instead of generating up to the token limit.",
    )
    answer_early: bool = Field(
        default=True,
        description="Answer a typing-triggered request as soon as its first line is complete instead of "
        "waiting for the whole block (see `answerDeadlineMs`). Explicitly invoked requests always wait "
        "for whole candidates.",
    )
    answer_deadline_ms: int = Field(
        default=0, ge=0, le=60000,
        description="With `answerEarly`: how long a block may take to complete before the lines complete so "
        "far are shown (at least one). 0: show the first complete line at once.",
    )
    continue_in_background: bool = Field(
        default=True,
        description="After an early answer, keep generating the block in the background and keep its lines "
        "in the typed-ahead cache, so accepting or typing the first line shows the next ones without an "
        "engine call. Stopped by a keystroke that contradicts it, a newer request of the document that "
        "needs the engine, the end of the block, or a request waiting for an engine slot.",
    )
    reuse_stream: bool = Field(
        default=True,
        description="A keystroke that agrees with what the engine is generating does not abort it: the "
        "new request is served from that generation (waiting for the rest of its line if needed). Only a "
        "keystroke that contradicts it aborts it.",
    )


class SchedulingSettings(_Group):
    """When the engine is asked, and what is answered without it."""

    debounce_ms: int = Field(
        default=300, ge=0, le=5000,
        description="Wait this long after a request before asking the engine; a newer change or "
        "request for the same document within it drops the older one. Chosen with `vllm-ls bench` "
        "(docs/performance.md): typing at 6 characters per second, 150 ms let half of all keystrokes "
        "reach the engine and 300 ms one in twelve, with as many pauses served and a shorter wait.",
    )
    debounce: Literal["fixed", "adaptive"] = Field(
        default="fixed",
        description="`fixed`: wait `debounceMs`. `adaptive`: learn the interval from the typing "
        "rhythm and the engine's latency (within 20–750 ms; `debounceMs` until enough is known).",
    )
    cancel_previous: bool = Field(
        default=True,
        description="A newer request for a document aborts the engine work of the older one "
        "(the older one is answered with an empty result).",
    )
    cache: bool = Field(
        default=True,
        description="Answer from the typed-ahead cache when the user types the beginning of the "
        "suggestion shown (or deletes back into it), without asking the engine.",
    )
    request_timeout_ms: int = Field(
        default=30000, ge=100, le=600000,
        description="Longest time a completion may take, from the request to the answer; beyond it the "
        "engine work is aborted and the editor gets an empty result, so a stuck engine or server never "
        "holds a keystroke. The default suits a CPU engine under load; on a GPU a few seconds is plenty.",
    )
    max_in_flight: int = Field(
        default=4, ge=1, le=256,
        description="Most engine requests this server runs at once, across documents. A request that "
        "finds them all taken waits in a line as long as this bound (it leaves the line when its document "
        "changes); when the line is full the oldest waiter is answered empty. Running requests are never "
        "aborted for another document.",
    )


class Settings(_Group):
    """Everything a user can set, one group per concern."""

    model_config = ConfigDict(json_schema_extra={"title": "vllm-ls settings"})

    engine: EngineSettings = Field(default_factory=EngineSettings)
    prompt: PromptSettings = Field(default_factory=PromptSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    scheduling: SchedulingSettings = Field(default_factory=SchedulingSettings)

    def updated(self, changes: dict[str, Any]) -> Settings:
        """These settings with `changes` (any accepted spelling: dotted, nested, 0.1's flat names) on
        top; raises ValidationError on a bad value (for code and tests, not for what clients send)."""
        return Settings.model_validate(deep_merge(self.model_dump(by_alias=True), normalize(changes)))

    def public_dict(self) -> dict[str, Any]:
        """The settings as camelCase JSON, secrets masked: safe to log or show."""
        data = self.model_dump(by_alias=True, mode="json")
        key = self.engine.remote.api_key
        data["engine"]["remote"]["apiKey"] = ("***" if key.get_secret_value() else "") if key is not None else None
        return data


def leaves(model: type[BaseModel] = Settings, prefix: str = "") -> Iterator[tuple[str, type[BaseModel], str]]:
    """Every setting that holds a value: (dotted camelCase path, the group it belongs to, its field name)."""
    for name, info in model.model_fields.items():
        path = f"{prefix}{info.alias or name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from leaves(annotation, path + ".")
        else:
            yield path, model, name


#: The flat settings of vllm-ls 0.1, each read in its new place (a setting added since has no old name).
_V01_KEYS = (
    "engineUrl", "model", "kvCacheMemoryMb", "maxModelLen", "apiKey", "apiKeyEnv", "caBundle", "tlsVerify",
    "connectTimeoutS", "readTimeoutS", "tokenizer", "template", "maxPromptTokens", "suffixShare",
    "contextDocuments", "multiline", "maxTokens", "maxLineTokens", "maxLines", "temperature", "candidates",
    "candidateTemperature", "cache", "debounceMs", "debounce", "cancelPrevious", "earlyStop",
    "requestTimeoutMs", "maxInFlight",
)


def _legacy_keys() -> dict[str, str]:
    """0.1's flat keys (camelCase and snake_case) → their dotted path today."""
    by_leaf = {path.rsplit(".", 1)[1]: (path, name) for path, _, name in leaves()}
    by_leaf["engineUrl"] = ("engine.url", "engine_url")
    keys: dict[str, str] = {}
    for old in _V01_KEYS:
        path, name = by_leaf[old]
        keys[old] = keys[name] = path
    return keys


LEGACY_KEYS = _legacy_keys()


def extract_section(raw: Any) -> dict[str, Any]:
    """The settings object from what a client sent: the object itself or nested under `vllmLs`."""
    if not isinstance(raw, dict):
        return {}
    for key in (SECTION, "vllm-ls", "vllm_ls"):
        if isinstance(raw.get(key), dict):
            return raw[key]
    return raw


def normalize(raw: dict[str, Any], notes: list[str] | None = None) -> dict[str, Any]:
    """`raw` with dotted keys expanded and 0.1's flat keys moved into their groups (a note each)."""
    groups = {info.alias for info in Settings.model_fields.values()} | set(Settings.model_fields)
    result: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            continue
        if "." in key:
            path = key
        elif key in groups:
            _merge_into(result, [key], copy.deepcopy(value) if isinstance(value, dict) else value)
            continue
        elif key in LEGACY_KEYS:
            path = LEGACY_KEYS[key]
            if notes is not None:
                notes.append(f"setting {key!r} is now {path!r}; the old name still works for now")
        else:
            path = key  # unknown: validation names it
        _merge_into(result, path.split("."), copy.deepcopy(value))
    return result


def _merge_into(target: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        nested = target.get(part)
        if not isinstance(nested, dict):
            nested = target[part] = {}
        target = nested
    last = path[-1]
    if isinstance(value, dict) and isinstance(target.get(last), dict):
        for key, inner in value.items():
            _merge_into(target[last], [key], inner)
    else:
        target[last] = value


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`base` with `override` on top, group by group (both already normalized)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        _merge_into(merged, [key], copy.deepcopy(value))
    return merged


def parse_settings(
    raw: Any, base: dict[str, Any] | None = None, deprecations: list[str] | None = None,
) -> tuple[Settings, list[str]]:
    """Validate client settings on top of `base` (e.g. CLI flags); bad fields fall back.

    Returns the settings and one message per rejected field, naming the field and the reason.
    Notes about deprecated keys go to `deprecations` (to be logged, not shown).
    """
    notes: list[str] = []
    data = normalize(base or {}, notes)
    if raw is not None:
        data = deep_merge(data, normalize(extract_section(raw), notes))
    if deprecations is not None:
        deprecations.extend(notes)
    for secret in _secrets(data):
        register_secret(secret)  # before anything can log or echo it
    problems: list[str] = []
    if raw is not None and not isinstance(raw, dict):
        problems.append(f"settings must be a JSON object, got {type(raw).__name__}; using defaults")
    for _ in range(64):
        try:
            return Settings.model_validate(data), problems
        except ValidationError as exc:
            for error in exc.errors():
                path = [str(part) for part in error["loc"] if isinstance(part, str)]
                name = ".".join(to_camel(part) for part in path)
                if error["type"] == "extra_forbidden":
                    problems.append(f"unknown setting {name!r} ignored")
                else:
                    shown = "***" if path and path[-1] in SECRET_FIELDS else json.dumps(
                        error.get("input"), default=str)[:80]
                    problems.append(f"setting {name!r}: {error['msg']} (got {shown}); using the default")
                _drop(data, path)
    return Settings(), problems


def _drop(data: dict[str, Any], path: list[str]) -> None:
    """Remove the value at `path` (camelCase or snake_case keys) so its default applies."""
    target: Any = data
    for part in path[:-1]:
        nxt = target.get(part, target.get(to_camel(part))) if isinstance(target, dict) else None
        if not isinstance(nxt, dict):
            if isinstance(target, dict):  # a group that is not an object: the whole group falls back
                target.pop(part, None)
                target.pop(to_camel(part), None)
            return
        target = nxt
    if path and isinstance(target, dict):
        target.pop(path[-1], None)
        target.pop(to_camel(path[-1]), None)
    elif not path:
        data.clear()


def _secrets(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            if key in SECRET_FIELDS and isinstance(value, (str, int, float)):
                yield str(value)
            else:
                yield from _secrets(value)


def settings_schema() -> dict[str, Any]:
    return Settings.model_json_schema(by_alias=True)


def dotted(raw: dict[str, Any]) -> dict[str, Any]:
    """Settings in any accepted spelling as one flat dict keyed by dotted paths
    (`{"scheduling": {"debounceMs": 0}}` → `{"scheduling.debounceMs": 0}`): easy to merge and compare."""
    flat: dict[str, Any] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict) and (not path or path in GROUP_PATHS):
            for key, inner in value.items():
                walk(inner, f"{path}.{key}" if path else key)
        else:
            flat[".".join(to_camel(part) for part in path.split("."))] = value

    walk(normalize(raw), "")
    return flat


#: Dotted paths of the groups (`engine`, `engine.remote`, ...): what `dotted` descends into.
GROUP_PATHS = frozenset(path.rsplit(".", 1)[0] for path, _, _ in leaves()) | frozenset(
    ".".join(path.split(".")[:i]) for path, _, _ in leaves() for i in range(1, path.count(".") + 1))


def is_engine_setting(path: str) -> bool:
    """Whether the dotted setting chooses or builds the engine (changing it loads a new one)."""
    return path == "engine" or path.startswith("engine.")
