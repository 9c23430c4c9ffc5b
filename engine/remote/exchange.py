"""HTTP with a server: `fetch()` a bounded whole answer, or stream one as an `Exchange`, run in a task
that no caller's cancellation reaches.

Why a task of its own: httpcore closes a response on the way out of a cancelled read, but marks it
closed *before* that close has finished. A second cancellation while it unwinds interrupts the close
for good (encode/httpcore#1115): the socket stays open, the server never learns that we left, and it
generates up to `max_tokens` for nobody. In an editor that is routine: VS Code cancels the request
of the previous keystroke and sends the next one in the same breath, and the newer request cancels
the older one's engine work too (cancel-previous) one loop turn later. Under a typing replay that
was 35-60 tokens per stopped request counted by vLLM and never read.

So callers never cancel the task once the response has begun. Stopping is `hang_up()`: a
synchronous shutdown of the socket at the moment the decision is taken, so the server sees the
connection close at once (vLLM aborts the request on the next decode step); the task's pending read
then ends with EOF and httpcore closes the connection cleanly, uninterrupted. Before the response
headers there is no socket to shut down yet: then the task is cancelled, once (a single
cancellation httpcore does handle). The reader also keeps the socket drained while the caller is
busy, so what the server sent waits in our queue, counted, instead of in the kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from .wire import WireError, error_message

#: Most bytes of an error answer's body that are read for its message.
_ERROR_BODY_LIMIT = 64 << 10

_HEADERS, _TEXT, _END, _FAILED = "headers", "text", "end", "failed"


async def fetch(client: httpx.AsyncClient, method: str, url: str, limit: int = 8 << 20, **kwargs: Any) -> httpx.Response:
    """A whole answer, but never more than `limit` bytes of it (a misbehaving server cannot fill
    our memory). For short requests (health, models, tokenize, metrics), not for completions."""
    async with client.stream(method, url, **kwargs) as response:
        body = bytearray()
        async for chunk in response.aiter_bytes():  # decoded: a compressed bomb counts in full
            body += chunk
            if len(body) > limit:
                raise WireError(f"{url} answered with more than {limit} bytes")
    return httpx.Response(response.status_code, content=bytes(body), request=response.request,
                          headers={k: v for k, v in response.headers.items()
                                   if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")})


class Exchange:
    """`POST url` with a streamed answer: `await response()`, then `async for text in text()`.

    Every exchange must end with `hang_up()` (idempotent; after a complete answer it does nothing)
    so its task and its connection are released whatever happened to the caller.
    """

    def __init__(self, client: httpx.AsyncClient, url: str, *, json: Any, headers: dict[str, str],
                 max_chars: int):
        self.status: int | None = None
        self.headers: httpx.Headers | None = None
        self.error_text = ""  # the message of an answer that is not 2xx
        self.hung_up_at: float | None = None  # time.monotonic() of hang_up(), when it stopped something
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._socket: Any = None
        self._done = False
        self._max_chars = max_chars
        self._task = asyncio.create_task(self._run(client, url, json, headers), name="vllm-ls http exchange")

    @property
    def task(self) -> asyncio.Task:
        return self._task

    @property
    def over(self) -> bool:
        """Hung up, or the answer has ended: there is nothing left to wait for."""
        return self._done

    async def response(self) -> int | None:
        """Wait for the answer's status (a non-2xx answer's body is read by then); None when the
        exchange was hung up before the answer began."""
        kind, value = await self._queue.get()
        if kind == _FAILED:
            raise value
        if kind == _END:
            return None
        return int(self.status or 0)

    async def text(self) -> AsyncIterator[str]:
        """The body as it arrives; ends at the end of the answer, raises what broke it."""
        while True:
            kind, value = await self._queue.get()
            if kind == _TEXT:
                yield value
            elif kind == _END:
                return
            elif kind == _FAILED:
                raise value

    async def finish(self, timeout: float = 1.0) -> None:
        """After the last event the caller wanted: let the answer end by itself, so the connection
        goes back to the pool instead of being hung up (the server ends it right after `[DONE]`)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                async for _ in self.text():
                    pass

    def hang_up(self) -> None:
        """Stop now. Synchronous, so no cancellation can come between the decision and the server
        learning of it: the socket is shut down (the server sees the connection close) or, before
        the response began, the task is cancelled. Idempotent, never raises."""
        if self._done:
            return
        self._done = True
        if self._task.done():
            return
        self.hung_up_at = time.monotonic()
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
        else:
            self._task.cancel()

    async def _run(self, client: httpx.AsyncClient, url: str, body: Any, headers: dict[str, str]) -> None:
        put = self._queue.put_nowait
        try:
            async with client.stream("POST", url, json=body, headers=headers) as response:
                self.status, self.headers = response.status_code, response.headers
                if not 200 <= response.status_code < 300:
                    self.error_text = await _error_text(response)
                    put((_HEADERS, None))
                    return
                stream = response.extensions.get("network_stream")
                self._socket = stream.get_extra_info("socket") if stream is not None else None
                if self._done:  # hung up while the headers were on their way
                    with contextlib.suppress(OSError):
                        self._socket.shutdown(socket.SHUT_RDWR)
                    return
                put((_HEADERS, None))
                total = 0
                async for text in response.aiter_text():
                    total += len(text)
                    if total > self._max_chars:
                        raise WireError(f"the response is larger than {self._max_chars} characters")
                    put((_TEXT, text))
        except asyncio.CancelledError:
            pass  # hung up before the response began (the only cancel this task gets)
        except Exception as exc:  # noqa: BLE001 - handed to the caller, who decides
            if not self._done:
                known = isinstance(exc, (httpx.TransportError, httpx.StreamError, WireError))
                put((_FAILED, exc if known else WireError(f"{type(exc).__name__}: {exc}")))
        finally:
            self._done = True
            put((_END, None))


async def _error_text(response: httpx.Response) -> str:
    """The error's message, from at most `_ERROR_BODY_LIMIT` bytes of its body."""
    body = bytearray()
    with contextlib.suppress(httpx.HTTPError):
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= _ERROR_BODY_LIMIT:
                break
        return error_message(bytes(body[:_ERROR_BODY_LIMIT]))
    return "no details"
