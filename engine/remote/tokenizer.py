"""A local tokenizer for a remote model (a `tokenizer.json`): exact token budgets without a round
trip to the server's `/tokenize` per prompt piece."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from ..base import EngineUnavailable


def load_tokenizer(path: str) -> Any:
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise EngineUnavailable(
            "a local tokenizer needs the `tokenizers` package (pip install 'vllm-ls[remote]')") from exc
    file = os.path.expanduser(path)
    if os.path.isdir(file):
        file = os.path.join(file, "tokenizer.json")
    if not os.path.isfile(file):
        raise EngineUnavailable(f"no tokenizer.json at {path}")
    return Tokenizer.from_file(file)


def special_tokens(tokenizer: Any) -> frozenset[str]:
    with contextlib.suppress(Exception):
        return frozenset(token.content for token in tokenizer.get_added_tokens_decoder().values())
    return frozenset()


def encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False).ids)


def count(tokenizer: Any, texts: list[str]) -> list[int]:
    return [len(e.ids) for e in tokenizer.encode_batch(list(texts), add_special_tokens=False)]
