"""The LSP base protocol's framing (`Content-Length: N\\r\\n\\r\\n` + N bytes), read defensively.

pygls' reader trusts every header: a stray line, a missing header or a wrong length desynchronises
the stream, and a wrong length swallows the messages after it (whose requests then wait forever).
This decoder is pure (bytes in, frames out) and finds its way back:

- Garbage before a header (on the same line or on lines of its own) is skipped: the header is
  searched for, not expected at a line start.
- A header block without `Content-Length` is dropped.
- A length above `max_body` is refused without reading the body: the body's bytes are then scanned
  as garbage until the next header, so memory stays bounded whatever the client claims.
- A length that runs into the next message is noticed without waiting for bytes that may never
  come: valid JSON cannot contain a header line (CR and LF are escaped inside strings, and
  `Content-Length` is no JSON token outside them), so a header inside a body proves the body
  broken, and decoding restarts at that header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_END = b"\r\n\r\n"
_LENGTH = re.compile(rb"content-length[ \t]*:[ \t]*(\d{1,12})[ \t]*\r\n", re.IGNORECASE)
#: What can still become a Content-Length line once more bytes arrive.
_LENGTH_PREFIX = re.compile(rb"content-length[ \t]*(?::[ \t]*(?:\d{1,12}[ \t]*\r?)?)?", re.IGNORECASE)
_MARKS = (b"Content-Length", b"content-length", b"CONTENT-LENGTH")
_MARK_LEN = len(_MARKS[0])
#: Longest header block we wait for; beyond it, bytes without a header end are garbage.
MAX_HEADER = 8192


@dataclass(frozen=True)
class Frame:
    """One message body cut from the input."""

    body: bytes


@dataclass(frozen=True)
class Garbage:
    """Bytes that were not a message, and why (for the log; never their content)."""

    size: int
    reason: str


class FrameDecoder:
    """Cuts Content-Length framed messages from a byte stream and finds its way back after junk."""

    def __init__(self, max_body: int = 256 * 1024 * 1024):
        self.max_body = max_body
        self._buffer = bytearray()
        self._expected: int | None = None  # the pending body's length, once its header is read
        self._scanned = 0  # how far into the pending body we have looked for a header

    @property
    def buffered(self) -> int:
        """Bytes held that are not yet a whole message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame | Garbage]:
        """Add bytes from the client; return the messages (and skipped junk) they complete."""
        self._buffer += data
        events: list[Frame | Garbage] = []
        while self._body(events) if self._expected is not None else self._header(events):
            pass
        return events

    # -- header ---------------------------------------------------------------------------------

    def _header(self, events: list[Frame | Garbage]) -> bool:
        buffer = self._buffer
        end = buffer.find(_END)
        if end == -1:
            if len(buffer) > MAX_HEADER:
                keep = _possible_header_start(buffer)
                events.append(Garbage(keep, "bytes without a message header"))
                del buffer[:keep]
            return False
        block = bytes(buffer[: end + 2])
        del buffer[: end + 4]
        match = None
        for match in _LENGTH.finditer(block):
            pass
        if match is None:
            events.append(Garbage(end + 4, "a header block without Content-Length"))
            return True
        junk = _junk_before(block, match.start())
        if junk:
            events.append(Garbage(junk, "bytes before a message header"))
        length = int(match.group(1))
        if length > self.max_body:
            events.append(Garbage(end + 4 - junk, f"a message of {length} bytes (the limit is {self.max_body})"))
            return True
        self._expected, self._scanned = length, 0
        return True

    # -- body -----------------------------------------------------------------------------------

    def _body(self, events: list[Frame | Garbage]) -> bool:
        assert self._expected is not None
        buffer, expected = self._buffer, self._expected
        # A mark that starts inside the body counts, even if it ends beyond it.
        limit = min(len(buffer), expected + _MARK_LEN - 1)
        # Only bytes not looked at yet are searched (a 10 MB body arrives in many reads); the
        # overlap catches a mark split between two reads.
        position = max(0, self._scanned - _MARK_LEN)
        while (hit := _find_mark(buffer, position, limit)) != -1:
            verdict = _header_at(buffer, hit)
            if verdict is True:
                events.append(Garbage(hit, "a message shorter than its Content-Length"))
                del buffer[:hit]
                self._expected = None
                return True
            if verdict is None:
                self._scanned = hit  # maybe a header still arriving: look again with more bytes
                return False
            position = hit + 1
        self._scanned = max(position, limit - _MARK_LEN + 1)
        if len(buffer) < expected or _ends_in_partial_mark(buffer, expected):
            return False
        events.append(Frame(bytes(buffer[:expected])))
        del buffer[:expected]
        self._expected = None
        return True


def _find_mark(buffer: bytearray, start: int, end: int) -> int:
    """The first `Content-Length` in buffer[start:end] (in the spellings clients use), or -1."""
    hits = [hit for mark in _MARKS if (hit := buffer.find(mark, start, end)) != -1]
    return min(hits) if hits else -1


def _ends_in_partial_mark(buffer: bytearray, expected: int) -> bool:
    """The buffer ends with the beginning of a mark that starts inside the body (JSON never ends
    that way: the body is broken, and the bytes still to come tell whether a header follows)."""
    mark = _MARKS[1]
    for k in range(1, _MARK_LEN):
        start = len(buffer) - k
        if start < expected and bytes(buffer[start:]).lower() == mark[:k]:
            return True
    return False


def _header_at(buffer: bytearray, start: int) -> bool | None:
    """Whether a complete header block starts at `start`: True, False, or None (undecided yet)."""
    line = _LENGTH.match(buffer, start)
    if line is None:
        rest = bytes(buffer[start: start + 64])
        prefix = _LENGTH_PREFIX.match(rest)
        return None if prefix is not None and prefix.end() == len(rest) else False
    end = buffer.find(_END, line.end() - 2, line.end() + MAX_HEADER)
    if end != -1:
        return True
    return None if len(buffer) - line.end() < MAX_HEADER else False


def _junk_before(block: bytes, start: int) -> int:
    """Bytes before the Content-Length header that are not header lines of their own."""
    line_start = max(block.rfind(b"\n", 0, start), block.rfind(b"\r", 0, start)) + 1
    if line_start < start:
        return start  # something on the header's own line: everything before it is junk
    head = block[:line_start]
    lines = [line for line in re.split(rb"\r\n", head) if line]
    if all(re.fullmatch(rb"[A-Za-z][A-Za-z0-9-]*[ \t]*:.*", line) for line in lines):
        return 0  # other headers (Content-Type) before Content-Length
    return line_start


def _possible_header_start(buffer: bytearray) -> int:
    """How much of a header-less buffer to drop: all but a tail that may begin a header."""
    tail = len(buffer) - 64
    hit = _find_mark(buffer, tail, len(buffer))
    return hit if hit != -1 else tail
