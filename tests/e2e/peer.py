"""A small HTTP server on 127.0.0.1 that speaks the parts of vLLM's OpenAI API the remote engine
uses, and misbehaves on demand: the peer for fault-injection tests of the remote engine.

It is a real socket and real HTTP/1.1 (keep-alive, chunked event streams), so the engine's real
httpx client meets each fault as it would on the network. It records what it saw (requests,
clients that went away mid-answer, bytes it sent) so tests can check that the engine stopped
reading when it should, and that a cancel reached the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from dataclasses import dataclass, field

MODEL = "peer-model"
#: What the peer "generates" in mode ok: a body for `def fibonacci(n):`, then the next definition.
SCRIPT = ["return", " n", " if", " n", " <", " 2", " else", " fibonacci", "(n", " -", " 1", ")", " +",
          " fibonacci", "(n", " -", " 2", ")", "\n", "\n", "\n", "def", " main", "():", "\n"]

MODES = ("ok", "500", "429", "hang", "drip", "malformed", "truncated", "no-done", "oversize", "echo-key")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Seen:
    completions: int = 0  # POST /v1/completions received
    client_gone: int = 0  # completion answers the client walked away from before their end
    bytes_sent: int = 0  # body bytes of completion answers
    authorization: set[str] = field(default_factory=set)
    prompts: list[str] = field(default_factory=list)


class Peer:
    def __init__(self) -> None:
        self.port = free_port()
        self.mode = "ok"
        self.seen = Seen()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)

    async def refuse(self) -> None:
        """Stop listening and drop every connection: the port now refuses connections."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def close(self) -> None:
        await self.refuse()

    # -- HTTP -----------------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                method, path, headers, body = request
                if "authorization" in headers:
                    self.seen.authorization.add(headers["authorization"])
                if not await self._answer(method, path, headers, body, reader, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._connections.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _answer(self, method, path, headers, body, reader, writer) -> bool:
        """Answer one request; False when the connection is done."""
        if method == "GET" and path == "/health":
            return await _send(writer, 200, b"")
        if method == "GET" and path == "/v1/models":
            return await _send_json(writer, 200, {"object": "list", "data": [
                {"id": MODEL, "object": "model", "max_model_len": 2048}]})
        if method == "POST" and path == "/tokenize":
            prompt = json.loads(body or b"{}").get("prompt", "")
            count = len(prompt) // 4 + 1 if isinstance(prompt, str) else len(prompt)
            return await _send_json(writer, 200, {"count": count, "tokens": [1] * count, "token_strs": [],
                                                  "max_model_len": 2048})
        if method == "POST" and path == "/v1/completions":
            self.seen.completions += 1
            request = json.loads(body or b"{}")
            self.seen.prompts.append(str(request.get("prompt")))
            return await self._complete(request, headers, reader, writer)
        return await _send_json(writer, 404, {"error": {"message": f"no route {path}"}})

    async def _complete(self, request: dict, headers: dict, reader, writer) -> bool:
        mode = self.mode
        if mode == "500":
            return await _send_json(writer, 500, {"error": {"message": "internal failure injected by the test"}})
        if mode == "echo-key":
            # A server that quotes what it was sent in its error: the key must not travel further.
            return await _send_json(writer, 500, {"error": {"message": f"bad auth {headers.get('authorization')}"}})
        if mode == "429":
            return await _send_json(writer, 429, {"error": {"message": "too many requests"}},
                                    extra=b"Retry-After: 1\r\n")
        if mode == "hang":
            await self._wait_for_client_to_leave(reader)
            return False
        await _start_stream(writer)
        try:
            if mode == "malformed":
                await self._chunk(writer, b"data: {this is not json}\n\n")
                await _end_stream(writer)
                return True
            if mode == "oversize":
                await self._chunk(writer, b'data: {"choices": [{"index": 0, "text": "')
                while True:  # one endless line, until the client walks away
                    await self._chunk(writer, b"x" * 65536)
            n = int(request.get("n", 1))
            for step, piece in enumerate(SCRIPT[:3] if mode in ("truncated", "no-done") else SCRIPT):
                if mode == "drip":
                    await asyncio.sleep(0.5)
                await self._chunk(writer, _event({
                    "id": "cmpl-peer", "object": "text_completion", "model": MODEL,
                    "choices": [{"index": i, "text": piece, "finish_reason": None} for i in range(n)],
                    "usage": {"prompt_tokens": 10, "completion_tokens": step + 1, "total_tokens": step + 11},
                }))
            if mode == "truncated":
                writer.transport.abort()  # no terminating chunk: the body breaks off
                return False
            if mode == "drip":
                while True:  # keeps trickling, never finishes
                    await asyncio.sleep(0.5)
                    await self._chunk(writer, _event({"choices": [{"index": 0, "text": " x", "finish_reason": None}]}))
            if mode != "no-done":
                await self._chunk(writer, _event({
                    "choices": [{"index": i, "text": "", "finish_reason": "stop"} for i in range(n)],
                    "usage": {"prompt_tokens": 10, "completion_tokens": len(SCRIPT), "total_tokens": len(SCRIPT) + 10},
                }))
                await self._chunk(writer, b"data: [DONE]\n\n")
            await _end_stream(writer)
            return True
        except ConnectionError:
            self.seen.client_gone += 1
            return False

    async def _chunk(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        if writer.transport.is_closing():
            raise ConnectionResetError("the client went away")
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.seen.bytes_sent += len(data)
        await writer.drain()

    async def _wait_for_client_to_leave(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError):
            while await reader.read(4096):
                pass
        self.seen.client_gone += 1


async def _read_request(reader: asyncio.StreamReader):
    line = await reader.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return method, path.split("?", 1)[0], headers, body


_REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}


async def _send(writer: asyncio.StreamWriter, status: int, body: bytes, content_type: str = "text/plain",
                extra: bytes = b"") -> bool:
    writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n%s" % (
        status, _REASONS[status].encode(), content_type.encode(), len(body), extra, body))
    await writer.drain()
    return True


async def _send_json(writer, status: int, payload: dict, extra: bytes = b"") -> bool:
    return await _send(writer, status, json.dumps(payload).encode(), "application/json", extra)


async def _start_stream(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
    await writer.drain()


async def _end_stream(writer: asyncio.StreamWriter) -> None:
    writer.write(b"0\r\n\r\n")
    await writer.drain()


def _event(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"
