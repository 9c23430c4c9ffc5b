"""Runs the cases of one or more specs in one real LSP session with a `vllm-ls` server subprocess.

The check takes no shortcut into the engine: it opens documents, asks for completions and changes
settings exactly as an editor does, so what it proves is what an editor would see.
"""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import httpx
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from ..client import HeadlessClient, ServerFailed, server_command
from ...text import line_content_end, line_starts, units_to_index
from .expect import evaluate
from .report import ERROR, FAILED, PASSED, CaseResult, RunResult
from .spec import Case, Spec, engine_settings


@dataclass(frozen=True)
class Options:
    engine_urls: Sequence[str] = ()
    model: str | None = None
    server_flags: Sequence[str] = ()  # logging flags passed on to the server
    startup_timeout: float = 600.0
    case_timeout: float = 120.0
    preflight_timeout: float = 5.0


# -- the engine URL, before anything starts -----------------------------------------------------

def public_url(url: str) -> str:
    """The URL without credentials or query: safe to print in a CI log."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a port out of range: keep the text, still without credentials
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def preflight(url: str, timeout: float = 5.0) -> str | None:
    """Why the engine at `url` cannot be reached, or None when something answers HTTP there.

    Any HTTP answer counts (even 401 or 404): whether it is a usable vLLM server is for the server
    to find out and report. This only turns "nothing listens" into an answer in seconds.
    """
    shown = public_url(url)
    try:
        with httpx.Client(timeout=httpx.Timeout(timeout, connect=timeout)) as http:
            http.get(url.rstrip("/") + "/health")
    except httpx.ConnectError as exc:
        return f"cannot reach the engine at {shown}: {_reason(exc)}"
    except httpx.TimeoutException:
        return f"cannot reach the engine at {shown}: no answer within {timeout:g} s"
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        return f"cannot reach the engine at {shown}: {_reason(exc)}"
    return None


def _reason(exc: BaseException) -> str:
    """The root cause in words ("connection refused"), not httpx's wrapper chain."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text:
        return "connection refused"
    return text


# -- the session ---------------------------------------------------------------------------------

class Runner:
    def __init__(self, specs: list[Spec], options: Options, out: TextIO, err: TextIO,
                 on_result: Callable[[CaseResult, int, int], None]):
        self.cases = [case for spec in specs for case in spec.cases]
        self.engine_settings = engine_settings(specs)
        self.options = options
        self.out, self.err = out, err
        self.on_result = on_result

    def session_settings(self, case: Case) -> dict[str, Any]:
        return {**self.engine_settings, **case.settings}

    async def run(self) -> RunResult:
        opts = self.options
        first = self.session_settings(self.cases[0])
        client = HeadlessClient(
            server_command(opts.engine_urls, opts.model, opts.server_flags), settings=first,
            stderr=self.err if opts.server_flags else None, on_status=self._show_status,
        )
        run = RunResult(results=[])
        try:
            started = time.perf_counter()
            self._say("starting the server and the engine (vllm-ls check)...")
            try:
                await client.start(wait_ready=opts.startup_timeout)
            except ServerFailed as exc:
                return self.unusable(run, f"the engine could not be used: {exc}")
            run.startup_s = round(time.perf_counter() - started, 1)
            run.engine = client.status.get("engine")
            applied = first
            for number, case in enumerate(self.cases, start=1):
                wanted = self.session_settings(case)
                if wanted != applied:
                    await client.configure(wanted)
                    applied = wanted
                result = await self._run_case(client, case)
                run.results.append(result)
                self.on_result(result, number, len(self.cases))
                if client.status.get("state") == "failed":
                    return self.unusable(run, f"the engine failed during the run: {client.status.get('message')}")
            run.server_stats = await client.stats()
        except ServerFailed as exc:
            return self.unusable(run, f"the server stopped during the run: {exc}")
        finally:
            await client.stop()
        return run

    async def _run_case(self, client: HeadlessClient, case: Case) -> CaseResult:
        line, character = case.position
        invoked = case.trigger == "invoked"
        client.open(case.uri, case.text, case.language)
        try:
            # Keystroke to answer, as the user would wait for it: the request is sent here.
            asked = time.perf_counter()
            if case.method == "inline":
                items = await client.inline_completion(case.uri, line, character, invoked,
                                                       timeout=self.options.case_timeout)
                completion = items[0] if items else ""
            else:
                found = await client.completion(case.uri, line, character, invoked,
                                                timeout=self.options.case_timeout)
                completion = inserted_text(case.text, case.position, found[0]) if found else ""
            latency_ms = (time.perf_counter() - asked) * 1000
        except TimeoutError as exc:
            return CaseResult(case, ERROR, error=str(exc))
        except JsonRpcException as exc:
            return CaseResult(case, ERROR, error=f"the server answered with an error: {exc}")
        finally:
            client.close(case.uri)
        failures = evaluate(case.expect, completion, latency_ms)
        return CaseResult(case, FAILED if failures else PASSED, completion, latency_ms, tuple(failures))

    def unusable(self, run: RunResult, message: str) -> RunResult:
        """Every case not run yet becomes an error, so a CI report still lists what was not checked."""
        run.error = message
        done = {id(r.case) for r in run.results}
        run.results += [CaseResult(c, ERROR, error=message) for c in self.cases if id(c) not in done]
        return run

    def _show_status(self, status: dict[str, Any]) -> None:
        # Loading progress only: a failure ends the run, and the run's last word says why.
        if status.get("state") == "loading":
            self._say(str(status.get("message")))

    def _say(self, message: str) -> None:
        print(f"vllm-ls: {message}", file=self.err, flush=True)


def inserted_text(text: str, position: tuple[int, int], item: types.CompletionItem) -> str:
    """What a completion item inserts after the cursor (its edit also replaces the word before it)."""
    edit = item.text_edit
    if edit is None:
        return item.insert_text or item.label
    new_text = edit.new_text
    start = edit.range.start if isinstance(edit, types.TextEdit) else edit.replace.start
    if start.line != position[0]:
        return new_text
    starts = line_starts(text)
    begin = starts[min(position[0], len(starts) - 1)]
    line = text[begin: line_content_end(text, begin)]
    replaced = line[units_to_index(line, start.character): units_to_index(line, position[1])]
    return new_text[len(replaced):] if new_text.startswith(replaced) else new_text
