"""The streaming post-processor: each rule decides completeness while tokens arrive (golden cases)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lsp_server.completion.closers import trim
from lsp_server.completion.postprocess import StreamFilter


def run(stream_filter: StreamFilter, pieces: list[str]) -> tuple[str, int]:
    """Feed pieces until the filter says complete; return the result and how many pieces were read."""
    for read, piece in enumerate(pieces, 1):
        if stream_filter.feed(piece):
            return stream_filter.result(), read
    stream_filter.finish()
    return stream_filter.result(), len(pieces)


def tokens(text: str) -> list[str]:
    """Split like a tokenizer would, roughly: words, spaces and line breaks as separate pieces."""
    import re
    return re.findall(r"\n[ \t]*|[ \t]+|\w+|[^\w\s]", text)


# -- single line ---------------------------------------------------------------------------------

def test_single_line_stops_at_the_first_line_break_before_reading_more():
    f = StreamFilter(multiline=False, line_prefix="x = ")
    result, read = run(f, ["foo", "(", "1", ")\n", "y", " = 2"])
    assert result == "foo(1)" and read == 4


def test_single_line_break_inside_a_delta():
    f = StreamFilter(multiline=False, line_prefix="x = ")
    assert f.feed("1\n\ny = 2") and f.result() == "1"


def test_carriage_return_ends_a_line_too():
    f = StreamFilter(multiline=False, line_prefix="x = ")
    assert f.feed("1\r\ny") and f.result() == "1"


# -- stop strings --------------------------------------------------------------------------------

def test_stop_string_ends_the_completion_even_across_deltas():
    f = StreamFilter(multiline=True, line_prefix="", stop=("<|endoftext|>",))
    result, read = run(f, ["return 1", "<|endof", "text|>", "garbage"])
    assert result == "return 1" and read == 3


def test_earliest_stop_string_wins():
    f = StreamFilter(multiline=True, line_prefix="", stop=("END", "<fim_middle>"))
    assert f.feed("a = 1<fim_middle>b END") and f.result() == "a = 1"


# -- multi-line blocks -----------------------------------------------------------------------------

BODY = "    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n"


def test_block_ends_at_the_dedent_below_the_cursor_block():
    f = StreamFilter(multiline=True, line_prefix="    ")
    generated = "if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\ndef main():\n    pass\n"
    result, read = run(f, tokens(generated))
    assert result == "if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)"
    assert "pass" not in "".join(tokens(generated)[:read]), "stopped as soon as the dedented line was whole"


def test_block_opened_by_the_cursor_line_ends_when_its_body_ends():
    f = StreamFilter(multiline=True, line_prefix="def f(x):")
    result, _ = run(f, tokens("\n    y = x * 2\n    return y\nprint(f(2))\n"))
    assert result == "\n    y = x * 2\n    return y"


def test_closing_brace_at_the_block_level_is_kept():
    f = StreamFilter(multiline=True, line_prefix="function f() {")
    result, _ = run(f, tokens("\n  return 1;\n}\nfunction g() {}\n"))
    assert result == "\n  return 1;\n}"


def test_suffix_next_line_reproduced_ends_the_block():
    f = StreamFilter(multiline=True, line_prefix="    ", suffix="\n    return total\n")
    result, _ = run(f, tokens("total = sum(xs)\n    return total\n"))
    assert result == "total = sum(xs)"


def test_two_blank_lines_end_the_block():
    f = StreamFilter(multiline=True, line_prefix="")
    result, _ = run(f, tokens("import os\nimport sys\n\n\nclass A:\n"))
    assert result == "import os\nimport sys"


def test_max_lines_ends_the_block():
    f = StreamFilter(multiline=True, line_prefix="", max_lines=3)
    result, _ = run(f, tokens("".join(f"a{i} = {i}\n" for i in range(10))))
    assert result == "a0 = 0\na1 = 1\na2 = 2"


def test_end_of_stream_applies_the_block_rules_to_the_last_line():
    f = StreamFilter(multiline=True, line_prefix="    ")
    result, _ = run(f, ["x = 1\n", "def g"])
    assert result == "x = 1"


# -- repetition ------------------------------------------------------------------------------------

def test_a_line_repeating_the_previous_one_is_dropped_at_once():
    f = StreamFilter(multiline=True, line_prefix="")
    result, read = run(f, tokens("total += value\ntotal += value\ntotal += value\ntotal += value\n"))
    assert result == "total += value"
    assert read < len(tokens("total += value\ntotal += value\ntotal += value\n"))


def test_a_two_line_loop_is_dropped():
    f = StreamFilter(multiline=True, line_prefix="", max_lines=20)
    result, _ = run(f, tokens("a = read()\nb = parse(a)\na = read()\nb = parse(a)\na = read()\n"))
    assert result == "a = read()\nb = parse(a)"


def test_repeating_the_line_above_the_cursor_gives_nothing():
    f = StreamFilter(multiline=True, line_prefix="    ", previous_lines=("    items = load_items()",))
    result, read = run(f, tokens("items = load_items()\n    items = load_items()\n    more()\n"))
    assert result == "" and read == len(tokens("items = load_items()\n")), "stopped when the copy was whole"


def test_single_line_repeating_the_line_above_gives_nothing():
    f = StreamFilter(multiline=False, line_prefix="value = ", previous_lines=("value = compute(1)",))
    assert run(f, ["compute(1)", "\n"])[0] == ""
    g = StreamFilter(multiline=False, line_prefix="value = ", previous_lines=("value = compute(1)",))
    assert run(g, ["compute(2)", "\n"])[0] == "compute(2)"


def test_short_repeated_lines_are_ordinary_code():
    f = StreamFilter(multiline=True, line_prefix="def f():", max_lines=20)
    result, _ = run(f, tokens("\n    pass\n    pass\nx = 1\n"))
    assert result == "\n    pass\n    pass"


# -- suffix overlap and brackets -------------------------------------------------------------------

@pytest.mark.parametrize("line_prefix, generated, line_suffix, shown, replace", [
    ("print(", "x)", ")", "x", 0),  # the suffix already closes the call
    ("print(", "foo(x))", ")", "foo(x)", 0),  # its own call keeps its bracket
    ("x = [", "1, 2, 3]", "]", "1, 2, 3", 0),
    ("if (a", " && b) {", ") {", " && b", 0),  # overlap of several characters
    ("foo([", "1, 2]", "])", "1, 2", 0),
    ("foo(", "a) + b", ")", "a) + b", 1),  # closes what the suffix closes, then goes on: covers it
    ("g(foo(", "a)) + b", "), c)", "a", 0),  # closes one too many: cut before its closer
    ("foo(bar(", "x))", ")", "x)", 0),
    ("    a, b", ", c)", ")", ", c", 0),  # a call opened on an earlier line, closed by the suffix
    ("    a, b", ", c", ")", ", c", 0),
    ("s = f(\"(\", ", "x)", ")", "x", 0),  # brackets inside strings do not count
    ("d = {", "'a': 1}", "}", "'a': 1", 0),
    ("x = (", "1 + 2)", "", "1 + 2)", 0),  # nothing after the cursor: nothing to trim
])
def test_suffix_overlap_and_bracket_balance(line_prefix, generated, line_suffix, shown, replace):
    f = StreamFilter(multiline=False, line_prefix=line_prefix, line_suffix=line_suffix)
    assert run(f, [generated, "\n"])[0] == shown and f.replace == replace


def test_the_previous_closer_rules_only_trim():
    f = StreamFilter(multiline=False, line_prefix="foo(", line_suffix=")", cover_closers=False)
    assert run(f, ["a) + b", "\n"])[0] == "a" and f.replace == 0


def test_mismatched_brackets_are_left_alone():
    assert trim("a]", "foo(", ")") == "a]"


# -- empty and whitespace ----------------------------------------------------------------------------

@pytest.mark.parametrize("multiline, generated", [(False, "   \n"), (True, "\n\n\n"), (False, "\t"), (True, "")])
def test_whitespace_only_results_are_dropped(multiline, generated):
    f = StreamFilter(multiline=multiline, line_prefix="x = ")
    assert run(f, [generated])[0] == ""


def test_trailing_whitespace_is_trimmed():
    f = StreamFilter(multiline=True, line_prefix="")
    assert run(f, ["a = 1   \n", "    \n", "\n"])[0] == "a = 1"


# -- healing ---------------------------------------------------------------------------------------

def test_healed_space_is_removed_from_the_completion():
    f = StreamFilter(multiline=False, line_prefix="return ", heal=" ")
    assert run(f, [" x", " + 1\n"])[0] == "x + 1" and f.skipped == 1


def test_healed_space_not_resupplied_is_fine():
    f = StreamFilter(multiline=False, line_prefix="return ", heal=" ")
    assert run(f, ["x\n"])[0] == "x" and f.skipped == 0


def test_heal_waits_for_more_text():
    f = StreamFilter(multiline=False, line_prefix="return ", heal=" ")
    assert not f.feed(" ") and f.text == ""
    assert f.feed("1\n") and f.result() == "1"


# -- properties ------------------------------------------------------------------------------------

@given(st.text(alphabet="ab \n\t(){}[]:x", max_size=200), st.integers(min_value=1, max_value=7), st.booleans(),
       st.sampled_from([("]]",), ("]]", "x]"), (")", "(x)"), ("\n\n", ":")]))
def test_delta_boundaries_do_not_change_the_result(generated, size, multiline, stops):
    def feed_in(step: int) -> str:
        f = StreamFilter(multiline=multiline, line_prefix="    if x:", suffix="\n    y\n", stop=stops)
        for i in range(0, len(generated), step):
            if f.feed(generated[i: i + step]):
                break
        else:
            f.finish()
        return f.result()

    assert feed_in(size) == feed_in(len(generated) or 1)


@given(st.text(alphabet="ab \n(){}", max_size=120))
def test_single_line_results_never_hold_a_line_break(generated):
    f = StreamFilter(multiline=False, line_prefix="x = ", line_suffix=")")
    f.feed(generated)
    f.finish()
    assert "\n" not in f.result() and "\r" not in f.result()


def test_lines_so_far_are_the_complete_lines_filtered_as_if_the_stream_ended_there():
    block = StreamFilter(multiline=True, line_prefix="    ")
    block.feed("a = 1  \n    b = 2\n    c")
    assert not block.done
    assert block.lines_so_far() == "a = 1  \n    b = 2"
    assert block.result() == "a = 1  \n    b = 2\n    c", "result() shows everything generated"
    block.feed(" = 3\nprint(c)\n")
    assert block.done and block.lines_so_far() == block.result() == "a = 1  \n    b = 2\n    c = 3"


def test_lines_so_far_of_a_single_line_is_nothing_until_it_is_complete():
    single = StreamFilter(multiline=False, line_prefix="x = ", line_suffix="")
    single.feed("foo(")
    assert single.lines_so_far() == ""
    single.feed("1)\n")
    assert single.lines_so_far() == "foo(1)"


def test_nothing_is_a_complete_line_before_the_first_break():
    block = StreamFilter(multiline=True, line_prefix="    ")
    block.feed("return total")
    assert block.lines_so_far() == ""
    block.feed("\n")
    assert block.lines_so_far() == "return total"
