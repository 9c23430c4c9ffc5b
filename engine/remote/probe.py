"""Is an endpoint up, and what does it serve? `/health`, `/v1/models` and `/tokenize` probes.

`Down` is a failure a later check may not have (refused, timed out, HTTP 5xx); `Fatal` is one no
retry can fix (the API key is rejected, the model asked for is not served).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
import httpx

from ..base import ModelInfo
from .wire import error_message

#: Marker strings of the FIM formats we know. Whether the served model has them as single special
#: tokens tells the prompt builder which template fits (`ModelInfo.special_tokens`).
SPECIAL_TOKEN_PROBES = (
    "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>", "<file_sep>", "<|endoftext|>",
    "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>",
    "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>",
    "<PRE>", "<SUF>", "<MID>", "<EOT>", "▁<PRE>", "▁<SUF>", "▁<MID>",
    "[PREFIX]", "[SUFFIX]", "[MIDDLE]",
)

#: `fetch(method, url, **kwargs)`: a whole, bounded answer (`exchange.fetch` bound to a client).
Fetch = Callable[..., Awaitable[httpx.Response]]


class Down(Exception):
    """An endpoint check failed in a way a later check may not."""


class Fatal(Exception):
    """A failure no retry can fix (wrong API key, wrong model name)."""


@dataclass(frozen=True)
class Served:
    """The model an endpoint serves, as the prompt builder needs to know it."""

    model: str
    info: ModelInfo


async def check_health(fetch: Fetch, url: str, timeout: httpx.Timeout) -> None:
    response = await fetch("GET", f"{url}/health", timeout=timeout)
    if response.status_code != 200:
        raise Down(f"/health answered HTTP {response.status_code}")


async def served_model(fetch: Fetch, url: str, wanted: str | None, timeout: httpx.Timeout,
                       special: Callable[[str], Awaitable[frozenset[str]]]) -> Served:
    """The model to request from `url`: `wanted`, or the first one it lists."""
    response = await fetch("GET", f"{url}/v1/models", timeout=timeout)
    if response.status_code in (401, 403):
        raise Fatal(f"{url} rejected the API key (HTTP {response.status_code}); "
                    "check the apiKey setting or the environment variable named by apiKeyEnv")
    if response.status_code != 200:
        raise Down(f"/v1/models answered HTTP {response.status_code}: {error_message(response.text)}")
    models = [m for m in response.json().get("data", []) if isinstance(m, dict) and m.get("id")]
    if not models:
        raise Down("the server lists no models")
    chosen = next((m for m in models if m["id"] == wanted), None)
    if wanted and chosen is None:
        listed = ", ".join(str(m["id"]) for m in models)
        raise Fatal(f"{url} does not serve the model {wanted!r} (it serves: {listed})")
    chosen = chosen or models[0]
    model = str(chosen["id"])
    max_len = chosen.get("max_model_len")
    return Served(model, ModelInfo(
        name=model,
        max_model_len=int(max_len) if isinstance(max_len, int) and max_len > 0 else ModelInfo.max_model_len,
        special_tokens=await special(model),
    ))


async def special_tokens(fetch: Fetch, url: str, model: str, timeout: httpx.Timeout) -> frozenset[str]:
    """Which FIM markers the model has as single tokens, asked of the server's `/tokenize`."""
    found: set[str] = set()
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
        response = await fetch("POST", f"{url}/tokenize", timeout=timeout, json={
            "model": model, "prompt": "".join(SPECIAL_TOKEN_PROBES),
            "add_special_tokens": False, "return_token_strs": True,
        })
        if response.status_code == 200:
            pieces = set(response.json().get("token_strs") or ())
            found = {probe for probe in SPECIAL_TOKEN_PROBES if probe in pieces}
    return frozenset(found)
