"""The wire format of a vLLM OpenAI-compatible server: SSE framing, chunks, stop strings, headers, metrics."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.remote.wire import (
    DONE,
    ChunkReader,
    SseDecoder,
    StopMatcher,
    WireError,
    error_message,
    parse_prometheus,
    parse_retry_after,
    split_stops,
)


def events(lines):
    decoder = SseDecoder()
    out = [data for line in lines if (data := decoder.feed(line)) is not None]
    if (tail := decoder.close()) is not None:
        out.append(tail)
    return out


def test_sse_events_as_vllm_sends_them():
    assert events(['data: {"a": 1}', "", "data: [DONE]", ""]) == ['{"a": 1}', DONE]


def test_sse_multiline_data_comments_other_fields_and_crlf():
    lines = [": keep-alive", "event: message", "id: 7", "data: first\r", "data:second", "retry: 10", "\r", ""]
    assert events(lines) == ["first\nsecond"]


def test_sse_event_without_final_blank_line_is_kept():
    assert events(["data: [DONE]"]) == [DONE]


def test_sse_blank_lines_alone_make_no_events():
    assert events(["", "", ""]) == []


def chunk(text, index=0, finish=None, completion_tokens=None, prompt_tokens=5):
    body = {"choices": [{"index": index, "text": text, "finish_reason": finish}]}
    if completion_tokens is not None:
        body["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
    return json.dumps(body)


def test_chunks_count_tokens_from_continuous_usage():
    reader = ChunkReader()
    first = reader.read(chunk("def", completion_tokens=1))
    assert first[0].text == "def" and first[0].tokens == 1 and first[0].prompt_tokens == 5
    # Text held back by a stop string: two tokens, no text yet; then both arrive.
    assert reader.read(chunk("", completion_tokens=3))[0].tokens == 2
    last = reader.read(chunk(" x", finish="length", completion_tokens=4))[0]
    assert last.tokens == 1 and last.finish_reason == "length" and last.prompt_tokens is None


def test_final_usage_chunk_carries_cached_tokens():
    reader = ChunkReader()
    reader.read(chunk("a", completion_tokens=1, prompt_tokens=40))
    usage = {"choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 1,
                                      "prompt_tokens_details": {"cached_tokens": 32}}}
    assert reader.read(json.dumps(usage)) == []
    assert (reader.prompt_tokens, reader.cached_tokens, reader.completion_tokens) == (40, 32, 1)


def test_chunks_without_usage_count_one_token_each_per_choice():
    reader = ChunkReader()
    assert [d.tokens for d in reader.read(chunk("a", index=1))] == [1]
    reader.read(chunk("b", index=0))
    reader.read(chunk("c", index=1))
    assert reader.cumulative == {0: 1, 1: 2}


@pytest.mark.parametrize("payload", ["not json", "[1, 2]", '{"error": {"message": "boom", "code": 500}}'])
def test_bad_or_error_events_raise(payload):
    with pytest.raises(WireError):
        ChunkReader().read(payload)


def test_error_event_message_is_readable():
    with pytest.raises(WireError, match="boom"):
        ChunkReader().read('{"error": {"message": "boom"}}')


def feed_all(matcher, pieces):
    out = ""
    for piece in pieces:
        text, stopped = matcher.feed(piece)
        out += text
        if stopped:
            return out, True
    return out + matcher.flush(), False


def test_stop_inside_one_delta():
    assert feed_all(StopMatcher(["\n\n"]), ["a = 1\n\nb = 2"]) == ("a = 1", True)


def test_stop_across_deltas_is_held_back_then_cut():
    matcher = StopMatcher(["<EOT>"])
    assert matcher.feed("x = 1<E") == ("x = 1", False)
    assert matcher.feed("O") == ("", False)
    assert matcher.feed("T>more") == ("", True)
    assert matcher.feed("later") == ("", True)


def test_partial_stop_that_does_not_complete_is_released():
    matcher = StopMatcher(["<EOT>"])
    assert matcher.feed("a <E") == ("a ", False)
    assert matcher.feed("X") == ("<EX", False)
    assert matcher.feed("<EO") == ("", False)
    assert matcher.flush() == "<EO"


def test_earliest_of_several_stops_wins():
    assert feed_all(StopMatcher(["bb", "a"]), ["xxbbyya"]) == ("xx", True)


def test_the_stop_that_completes_first_wins_however_the_stream_is_chunked():
    # '>' completes at 2, '<><' only at 3: a server checking token by token stops at '>'.
    for pieces in (["<><"], ["<", "><"], ["<", ">", "<"]):
        assert feed_all(StopMatcher([">", "<><"]), pieces) == ("<", True)


@given(st.text(alphabet="ab\n<>ET", max_size=40), st.lists(st.integers(1, 6), max_size=20),
       st.lists(st.text(alphabet="ab\n<>ET", min_size=1, max_size=4), min_size=1, max_size=3))
def test_stop_matcher_equals_cutting_the_whole_text(text, sizes, stops):
    pieces, rest = [], text
    for size in sizes:
        pieces.append(rest[:size])
        rest = rest[size:]
    pieces.append(rest)
    hits = [(i + len(s), i) for s in stops if (i := text.find(s)) != -1]
    expected = (text[: min(hits)[1]], True) if hits else (text, False)
    assert feed_all(StopMatcher(stops), pieces) == expected


def test_no_stops_passes_text_through():
    assert StopMatcher([]).feed("anything") == ("anything", False)


def test_split_stops_sends_four_to_the_server_and_keeps_the_rest():
    assert split_stops(["a", "b", "", "a", "c", "d", "e", "f"]) == (("a", "b", "c", "d"), ("e", "f"))
    assert split_stops(["\n"]) == (("\n",), ())


@pytest.mark.parametrize("value, expected", [
    ("3", 3.0), (" 1.5 ", 1.5), ("0", 0.0), ("-4", 0.0), (None, None), ("", None), ("soon", None),
    ("inf", None), ("nan", None),
])
def test_retry_after_seconds(value, expected):
    assert parse_retry_after(value) == expected


def test_retry_after_http_date():
    now = 784111777.0  # Sun, 06 Nov 1994 08:49:37 GMT
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now=now) == pytest.approx(10.0)
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:27 GMT", now=now) == 0.0


METRICS = """\
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="m"} 120.0
vllm:generation_tokens_total{engine="1",model_name="m"} 5.0
vllm:generation_tokens_created{engine="0",model_name="m"} 1.7e+09
vllm:num_requests_running{engine="0",model_name="m"} 2.0
vllm:prompt_tokens_total{engine="0",model_name="a{b}"} 7 1700000000000
broken line without value
vllm:prompt_tokens_cached_total{engine="0"} NaN
"""


def test_prometheus_sums_across_labels_and_ignores_the_rest():
    values = parse_prometheus(METRICS, ["vllm:generation_tokens_total", "vllm:num_requests_running",
                                        "vllm:prompt_tokens_total", "vllm:prompt_tokens_cached_total",
                                        "vllm:absent"])
    assert values == {"vllm:generation_tokens_total": 125.0, "vllm:num_requests_running": 2.0,
                      "vllm:prompt_tokens_total": 7.0}


@pytest.mark.parametrize("body, expected", [
    ('{"error": {"message": "bad stop", "type": "BadRequestError"}}', "bad stop"),
    ('{"error": "Unauthorized"}', "Unauthorized"),
    ('{"detail": "Not Found"}', "Not Found"),
    ("plain text\n", "plain text"),
    (b'{"message": "m"}', "m"),
])
def test_error_message(body, expected):
    assert error_message(body) == expected


def test_error_message_is_shortened():
    assert len(error_message("x" * 1000, limit=50)) == 51


def test_line_splitter_joins_lines_across_chunks_and_keeps_the_unfinished_one():
    from engine.remote.wire import LineSplitter

    splitter = LineSplitter()
    assert splitter.feed("data: a\r\nda") == ["data: a"]
    assert splitter.feed("ta: b\n\n") == ["data: b", ""]
    assert splitter.feed("data: c") == []
    assert splitter.close() == ["data: c"]


def test_line_splitter_refuses_an_endless_line_and_an_endless_body():
    from engine.remote.wire import LineSplitter, WireError

    splitter = LineSplitter(max_line=100, max_total=1000)
    with pytest.raises(WireError, match="longer than 100"):
        for _ in range(10):
            splitter.feed("x" * 30)
    splitter = LineSplitter(max_line=100, max_total=1000)
    with pytest.raises(WireError, match="larger than 1000"):
        for _ in range(200):
            splitter.feed("data: 1\n\n")
