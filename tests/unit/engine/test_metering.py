"""Scoping a server's global counters to our busy periods."""

from engine.remote.metering import GENERATION, PROMPT, PROMPT_CACHED, BusyMeter, Tally, attributed


def snap(gen, prompt=0, cached=0):
    return {GENERATION: gen, PROMPT: prompt, PROMPT_CACHED: cached}


def test_only_growth_inside_busy_periods_counts():
    meter = BusyMeter()
    meter.start(snap(100, 50, 10))
    meter.stop(snap(130, 90, 40))
    # Another client generates 1000 tokens while we are idle: not ours.
    meter.start(snap(1130, 90, 40))
    meter.observe(snap(1135, 100, 40))
    assert meter.totals() == {GENERATION: 35, PROMPT: 50, PROMPT_CACHED: 30}
    meter.stop(snap(1140, 100, 40))
    assert meter.totals() == {GENERATION: 40, PROMPT: 50, PROMPT_CACHED: 30}
    assert not meter.open


def test_our_tally_is_a_floor():
    meter = BusyMeter()
    meter.start(snap(10))
    meter.stop(snap(12))  # the baseline landed after some of our tokens were counted
    assert attributed(meter, Tally(generated=5, prompt=3)).generated == 5
    assert attributed(meter, Tally(generated=1)).generated == 2


def test_server_restart_counts_from_zero():
    meter = BusyMeter()
    meter.start(snap(500))
    meter.observe(snap(510))
    meter.observe(snap(4))  # restarted: the counter went back
    meter.stop(snap(9))
    assert meter.totals()[GENERATION] == 10 + 9


def test_without_metrics_our_tally_is_all_there_is():
    meter = BusyMeter(unavailable=True)
    assert attributed(meter, Tally(7, 8, 9)) == Tally(7, 8, 9)


def test_observe_without_a_period_is_ignored():
    meter = BusyMeter()
    meter.observe(snap(5))
    meter.stop(snap(6))
    assert meter.totals()[GENERATION] == 0
