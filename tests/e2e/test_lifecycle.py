"""Start-up failures, settings, TCP and termination, each observed from a real client over LSP. (Loading,
ready and a clean shutdown, with a stream running: tests/e2e/test_streams.py.)"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from .lsp_helpers import (
    configure, initialize, inline, make_client, open_document, server_command, stats, wait_for,
)

MISSING_MODEL = "/nonexistent/vllm-ls-test-model"

# pytest-lsp runs a module-scoped client on a module-scoped event loop: the tests must share it.
module_loop = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(server_command=server_command("--model", MISSING_MODEL), client_factory=make_client),
)
async def broken(lsp_client: LanguageClient):
    await initialize(lsp_client)
    yield
    await lsp_client.shutdown_session()


@module_loop
async def test_failed_model_says_why_once_and_keeps_serving(broken: LanguageClient):
    await wait_for(lambda: any(s["state"] == "failed" for s in broken.statuses), 120, "the load to fail")
    uri = open_document(broken, "x = 1\n")
    for _ in range(3):
        assert await inline(broken, uri, 1, 0) == []
    errors = [m for m in broken.messages if m.type == types.MessageType.Error]
    assert len(errors) == 1, [m.message for m in broken.messages]
    assert MISSING_MODEL in errors[0].message or "not" in errors[0].message
    payload = await stats(broken)
    assert payload["engine_state"] == "failed" and payload["engine_requests_started"] == 0


@module_loop
async def test_invalid_settings_are_named_and_defaults_used(broken: LanguageClient):
    before = len(broken.messages)
    await configure(broken, {"scheduling.debounceMs": "fast", "generation.maxTokens": -5, "noSuchSetting": True, "engine.model": MISSING_MODEL})
    warnings = [m.message for m in broken.messages[before:] if m.type == types.MessageType.Warning]
    assert len(warnings) == 1
    for name in ("debounceMs", "maxTokens", "noSuchSetting"):
        assert name in warnings[0]
    assert (await stats(broken))["engine_state"] == "failed"  # still serving


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@module_loop
async def test_tcp_binds_loopback_and_serves(tmp_path: Path):
    port = _free_port()
    cmd = [sys.executable, "-m", "lsp_server", "--model", MISSING_MODEL, "serve", "--tcp", "--port", str(port)]
    proc = await asyncio.create_subprocess_exec(*cmd, stderr=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stderr.readline(), 60)
        assert f"127.0.0.1', {port}" in line.decode(), line
        listening = [c.laddr for c in psutil.Process(proc.pid).net_connections() if c.status == psutil.CONN_LISTEN]
        assert [addr.ip for addr in listening] == ["127.0.0.1"]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}}'
        writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        header = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        length = int(header.split(b":")[1].split(b"\r\n")[0])
        reply = await reader.readexactly(length)
        assert b'"inlineCompletionProvider"' in reply
        writer.close()
        await asyncio.wait_for(proc.wait(), 30)  # one client: the server ends with its connection
    finally:
        if proc.returncode is None:
            proc.kill()


def test_complete_command_reports_an_unusable_engine():
    done = subprocess.run(
        [sys.executable, "-m", "lsp_server", "--model", MISSING_MODEL, "complete",
         str(Path(__file__).resolve().parents[2] / "docs" / "examples" / "fibonacci.py") + ":5:5"],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 2
    assert "engine failed" in done.stderr
    assert done.stdout == ""


@module_loop
async def test_a_terminating_signal_stops_the_engine_and_every_process_it_started():
    """An editor that gives up waiting for `exit` sends SIGTERM (Neovim on `:qa`): the server stops
    the engine first, nothing of vLLM's is left behind. (SIGHUP takes the same path,
    termination.TERMINATING; one engine start is spared.)"""
    signum = signal.SIGTERM
    proc = await asyncio.create_subprocess_exec(
        *server_command(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)
    try:
        for body in (b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}}',
                     b'{"jsonrpc":"2.0","method":"initialized","params":{}}'):
            proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        await proc.stdin.drain()
        server = psutil.Process(proc.pid)

        async def engine_running():
            names = [p.name() for p in server.children(recursive=True)]
            return names if any("Worker" in n for n in names) else None

        await wait_for(engine_running, 180, "vLLM's engine-core and worker processes")
        children = server.children(recursive=True)
        proc.send_signal(signum)
        assert await asyncio.wait_for(proc.wait(), 120) == 128 + signum
        gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, f"processes left after {signal.Signals(signum).name}: {alive}"
    finally:
        if proc.returncode is None:
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
