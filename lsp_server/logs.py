"""Logging that never reaches the protocol stream and never carries a secret.

pygls logs whole messages (initializationOptions included) at INFO and DEBUG: its loggers are kept
at WARNING. A redaction filter on every handler replaces registered secrets (API keys) wherever
they would appear.
"""

from __future__ import annotations

import logging
import os
import sys

_SECRETS: set[str] = set()
REDACTED = "***"


def register_secret(value: str | None) -> None:
    """Never log `value` (e.g. an API key) from now on."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            message = redact(record.getMessage())
            record.msg, record.args = message, None
            if record.exc_text:
                record.exc_text = redact(record.exc_text)
        return True


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))  # tracebacks are formatted here, after filters


def configure(verbosity: int = 0, log_file: str | None = None) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    formatter = RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
        handlers.append(file_handler)
    handlers[0].setLevel(level)
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(min(h.level for h in handlers))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    # pygls logs full JSON-RPC messages at INFO/DEBUG, which may carry secrets and source code.
    logging.getLogger("pygls").setLevel(logging.WARNING)
    # httpx logs a line per request (per keystroke with a remote engine) at INFO and the wire at
    # DEBUG: noise, and a place where an Authorization header could surface.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # vLLM configures its own logging; keep it off stdout and as quiet as ours.
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "INFO" if verbosity >= 1 else "WARNING")
