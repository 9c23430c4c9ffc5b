"""A real vLLM OpenAI-compatible server on 127.0.0.1 for the remote-engine tests, and a TCP relay
that makes an address reachable or unreachable on demand (an endpoint that comes up later).

The server runs the embedded model with the CPU settings from the design notes. It is started in
its own process group and the whole group is killed at the end (the API server, the engine core
and the workers), so no vLLM process outlives the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def model_dir() -> str:
    from engine.embedded import ensure_model

    return str(ensure_model())


@dataclass
class VllmServer:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 60) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def metrics(self) -> dict[str, float]:
        from engine.remote.wire import parse_prometheus

        names = ("vllm:generation_tokens_total", "vllm:num_requests_running", "vllm:request_success_total",
                 "vllm:prompt_tokens_total", "vllm:prompt_tokens_cached_total")
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"{self.url}/metrics")
        response.raise_for_status()
        values = parse_prometheus(response.text, names)
        return {name: values.get(name, 0.0) for name in names}

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        # Workers that left the group's leader behind still belong to the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def start_vllm_server(log_path: Path, env_extra: dict[str, str] | None = None, *extra_args: str) -> VllmServer:
    port = free_port()
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", model_dir(), "--served-model-name", "smollm2",
        "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "float32", "--enforce-eager", "--block-size", "32",
        "--kv-cache-memory-bytes", str(512 * 1024 * 1024), "--max-model-len", "2048",
        "--max-num-seqs", "8", "--enable-prefix-caching", "--enable-prompt-tokens-details",
        "--disable-uvicorn-access-log",
        *extra_args,
    ]
    env = {**os.environ, "VLLM_CPU_OMP_THREADS_BIND": "0-1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
           "VLLM_LOGGING_LEVEL": "INFO", **(env_extra or {})}
    log = open(log_path, "ab")  # noqa: SIM115 - owned by the process for its lifetime
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               env=env, start_new_session=True)
    log.close()
    return VllmServer(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)


async def wait_healthy(server: VllmServer, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(f"the vLLM server exited ({server.process.returncode}):\n{server.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{server.url}/health")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the vLLM server was not healthy after {timeout:.0f} s:\n{server.log_tail()}")
            await asyncio.sleep(0.5)


class Relay:
    """A TCP relay from a port of its own to `target`: the address exists before and after, but
    answers only while the relay is open (an endpoint that is down, then comes up)."""

    def __init__(self, target_port: int, tls: ssl.SSLContext | None = None):
        self.port = free_port()
        self.target_port = target_port
        self.tls = tls
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", self.port, ssl=self.tls)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        pipes = [asyncio.ensure_future(_pipe(reader, up_writer)), asyncio.ensure_future(_pipe(up_reader, writer))]
        self._pipes.update(pipes)
        # When either side closes, close both: a client leaving must reach the server as a close.
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        for pipe in pipes:
            pipe.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        self._pipes.difference_update(pipes)
        for w in (writer, up_writer):
            with contextlib.suppress(Exception):
                w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA (cert.pem doubles as the CA bundle), and its key."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key
