"""Typed-ahead cache: typing (or deleting back) along a suggestion is answered from memory."""

from hypothesis import given
from hypothesis import strategies as st

from lsp_server.completion.cache import CompletionCache

URI = "file:///w/a.py"
BEFORE = "def area(r):\n    return "
AFTER = "\n\nprint(area(2))\n"


def cache_with(texts=("math.pi * r ** 2",)) -> CompletionCache:
    cache = CompletionCache()
    cache.store(URI, BEFORE, AFTER, tuple(texts))
    return cache


def test_same_position_returns_the_whole_suggestion():
    assert cache_with().lookup(URI, BEFORE, AFTER) == ("math.pi * r ** 2",)


def test_typing_the_beginning_returns_the_rest():
    cache = cache_with()
    assert cache.lookup(URI, BEFORE + "m", AFTER) == ("ath.pi * r ** 2",)
    assert cache.lookup(URI, BEFORE + "math.pi", AFTER) == (" * r ** 2",)


def test_deleting_back_into_the_suggestion_still_hits():
    cache = cache_with()
    assert cache.lookup(URI, BEFORE + "math.p", AFTER) == ("i * r ** 2",)
    assert cache.lookup(URI, BEFORE + "ma", AFTER) == ("th.pi * r ** 2",)


def test_typing_something_else_misses():
    cache = cache_with()
    assert cache.lookup(URI, BEFORE + "x", AFTER) == ()
    assert cache.lookup(URI, BEFORE + "math.pi * r ** 2", AFTER) == (), "fully typed: nothing left"


def test_whitespace_only_rest_misses():
    cache = cache_with(("x  ",))
    assert cache.lookup(URI, BEFORE + "x", AFTER) == ()


def test_deleting_before_the_suggestion_misses():
    assert cache_with().lookup(URI, BEFORE[:-1], AFTER) == ()


def test_any_other_change_misses():
    cache = cache_with()
    assert cache.lookup(URI, "# edited\n" + BEFORE, AFTER) == ()
    assert cache.lookup(URI, BEFORE, AFTER + "x") == ()
    assert cache.lookup(URI, BEFORE, AFTER.replace("2", "3")) == (), "same length, different text"
    assert cache.lookup("file:///w/b.py", BEFORE, AFTER) == ()


def test_an_edit_far_before_the_cursor_is_caught_by_the_hash():
    long_before = "x = 1\n" * 1000 + BEFORE
    cache = CompletionCache()
    cache.store(URI, long_before, AFTER, ("1",))
    edited = "y" + long_before[1:]
    assert cache.lookup(URI, edited, AFTER) == ()
    assert cache.lookup(URI, long_before, AFTER) == ("1",)


def test_candidates_that_match_what_was_typed_survive():
    cache = cache_with(("math.pi * r ** 2", "r * r * 3.14", "math.tau * r"))
    assert cache.lookup(URI, BEFORE + "math.", AFTER) == ("pi * r ** 2", "tau * r")
    assert cache.lookup(URI, BEFORE + "r", AFTER) == (" * r * 3.14",)


def test_multi_line_suggestion_typed_across_a_line_break():
    cache = cache_with(("if r < 0:\n        raise ValueError(r)\n    return r",))
    assert cache.lookup(URI, BEFORE + "if r < 0:\n        ", AFTER) == ("raise ValueError(r)\n    return r",)


def test_bounded_least_recently_used():
    cache = CompletionCache(capacity=2)
    for i in range(3):
        cache.store(URI, f"{i}", AFTER, (f"s{i}",))
    assert len(cache) == 2
    assert cache.lookup(URI, "0", AFTER) == ()
    assert cache.lookup(URI, "1", AFTER) == ("s1",)
    cache.store(URI, "3", AFTER, ("s3",))  # "1" was used last: "2" goes
    assert cache.lookup(URI, "2", AFTER) == () and cache.lookup(URI, "1", AFTER) == ("s1",)


def test_forget_a_document():
    cache = cache_with()
    cache.forget(URI)
    assert cache.lookup(URI, BEFORE, AFTER) == ()


def test_empty_suggestions_are_not_stored():
    cache = CompletionCache()
    cache.store(URI, BEFORE, AFTER, ("",))
    assert len(cache) == 0


@given(st.text(max_size=40), st.text(min_size=1, max_size=40), st.integers(min_value=0, max_value=40))
def test_the_rest_always_completes_the_suggestion(before, suggestion, typed):
    cache = CompletionCache()
    cache.store(URI, before, "", (suggestion,))
    typed = min(typed, len(suggestion))
    rest = cache.lookup(URI, before + suggestion[:typed], "")
    if rest:
        assert suggestion[:typed] + rest[0] == suggestion
    else:
        assert not suggestion[typed:].strip()


class Counting:
    """A stand-in for a stream's ledger: records which characters were served."""

    def __init__(self):
        self.served = []

    def shown(self, start: int, end: int) -> int:
        self.served.append((start, end))
        return end - start


def test_a_stream_grows_its_entry_and_a_hit_says_what_it_served_of_it():
    cache, source = CompletionCache(), Counting()
    cache.store(URI, BEFORE, AFTER, ("a = 1",), source=source)
    cache.store(URI, BEFORE, AFTER, ("a = 1\n    b = 2",), source=source)  # the same key: replaced
    assert len(cache) == 1
    hit = cache.find(URI, BEFORE + "a = 1", AFTER)
    assert hit.rest == ("\n    b = 2",) and hit.typed == 5
    assert hit.shown_tokens() == 10 and source.served == [(5, 15)]


def test_a_hit_on_another_candidate_counts_nothing_for_the_source():
    cache, source = CompletionCache(), Counting()
    cache.store(URI, BEFORE, AFTER, ("x = 1", "y = 2"), source=source)
    hit = cache.find(URI, BEFORE + "y", AFTER)
    assert hit.rest == (" = 2",) and hit.source is None and hit.shown_tokens() == 0
    assert cache.find(URI, BEFORE + "z", AFTER) is None
