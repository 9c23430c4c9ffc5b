"""Replica placement and health bookkeeping, with a fake clock (pure code: no network)."""

import collections

import pytest

from engine.remote.replicas import HealthPolicy, Replicas

URLS = ["http://a:8000", "http://b:8000", "http://c:8000"]


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def make(urls=URLS, **policy):
    clock = Clock()
    replicas = Replicas(list(urls), HealthPolicy(**policy), clock=clock, jitter=lambda: 0.5)
    for endpoint in replicas.endpoints:
        replicas.mark_up(endpoint)
    return replicas, clock


def test_needs_an_url_and_drops_duplicates():
    with pytest.raises(ValueError):
        Replicas([])
    assert [e.url for e in Replicas(["http://a", "http://a", "http://b"]).endpoints] == ["http://a", "http://b"]


def test_same_document_always_goes_to_the_same_replica():
    replicas, _ = make()
    first = [e.url for e in replicas.candidates("file:///x.py")]
    for _ in range(5):
        assert [e.url for e in replicas.candidates("file:///x.py")] == first
    assert sorted(first) == sorted(URLS)


def test_documents_spread_over_replicas():
    replicas, _ = make()
    counts = collections.Counter(replicas.candidates(f"file:///doc{i}.py")[0].url for i in range(300))
    assert set(counts) == set(URLS)
    assert min(counts.values()) > 60  # roughly a third each


def test_a_down_replica_moves_only_its_own_documents():
    replicas, _ = make()
    docs = [f"file:///doc{i}.py" for i in range(100)]
    before = {d: replicas.candidates(d)[0].url for d in docs}
    replicas.mark_down(replicas.endpoints[1], "refused")
    after = {d: replicas.candidates(d)[0].url for d in docs}
    for doc in docs:
        assert after[doc] != URLS[1]
        if before[doc] != URLS[1]:
            assert after[doc] == before[doc]
        else:  # moves to its second choice
            assert after[doc] == [e.url for e in make()[0].candidates(doc)][1]


def test_without_affinity_least_busy_first_then_round_robin():
    replicas, _ = make()
    replicas.endpoints[0].in_flight = 2
    replicas.endpoints[1].in_flight = 1
    assert [e.url for e in replicas.candidates(None)] == [URLS[2], URLS[1], URLS[0]]
    for e in replicas.endpoints:
        e.in_flight = 0
    firsts = {replicas.candidates(None)[0].url for _ in range(3)}
    assert firsts == set(URLS)


def test_down_endpoint_is_retried_with_growing_backoff_up_to_the_cap():
    replicas, clock = make(backoff_initial=0.5, backoff_max=4.0)
    endpoint = replicas.endpoints[0]
    delays = []
    for _ in range(6):
        replicas.mark_down(endpoint, "refused")
        delays.append(endpoint.next_check - clock.now)
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]  # jitter 0.5 → factor 1.0
    assert replicas.mark_up(endpoint) is True  # news: it came back
    assert endpoint.failures == 0


def test_state_changes_are_news_once():
    replicas, _ = make()
    endpoint = replicas.endpoints[0]
    assert replicas.mark_down(endpoint, "x") is True
    assert replicas.mark_down(endpoint, "x") is False
    assert replicas.mark_up(endpoint) is True
    assert replicas.mark_up(endpoint) is False


def test_jitter_spreads_probes():
    replicas = Replicas(["http://a"], HealthPolicy(backoff_initial=10, backoff_max=10), jitter=lambda: 0.0)
    assert replicas.backoff(1) == pytest.approx(8.0)
    replicas = Replicas(["http://a"], HealthPolicy(backoff_initial=10, backoff_max=10), jitter=lambda: 1.0)
    assert replicas.backoff(1) == pytest.approx(12.0)


def test_due_and_wake():
    replicas, clock = make(backoff_initial=8.0, wake_gap=1.0, healthy_interval=10.0)
    down = replicas.endpoints[0]
    replicas.mark_down(down, "refused")
    assert replicas.due() == []
    assert replicas.seconds_until_due() == pytest.approx(8.0)
    assert replicas.wake() is False  # checked just now: not more often than wake_gap
    clock.now += 1.5
    assert replicas.wake() is True
    assert replicas.due() == [down]
    clock.now += 10
    assert set(e.url for e in replicas.due()) == set(URLS)  # healthy ones are re-checked too


def test_overloaded_endpoint_is_skipped_until_retry_after():
    replicas, clock = make(overload_default=1.0)
    a, b, c = replicas.endpoints
    assert replicas.mark_overloaded(a, 5.0) == 5.0
    assert replicas.mark_overloaded(b, None) == 1.0
    assert [e.url for e in replicas.candidates("doc")] == [c.url]
    assert replicas.overloaded_for() is None  # c still takes work
    replicas.mark_overloaded(c, 2.0)
    assert replicas.candidates("doc") == []
    assert replicas.overloaded_for() == pytest.approx(1.0)
    clock.now += 1.0
    assert [e.url for e in replicas.candidates(None)] == [b.url]
    assert a.rejected == 1


def test_nothing_healthy_means_no_candidates():
    replicas, _ = make()
    for endpoint in replicas.endpoints:
        replicas.mark_down(endpoint, "refused")
    assert replicas.candidates("doc") == [] and not replicas.any_healthy
    assert replicas.overloaded_for() is None
