"""The engine-core tally: tokens per request from the core's outputs, before and after a stop."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.core_tally import CoreTally


def test_a_request_read_to_its_end_leaves_nothing_unread_and_is_forgotten():
    tally = CoreTally()
    tally.added("r1-abcd1234", "r1")
    for _ in range(3):
        tally.core_output("r1-abcd1234", 1, finished=False)
        tally.read("r1", 1)
    tally.core_output("r1-abcd1234", 1, finished=True)
    tally.read("r1", 1)
    tally.ended("r1", stopped=False)
    counts = tally.counts
    assert (counts.tokens_generated, counts.tokens_unread, counts.tokens_after_stop, counts.requests_stopped) == (4, 0, 0, 0)
    assert tally.tracked == 0


def test_tokens_waiting_at_the_stop_and_arriving_after_it_are_unread():
    tally = CoreTally()
    tally.added("r1-x", "r1")
    tally.core_output("r1-x", 1, finished=False)
    tally.read("r1", 1)
    tally.core_output("r1-x", 2, finished=False)  # queued in vLLM, not read yet
    tally.ended("r1", stopped=True)
    tally.core_output("r1-x", 1, finished=False)  # the step in flight when the abort was sent
    counts = tally.counts
    assert counts.tokens_generated == 4
    assert counts.tokens_unread == 3
    assert counts.tokens_after_stop == 1
    assert counts.requests_stopped == 1
    # The core never confirms an abort: an idle core does (it holds nothing any more).
    tally.scheduler_stats(running=1, waiting=0)
    assert tally.tracked == 1
    tally.scheduler_stats(running=0, waiting=0)
    assert tally.tracked == 0 and tally.counts.requests_running == 0


def test_candidates_of_one_request_add_up_and_each_must_finish():
    tally = CoreTally()
    for i in range(3):
        tally.added(f"{i}_r1-x", "r1")
    tally.core_output("0_r1-x", 1, finished=True)
    tally.core_output("1_r1-x", 1, finished=False)
    tally.ended("r1", stopped=True)
    tally.core_output("1_r1-x", 1, finished=False)
    tally.core_output("2_r1-x", 1, finished=True)
    assert tally.counts.tokens_generated == 4
    assert tally.counts.tokens_after_stop == 2
    assert tally.counts.tokens_unread == 4  # nothing was read
    assert tally.tracked == 1  # candidate 1 is still in the core


def test_a_stopped_request_forgotten_under_load_still_counts_after_the_stop():
    tally = CoreTally(keep_stopped=2)
    for n in range(3):
        tally.added(f"r{n}-x", f"r{n}")
        tally.ended(f"r{n}", stopped=True)
    assert tally.tracked == 2
    tally.core_output("r0-x", 1, finished=False)  # r0 was forgotten: it can only be a stopped one
    assert tally.counts.tokens_after_stop == tally.counts.tokens_unread == 1


def test_a_finished_request_that_the_core_still_sends_for_counts_after_the_stop_but_not_unread():
    # vLLM's frontend finishes a request on a stop string and aborts it in the core, which may send
    # one more step: after the stop, but the stream was read to its end (no stop of ours).
    tally = CoreTally()
    tally.added("r1-x", "r1")
    tally.core_output("r1-x", 2, finished=False)
    tally.read("r1", 2)
    tally.ended("r1", stopped=False)
    tally.core_output("r1-x", 1, finished=False)
    assert (tally.counts.tokens_after_stop, tally.counts.tokens_unread, tally.counts.requests_stopped) == (1, 0, 0)


@given(st.lists(st.tuples(st.sampled_from(["out", "read", "stop", "idle"]), st.integers(0, 3)), max_size=40))
def test_unread_is_generated_minus_read_for_stopped_requests(events):
    tally = CoreTally()
    tally.added("r-x", "r")
    generated = read = 0
    stopped = False
    for kind, n in events:
        if kind == "out":
            tally.core_output("r-x", n, finished=False)
            generated += n
        elif kind == "read" and not stopped and read + n <= generated:
            tally.read("r", n)
            read += n
        elif kind == "stop" and not stopped:
            tally.ended("r", stopped=True)
            stopped = True
        elif kind == "idle":
            tally.scheduler_stats(0, 0)  # a stopped request is forgotten: later tokens still count
    counts = tally.counts
    assert counts.tokens_generated == generated
    assert counts.tokens_unread == (generated - read if stopped else 0)
    assert 0 <= counts.tokens_after_stop <= counts.tokens_unread


def test_settle_forgets_the_stops_whose_aborts_the_core_has_processed():
    tally = CoreTally()
    for n in range(3):
        tally.added(f"r{n}-x", f"r{n}")
        tally.ended(f"r{n}", stopped=True)
    assert tally.unsettled == 3
    tally.settle(2)
    assert tally.tracked == 1 and tally.unsettled == 3
    tally.settle(3)
    assert tally.tracked == 0 and tally.unsettled == 0
