"""The one settings model. Editors send it as `initializationOptions` and in
`workspace/didChangeConfiguration` (either the object itself or nested under `vllmLs`).

It also generates `docs/configuration.md` and the VS Code extension's settings
(`python -m lsp_server settings-schema`), so every field's description is user documentation.
Invalid values never stop the server: the offending fields fall back to their defaults and the user
is told which ones and why.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from engine import templates
from .logs import register_secret

SECTION = "vllmLs"
#: Settings whose values are secrets, under both spellings a client may use.
SECRET_FIELDS = ("apiKey", "api_key")


class Settings(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True,
        json_schema_extra={"title": "vllm-ls settings"},
    )

    # -- engine -------------------------------------------------------------------------------
    engine_url: list[str] = Field(
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
    api_key: SecretStr | None = Field(
        default=None,
        description="Remote engine: the API key the vLLM server was started with (`--api-key`), sent as a "
        "bearer token. Prefer the environment variable named by `apiKeyEnv`. Never logged.",
    )
    api_key_env: str = Field(
        default="VLLM_API_KEY",
        description="Remote engine: the environment variable that holds the API key when `apiKey` is not set.",
    )
    ca_bundle: str | None = Field(
        default=None,
        description="Remote engine: a PEM file of CA certificates to verify `https://` servers with "
        "(e.g. a company CA) instead of the system's.",
    )
    tls_verify: bool = Field(
        default=True,
        description="Remote engine: verify `https://` servers' certificates. Turning it off exposes the "
        "API key and your code to anyone on the path; use `caBundle` for private CAs instead.",
    )
    connect_timeout_s: float = Field(
        default=3.0, gt=0, le=120,
        description="Remote engine: seconds to wait for a connection; a server that takes longer counts as down.",
    )
    read_timeout_s: float = Field(
        default=30.0, gt=0, le=600,
        description="Remote engine: longest silence inside a response, in seconds (the first token waits "
        "for queueing and prefill).",
    )
    tokenizer: str | None = Field(
        default=None,
        description="Remote engine: a local copy of the served model's tokenizer (a `tokenizer.json` or a "
        "directory with one) for exact token budgets without asking the server's `/tokenize`.",
    )

    # -- prompt -------------------------------------------------------------------------------
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
        "context length minus `maxTokens`. More context costs a slower first request per document; "
        "later keystrokes are served from vLLM's prefix cache.",
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
    # -- generation ---------------------------------------------------------------------------
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
    cache: bool = Field(
        default=True,
        description="Answer from the typed-ahead cache when the user types the beginning of the "
        "suggestion shown (or deletes back into it), without asking the engine.",
    )

    # -- scheduling ---------------------------------------------------------------------------
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
    early_stop: bool = Field(
        default=True,
        description="Stop the engine as soon as the completion is known to be complete "
        "(end of line, end of block) instead of generating up to the token limit.",
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

    @field_validator("template")
    @classmethod
    def _valid_template(cls, value: str | dict[str, Any]) -> str | dict[str, Any]:
        if isinstance(value, str):
            if value.strip().lower() not in ("", "auto"):
                templates.builtin(value)
        else:
            templates.custom(value)
        return value

    @field_validator("engine_url", mode="before")
    @classmethod
    def _one_or_many_urls(cls, value: Any) -> Any:
        if value is None or value == "":
            return []
        return [value] if isinstance(value, str) else value

    @field_validator("engine_url")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http:// or https:// URL")
        return [url.rstrip("/") for url in urls]

    def public_dict(self) -> dict[str, Any]:
        """The settings as camelCase JSON, secrets masked: safe to log or show."""
        data = self.model_dump(by_alias=True, mode="json")
        for key, value in self.model_dump(by_alias=True).items():
            if isinstance(value, SecretStr):
                data[key] = "***" if value.get_secret_value() else ""
        return data


def extract_section(raw: Any) -> dict[str, Any]:
    """The settings object from what a client sent: the object itself or nested under `vllmLs`."""
    if not isinstance(raw, dict):
        return {}
    for key in (SECTION, "vllm-ls", "vllm_ls"):
        if isinstance(raw.get(key), dict):
            return raw[key]
    return raw


def parse_settings(raw: Any, base: dict[str, Any] | None = None) -> tuple[Settings, list[str]]:
    """Validate client settings on top of `base` (e.g. CLI flags); bad fields fall back.

    Returns the settings and one message per rejected field, naming the field and the reason.
    """
    data = {**(base or {}), **extract_section(raw)} if raw is not None else dict(base or {})
    for key in SECRET_FIELDS:
        if isinstance(data.get(key), (str, int, float)):
            register_secret(str(data[key]))  # before anything can log or echo it
    problems: list[str] = []
    if raw is not None and not isinstance(raw, dict):
        problems.append(f"settings must be a JSON object, got {type(raw).__name__}; using defaults")
    for _ in range(len(data) + 1):
        try:
            return Settings.model_validate(data), problems
        except ValidationError as exc:
            bad: set[str] = set()
            for error in exc.errors():
                field = str(error["loc"][0]) if error["loc"] else ""
                shown = "***" if field in SECRET_FIELDS else json.dumps(error.get("input"), default=str)[:80]
                if error["type"] == "extra_forbidden":
                    problems.append(f"unknown setting {field!r} ignored")
                else:
                    problems.append(f"setting {field!r}: {error['msg']} (got {shown}); using the default")
                bad.add(field)
            data = {k: v for k, v in data.items() if k not in bad and to_camel(k) not in bad}
    return Settings(), problems


def settings_schema() -> dict[str, Any]:
    return Settings.model_json_schema(by_alias=True)
