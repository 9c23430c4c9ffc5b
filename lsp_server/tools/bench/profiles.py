"""Settings profiles: the same server, configured differently. A profile is a name and the settings
an editor would send (`initializationOptions`); nothing else about the server changes.

`naive` turns off everything that saves engine work: no debounce (every keystroke asks), no
cancel-previous (older requests run on), no early stop (every request runs to its token limit) and
no typed-ahead cache, and no in-flight bound of its own (every request goes straight to the engine,
which queues and batches as vLLM does; the bound's waiting line would otherwise act as a debounce).
The debounce mode is pinned too, so a change of the default cannot leak in. The issue-12 features
(answering early, continuing in the background, reusing a stream, speculating, supplying
indentation) are off in it as well: none of them is what a naive client does.

`v0.1` is the server as it was before those features and before the issue-15 post-processing: the
defaults with all five off, a block unless code follows the cursor (no syntax), only the next line
guarding the suffix, closers only trimmed (never covered). It is the one baseline the issue-12
targets and the infill comparison ("the previous post-processing") are judged against, in the same run.

A built-in profile sends only the settings this server knows (`known_settings`): a feature that
is not built yet is simply absent from the profile, and appears in it the day it exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ...settings import dotted, is_engine_setting, leaves, parse_settings

#: The issue-12 features, all off: the server's behaviour before them.
FEATURES_OFF: dict[str, Any] = {
    "generation.answerEarly": False, "generation.continueInBackground": False, "generation.reuseStream": False,
    "generation.speculate": False, "generation.autoIndent": False,
}
#: The post-processing before the syntax, suffix and closer rules (issue 15): a block unless code
#: follows the cursor, only the next line guards the suffix, closers are only trimmed.
POSTPROCESSING_BEFORE: dict[str, Any] = {
    "generation.syntax": False, "generation.suffixLines": 1, "generation.coverClosers": False,
}

BUILTIN: dict[str, dict[str, Any]] = {
    "vllm-ls": {},
    "v0.1": {**FEATURES_OFF, **POSTPROCESSING_BEFORE},
    "naive": {"scheduling.debounceMs": 0, "scheduling.debounce": "fixed", "scheduling.cancelPrevious": False,
              "generation.earlyStop": False, "scheduling.cache": False, "scheduling.maxInFlight": 256,
              **FEATURES_OFF},
    # Comparisons the prompt work asked the benchmark to decide.
    "adaptive": {"scheduling.debounce": "adaptive"},
    "paths": {"prompt.template": "prefix-only-paths"},
}


@dataclass(frozen=True)
class Profile:
    """A name and the settings an editor would send (dotted names: `{"scheduling.debounceMs": 0}`)."""

    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    #: Settings of a built-in profile that this server does not know, so were not sent.
    left_out: tuple[str, ...] = ()

    def with_overrides(self, overrides: dict[str, Any]) -> dict[str, Any]:
        return {**self.settings, **overrides}

    def engine_settings(self) -> dict[str, Any]:
        """The profile's settings that build the engine (changing them restarts it), by dotted name."""
        return {k: v for k, v in dotted(self.settings).items() if is_engine_setting(k)}


def parse_profiles(spec: str) -> list[Profile]:
    """`vllm-ls,naive` or `name={"scheduling.debounceMs": 50}` items, comma-separated (JSON may hold commas)."""
    profiles: list[Profile] = []
    for item in _split(spec):
        name, sep, raw = item.partition("=")
        name = name.strip()
        left_out: tuple[str, ...] = ()
        if not name:
            raise ValueError(f"a profile needs a name: {item!r}")
        if sep:
            try:
                settings = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ValueError(f"profile {name!r}: the settings are not JSON: {exc}") from None
            if not isinstance(settings, dict):
                raise ValueError(f"profile {name!r}: the settings must be a JSON object")
        elif name in BUILTIN:
            settings = known_settings(BUILTIN[name])
            left_out = tuple(sorted(set(dotted(BUILTIN[name])) - set(settings)))
        else:
            raise ValueError(f"unknown profile {name!r}; built-in: {', '.join(BUILTIN)} (or name={{json}})")
        _, problems = parse_settings(settings)
        if problems:
            raise ValueError(f"profile {name!r}: {'; '.join(problems)}")
        if any(p.name == name for p in profiles):
            raise ValueError(f"profile {name!r} given twice")
        # One spelling: overrides merge key by key.
        profiles.append(Profile(name, dotted(settings), left_out))
    if not profiles:
        raise ValueError("no profiles given")
    return profiles


def known_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` (any accepted spelling) as dotted names, without those this server does not know."""
    known = {path for path, _, _ in leaves()}
    return {path: value for path, value in dotted(settings).items() if path in known}


def _split(spec: str) -> list[str]:
    """Split at commas outside JSON braces and brackets."""
    items, depth, current = [], 0, []
    in_string = escaped = False
    for ch in spec:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    items.append("".join(current).strip())
    return [item for item in items if item]
