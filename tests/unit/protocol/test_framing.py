"""Framing: every well-formed message is read, whatever broken bytes come before it, and memory
stays bounded whatever a header claims."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from lsp_server.protocol.framing import MAX_HEADER, Frame, FrameDecoder, Garbage


def frame(body: bytes, length: int | None = None, content_type: bool = False) -> bytes:
    header = b"Content-Length: %d\r\n" % (len(body) if length is None else length)
    if content_type:
        header += b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n"
    return header + b"\r\n" + body


def message(i: int, text: str = "") -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": i, "method": "m", "params": {"text": text}}).encode()


def decode(data: bytes, chunks: list[int] | None = None, max_body: int = 1 << 20) -> list[Frame | Garbage]:
    decoder = FrameDecoder(max_body=max_body)
    events: list[Frame | Garbage] = []
    position = 0
    for size in chunks or []:
        events += decoder.feed(data[position: position + size])
        position += size
    events += decoder.feed(data[position:])
    return events


def bodies(events) -> list[bytes]:
    return [e.body for e in events if isinstance(e, Frame)]


# Text for bodies and junk: JSON escapes CR and LF inside strings, as real clients' JSON does.
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)
junk = st.binary(max_size=300).filter(lambda b: b"content-length" not in b.lower())


@settings(max_examples=200, deadline=None)
@given(st.lists(texts, min_size=1, max_size=6), st.lists(st.integers(1, 97), max_size=40), st.booleans())
def test_well_formed_messages_are_read_across_any_read_boundaries(contents, chunks, content_type):
    messages = [message(i, text) for i, text in enumerate(contents)]
    data = b"".join(frame(m, content_type=content_type) for m in messages)
    events = decode(data, chunks)
    assert bodies(events) == messages
    assert not [e for e in events if isinstance(e, Garbage)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(junk, texts), min_size=1, max_size=5), st.lists(st.integers(1, 61), max_size=40))
def test_junk_between_messages_is_skipped(pairs, chunks):
    messages = [message(i, text) for i, (_, text) in enumerate(pairs)]
    data = b"".join(j + frame(m) for (j, _), m in zip(pairs, messages))
    assert bodies(decode(data, chunks)) == messages


@settings(max_examples=150, deadline=None)
@given(texts, st.integers(1, 200), st.lists(texts, min_size=1, max_size=4), st.lists(st.integers(1, 61), max_size=40))
def test_a_length_that_runs_into_the_next_message_loses_only_that_message(text, extra, after, chunks):
    broken = message(0, text)
    following = [message(i + 1, t) for i, t in enumerate(after)]
    data = frame(broken, len(broken) + extra) + b"".join(frame(m) for m in following)
    events = decode(data, chunks)
    # Nothing after the broken message is lost, and nothing waits for bytes that will never come.
    assert bodies(events)[-len(following):] == following
    assert any(isinstance(e, Garbage) and "shorter" in e.reason for e in events)


@settings(max_examples=150, deadline=None)
@given(texts, st.integers(1, 20), st.lists(texts, min_size=1, max_size=4))
def test_a_length_that_stops_short_loses_only_that_message(text, short, after):
    broken = message(0, text)
    following = [message(i + 1, t) for i, t in enumerate(after)]
    data = frame(broken, max(1, len(broken) - short)) + b"".join(frame(m) for m in following)
    events = decode(data)
    got = bodies(events)
    assert got[0] == broken[: max(1, len(broken) - short)]  # read as sent; JSON parsing rejects it
    assert got[1:] == following


def test_a_header_without_content_length_is_dropped():
    good = message(1)
    events = decode(b"Content-Type: x\r\n\r\n" + frame(good))
    assert bodies(events) == [good]
    assert isinstance(events[0], Garbage) and "without Content-Length" in events[0].reason


def test_header_names_are_case_insensitive_and_other_headers_may_come_first():
    good = message(1)
    data = b"Content-Type: application/vscode-jsonrpc\r\ncontent-length: %d\r\n\r\n%s" % (len(good), good)
    events = decode(data)
    assert events == [Frame(good)]


def test_an_oversized_message_is_refused_without_holding_its_body():
    good = message(1)
    huge = b"x" * 200_000
    decoder = FrameDecoder(max_body=10_000)
    events = decoder.feed(frame(b"{" + huge + b"}"[:0], length=len(huge) + 1)[:40])
    peak = 0
    data = b"{" + huge
    for i in range(0, len(data), 4096):
        events += decoder.feed(data[i: i + 4096])
        peak = max(peak, decoder.buffered)
    events += decoder.feed(frame(good))
    assert bodies(events) == [good]
    assert any(isinstance(e, Garbage) and "limit" in e.reason for e in events)
    assert peak <= MAX_HEADER + 4096


def test_content_length_text_inside_a_document_is_not_a_header():
    # A document about HTTP: its JSON carries the words, with CR LF escaped.
    good = message(1, "Content-Length: 12\r\n\r\nhello")
    assert b"Content-Length: 12\\r\\n" in good
    for chunk in (1, 7, 1000):
        assert bodies(decode(frame(good), [chunk] * (len(good) // chunk + 30))) == [good]


def test_a_header_split_at_the_end_of_a_too_long_body_is_found_when_its_bytes_arrive():
    good = message(1)
    following = frame(good)
    broken = b'{"jsonrpc": "2.0", "id": 0}'
    decoder = FrameDecoder()
    # The declared length ends inside the next message's header, and the read ends there too.
    head = frame(broken, len(broken) + 5) + following[:5]
    assert decoder.feed(head) == [], "undecided: neither a message nor garbage yet"
    events = decoder.feed(following[5:])
    assert bodies(events) == [good]
    assert isinstance(events[0], Garbage)
