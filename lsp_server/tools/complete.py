"""`vllm-ls complete FILE:LINE:COL`: one completion through a real LSP session, as an editor gets it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .. import termination
from ..languages import language_of
from ..text import utf16_len


def run(args: argparse.Namespace) -> int:
    """`vllm-ls complete`: exit 0 with a completion, 1 with none, 2 when it could not run."""
    from .client import HeadlessClient, ServerFailed, server_command

    try:
        file, line, col = _parse_location(args.location)
        text = file.read_text(encoding="utf-8")
        settings = json.loads(args.settings)
    except (ValueError, OSError) as exc:
        print(f"vllm-ls complete: {exc}", file=sys.stderr)
        return 2
    language = args.language or language_of(file)
    extra = ["-v"] * args.verbose + (["--log-file", args.log_file] if args.log_file else [])
    client = HeadlessClient(
        server_command(args.engine_url, args.model, extra), settings=settings,
        stderr=sys.stderr if args.verbose else None,
        on_status=lambda status: print(f"vllm-ls: {status.get('message')}", file=sys.stderr, flush=True)
        if status.get("state") != "ready" or not client.status_history[:-1] else None,
    )

    async def run() -> dict:
        try:
            started = time.perf_counter()
            print("vllm-ls: starting the server and the engine…", file=sys.stderr, flush=True)
            await client.start(wait_ready=args.timeout)
            ready = time.perf_counter()
            uri = file.resolve().as_uri()
            client.open(uri, text, language)
            asked = time.perf_counter()
            items = await client.inline_completion(uri, line - 1, _utf16_col(text, line, col), invoked=True)
            done = time.perf_counter()
            return {"file": str(file), "line": line, "column": col, "completion": items[0] if items else "",
                    "latency_ms": round((done - asked) * 1000, 1), "startup_s": round(ready - started, 1),
                    "engine": client.status.get("engine")}
        finally:
            await client.stop()

    try:
        result = termination.run(run())
    except ServerFailed as exc:
        print(f"vllm-ls complete: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['file']}:{line}:{col} — {result['latency_ms']:.0f} ms "
              f"(engine: {result['engine']}, ready after {result['startup_s']:.0f} s)")
        print(result["completion"] if result["completion"] else "(no completion)")
    return 0 if result["completion"] else 1


def _parse_location(location: str) -> tuple[Path, int, int]:
    try:
        file, line, col = location.rsplit(":", 2)
        line_no, col_no = int(line), int(col)
    except ValueError:
        raise ValueError(f"expected FILE:LINE:COL (1-based), got {location!r}") from None
    if line_no < 1 or col_no < 1:
        raise ValueError(f"LINE and COL are 1-based, got {line_no}:{col_no}")
    return Path(file), line_no, col_no


def _utf16_col(text: str, line: int, col: int) -> int:
    """Column `col` (1-based, in characters as editors show them) → LSP UTF-16 character."""
    lines = text.splitlines()
    content = lines[line - 1] if line - 1 < len(lines) else ""
    return utf16_len(content[: col - 1])
