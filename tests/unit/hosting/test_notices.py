"""One popup per episode of trouble, none while a fault flaps, details logged without a flood."""

import math

from lsp_server.hosting.notices import LatencyWatch, Notices


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_popup_per_episode_and_every_new_detail_logged():
    clock = Clock()
    notices = Notices(quiet_s=60, log_gap_s=10, clock=clock)
    assert notices.trouble("requests", "HTTP 500") == (True, True)
    for _ in range(50):  # a failure per keystroke
        clock.now += 0.2
        popup, _ = notices.trouble("requests", "HTTP 500")
        assert not popup
    assert notices.trouble("requests", "the stream broke off") == (False, True)
    assert notices.is_open("requests")


def test_an_identical_detail_is_logged_at_most_once_per_gap():
    clock = Clock()
    notices = Notices(quiet_s=60, log_gap_s=10, clock=clock)
    logged = 0
    for _ in range(100):  # 20 s of failures, one every 0.2 s
        logged += notices.trouble("requests", "HTTP 500")[1]
        clock.now += 0.2
    assert logged == 2


def test_a_new_episode_after_recovery_pops_up_again_but_not_while_flapping():
    clock = Clock()
    notices = Notices(quiet_s=60, log_gap_s=10, clock=clock)
    assert notices.trouble("unavailable", "down")[0]
    clock.now += 5
    assert notices.recovered("unavailable")
    assert not notices.recovered("unavailable"), "only an open episode can end"
    clock.now += 5
    assert not notices.trouble("unavailable", "down")[0], "flapping within the quiet time: no popup"
    notices.recovered("unavailable")
    clock.now += 60
    assert notices.trouble("unavailable", "down")[0]


def test_kinds_are_independent():
    notices = Notices(clock=Clock())
    assert notices.trouble("requests", "x")[0]
    assert notices.trouble("overloaded", "x")[0]
    assert not notices.trouble("requests", "y")[0]


# -- consistently slow completions (Tabby's latency tracker is the model) -------------------------

def test_slow_only_when_the_whole_window_is_slow():
    watch = LatencyWatch(window=10, slow_ms=3000)
    changes = [watch.add(3500) for _ in range(9)]
    assert changes == [None] * 9 and not watch.slow, "nine slow answers are not a window"
    assert watch.add(4000) is True and watch.slow
    assert watch.add(5000) is None, "told once per episode"


def test_one_fast_answer_in_the_window_is_not_consistently_slow():
    watch = LatencyWatch(window=10, slow_ms=3000)
    for latency in [3500] * 5 + [200] + [3500] * 4:
        assert watch.add(latency) is None
    assert not watch.slow


def test_timeouts_count_as_slow_and_recovery_needs_the_average_back_under():
    watch = LatencyWatch(window=4, slow_ms=3000)
    for latency in (math.inf, 3100, math.inf, 3200):
        change = watch.add(latency)
    assert change is True and watch.timeouts() == 2 and watch.average_ms() == 3150
    assert watch.add(3600) is None, "still slow: (3100 + 3200 + 3600) / 3"
    assert watch.add(100) is False and not watch.slow, "(3200 + 3600 + 100) / 3 is under 3 s"
    assert watch.add(4000) is None, "a new episode needs a whole slow window again"


def test_all_timeouts_have_no_average():
    watch = LatencyWatch(window=2, slow_ms=3000)
    watch.add(math.inf)
    assert watch.add(math.inf) is True
    assert watch.average_ms() == math.inf
