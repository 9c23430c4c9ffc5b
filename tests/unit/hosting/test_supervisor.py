"""Restart backoff: doubling delays up to a cap, a limit on failed attempts, a fresh start after a
healthy run."""

from lsp_server.hosting.supervisor import Backoff, RestartPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_delays_double_up_to_the_cap_and_attempts_run_out():
    backoff = Backoff(RestartPolicy(initial_s=1, max_s=5, max_attempts=4), Clock())
    delays = []
    while not backoff.exhausted:
        delays.append(backoff.next_delay())
    assert delays == [1, 2, 4, 5]


def test_an_engine_that_stayed_up_long_enough_starts_the_backoff_afresh():
    clock = Clock()
    backoff = Backoff(RestartPolicy(initial_s=1, max_s=60, healthy_after_s=120), clock)
    assert backoff.next_delay() == 1
    backoff.engine_up()
    clock.now += 30  # died again soon: the next delay grows
    assert backoff.next_delay() == 2
    backoff.engine_up()
    clock.now += 121  # ran healthily: a later death is a new story
    assert backoff.next_delay() == 1
    assert backoff.attempts == 1
