"""Running the server over stdio or TCP, with the engine stopped inside the loop at the end.

stdout belongs to the protocol. vLLM logs to stdout by default, its engine processes inherit file
descriptor 1, and native code or tqdm may write there too: any stray byte corrupts the LSP stream.
So the protocol gets a private duplicate of the original stdout, and fd 1 is pointed at stderr
before anything else can start.

SIGTERM and SIGHUP end the session the way the client's pipe closing does (termination.py): the
engine is stopped, with its engine-core and worker processes, before the server leaves.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import BinaryIO

from pygls.io_ import StdoutWriter

from . import termination
from .protocol import guard
from .server import VllmLanguageServer

log = logging.getLogger(__name__)


def protect_stdout() -> BinaryIO:
    """Return a private stream to the original stdout; fd 1 and sys.stdout now go to stderr."""
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(protocol_fd, "wb", buffering=0)


def serve_stdio(server: VllmLanguageServer) -> int:
    protocol_out = protect_stdout()
    return _run(server, _stdio_session(server, protocol_out))


def serve_tcp(server: VllmLanguageServer, host: str, port: int) -> int:
    return _run(server, _tcp_session(server, host, port))


def _run(server: VllmLanguageServer, session) -> int:
    code = 0
    try:
        termination.run(session)
    except SystemExit as exit_:  # the `exit` notification
        code = exit_.code if isinstance(exit_.code, int) else 0
    except KeyboardInterrupt:
        code = 130
    finally:
        logging.shutdown()
    # The stdin reader thread may still block on a read that never returns; the engine is already
    # stopped, so leave without waiting for it.
    sys.stderr.flush()
    os._exit(code)


class ClientWriter(StdoutWriter):
    """pygls' stdout writer that goes quiet once the client has closed its end of the pipe.

    An editor that quits without waiting for the answer to `shutdown` (Neovim 0.11 on `:qa!`)
    leaves answers pending; each would otherwise log a BrokenPipeError traceback.
    """

    client_gone = False

    def write(self, data: bytes) -> None:
        if self.client_gone:
            return
        try:
            super().write(data)
        except BrokenPipeError:
            self.client_gone = True
            log.info("the client closed the connection: answers still pending are dropped")


async def _stdio_session(server: VllmLanguageServer, protocol_out: BinaryIO) -> None:
    server.protocol.set_writer(ClientWriter(protocol_out))
    loop = asyncio.get_running_loop()
    stdin = sys.stdin.buffer.fileno()

    def read():  # whatever has arrived, up to 64 KiB; b"" when the client closed the pipe
        return loop.run_in_executor(server.thread_pool, os.read, stdin, 1 << 16)

    await _session(server, read)


async def _tcp_session(server: VllmLanguageServer, host: str, port: int) -> None:
    done = asyncio.Event()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if done.is_set():
            writer.close()
            return
        log.info("client connected from %s", writer.get_extra_info("peername"))
        server.protocol.set_writer(writer)  # type: ignore[arg-type]
        try:
            await _session(server, lambda: reader.read(1 << 16))
        finally:
            done.set()

    tcp = await asyncio.start_server(on_connection, host, port)
    addresses = ", ".join(str(sock.getsockname()) for sock in tcp.sockets)
    log.warning("vllm-ls listening on %s (one client)", addresses)
    print(f"vllm-ls listening on {addresses}", file=sys.stderr, flush=True)
    try:
        async with tcp:
            await done.wait()
    finally:
        await server.host.close()  # a signal before or during the connection: the engine goes too


async def _session(server: VllmLanguageServer, read) -> None:
    try:
        await guard.serve(read, server.protocol)
        log.info("client closed the connection")
    finally:
        await server.host.close()
