"""One popup per episode of trouble, none while a fault flaps, details logged without a flood."""

from lsp_server.hosting.notices import Notices


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
