"""Adaptive debounce: the interval follows the typing rhythm and the engine's latency, within bounds."""

import random

from hypothesis import given
from hypothesis import strategies as st

from lsp_server.completion.debounce import MAX_INTERVAL, MIN_INTERVAL, AdaptiveDebounce

URI = "file:///a.py"


def typist(gap_mean: float, pause_every: int = 12, pause: float = 2.0, keystrokes: int = 150, seed: int = 1):
    """Keystroke times of a typist: bursts with gaps around `gap_mean`, a pause every few keystrokes."""
    rng = random.Random(seed)
    now, times = 0.0, []
    for i in range(keystrokes):
        now += pause * rng.uniform(0.8, 1.5) if i and i % pause_every == 0 else gap_mean * rng.uniform(0.6, 1.4)
        times.append(now)
    return times


def learned(gap_mean: float, latency: float) -> AdaptiveDebounce:
    debounce = AdaptiveDebounce()
    for t in typist(gap_mean):
        debounce.keystroke(URI, t)
    debounce.engine_latency(latency)
    return debounce


def test_fixed_interval_until_there_is_something_to_learn_from():
    debounce = AdaptiveDebounce()
    assert debounce.interval(0.15) == 0.15 and debounce.wait(URI, 0.15, 0.0) == 0.15
    for t in (0.0, 0.1, 0.2):
        debounce.keystroke(URI, t)
    debounce.engine_latency(0.5)
    assert debounce.interval(0.15) == 0.15, "three keystrokes are not a rhythm"


def test_slow_engine_waits_out_the_gaps_inside_a_burst():
    interval = learned(0.12, latency=0.8).interval(0.15)
    times = typist(0.12)
    burst_gaps = [b - a for a, b in zip(times, times[1:]) if b - a < 1.0]
    covered = sum(g <= interval for g in burst_gaps) / len(burst_gaps)
    assert covered >= 0.9 and interval <= 0.3, (interval, covered)


def test_slow_typist_gets_a_longer_interval():
    assert learned(0.3, 0.8).interval(0.15) > learned(0.1, 0.8).interval(0.15)


def test_cheap_engine_time_fires_at_once():
    debounce = learned(0.15, latency=0.3)
    debounce.engine_weight = 0.01
    assert debounce.interval(0.15) == MIN_INTERVAL


def test_a_slower_engine_never_shortens_the_interval():
    intervals = [learned(0.15, latency).interval(0.15) for latency in (0.01, 0.05, 0.1, 0.3, 1.0, 3.0)]
    assert intervals == sorted(intervals), intervals
    assert intervals[0] < intervals[-1]


def test_the_interval_counts_from_the_last_keystroke():
    debounce = learned(0.12, 0.8)
    interval = debounce.interval(0.15)
    debounce.keystroke(URI, 1000.0)
    assert debounce.wait(URI, 0.15, 1000.0) == interval
    assert abs(debounce.wait(URI, 0.15, 1000.05) - (interval - 0.05)) < 1e-9
    assert debounce.wait(URI, 0.15, 1010.0) == 0.0
    assert debounce.wait("file:///never-changed.py", 0.15, 1000.0) == interval


def test_long_breaks_are_not_rhythm():
    debounce = AdaptiveDebounce()
    for i in range(30):
        debounce.keystroke(URI, i * 60.0)
    assert debounce.samples == 0


@given(
    st.lists(st.floats(min_value=0.0, max_value=4.0), min_size=10, max_size=80),
    st.floats(min_value=0.0, max_value=10.0),
)
def test_always_within_bounds(gaps, latency):
    debounce = AdaptiveDebounce()
    now = 0.0
    debounce.keystroke(URI, now)
    for gap in gaps:
        now += gap
        debounce.keystroke(URI, now)
    debounce.engine_latency(latency)
    assert MIN_INTERVAL <= debounce.interval(0.15) <= MAX_INTERVAL
