"""What the user did with each suggestion, counted from what editors report (completion/offers.py)."""

from lsp_server.completion.counters import ServerCounters
from lsp_server.completion.offers import Offers


def outcomes(counters: ServerCounters) -> dict[str, int]:
    return {name: getattr(counters, name) for name in (
        "completions_shown", "completions_accepted", "completions_partially_accepted", "completions_dismissed",
        "characters_accepted")}


def test_shown_then_accepted_counts_once_each():
    counters = ServerCounters()
    offers = Offers(counters)
    (offer,) = offers.offer("a", ["n - 1)"])
    assert offers.shown(offer) and offers.shown(offer)  # VS Code may report a suggestion twice
    assert offers.accepted(offer) and offers.accepted(offer)
    offers.offer("a", ["other"])  # the next suggestion settles the accepted one: not a dismissal
    assert outcomes(counters) == {"completions_shown": 1, "completions_accepted": 1,
                                  "completions_partially_accepted": 0, "completions_dismissed": 0,
                                  "characters_accepted": 6}


def test_shown_and_replaced_without_acceptance_is_dismissed():
    counters = ServerCounters()
    offers = Offers(counters)
    (first,) = offers.offer("a", ["x = 1"])
    offers.shown(first)
    (second,) = offers.offer("a", ["y = 2"])
    assert counters.completions_dismissed == 1
    offers.shown(second)
    offers.document_closed("a")
    assert counters.completions_dismissed == 2
    offers.document_closed("a")  # closing twice settles nothing more
    assert counters.completions_dismissed == 2


def test_not_shown_is_never_dismissed():
    """Editors that report no "shown" (most) cannot tell a dismissal: none is counted for them."""
    counters = ServerCounters()
    offers = Offers(counters)
    offers.offer("a", ["x = 1"])
    offers.offer("a", ["y = 2"])
    offers.document_closed("a")
    assert counters.completions_dismissed == 0


def test_typing_along_continues_the_suggestion():
    """The cache's answer for what is left is the same suggestion: typing along is no dismissal,
    and taking the rest accepts it (once)."""
    counters = ServerCounters()
    offers = Offers(counters)
    (first,) = offers.offer("a", ["return n"])
    offers.shown(first)
    (rest,) = offers.offer("a", ["eturn n"], continues=True)
    offers.shown(rest)
    assert counters.completions_shown == 1 and counters.completions_dismissed == 0
    offers.accepted(rest)
    offers.document_closed("a")
    assert outcomes(counters)["completions_accepted"] == 1
    assert counters.completions_dismissed == 0 and counters.characters_accepted == len("eturn n")


def test_continuing_a_settled_suggestion_starts_a_new_one():
    counters = ServerCounters()
    offers = Offers(counters)
    (first,) = offers.offer("a", ["abc"])
    offers.shown(first)
    offers.document_closed("a")
    (again,) = offers.offer("a", ["bc"], continues=True)
    offers.shown(again)
    assert counters.completions_shown == 2 and counters.completions_dismissed == 1


def test_partial_acceptance_counts_characters_once_in_total():
    """Editors report the total taken so far; accepting the rest afterwards adds only the rest."""
    counters = ServerCounters()
    offers = Offers(counters)
    (offer,) = offers.offer("a", ["fibonacci(n - 1)"])
    offers.shown(offer)
    offers.partly_accepted(offer, 9)
    offers.partly_accepted(offer, 11)
    offers.partly_accepted(offer, 5)  # out of order: nothing taken back
    assert counters.completions_partially_accepted == 1 and counters.characters_accepted == 11
    offers.accepted(offer)
    assert counters.characters_accepted == len("fibonacci(n - 1)")
    offers.partly_accepted(offer, 999)  # more than the text: capped
    assert counters.characters_accepted == len("fibonacci(n - 1)")
    offers.document_closed("a")
    assert counters.completions_dismissed == 0


def test_candidates_share_one_suggestion_and_documents_are_separate():
    counters = ServerCounters()
    offers = Offers(counters)
    one, two = offers.offer("a", ["x", "y"])
    (other,) = offers.offer("b", ["z"])
    offers.shown(one)
    offers.shown(two)  # cycling through candidates shows the same suggestion
    offers.shown(other)
    assert counters.completions_shown == 2
    offers.accepted(two)
    offers.document_closed("a")
    offers.document_closed("b")
    assert counters.completions_accepted == 1 and counters.completions_dismissed == 1


def test_unknown_and_forgotten_ids_are_refused():
    counters = ServerCounters()
    offers = Offers(counters, capacity=2)
    (old,) = offers.offer("a", ["1"])
    offers.offer("b", ["2"])
    offers.offer("c", ["3"])
    assert not offers.shown(old) and not offers.accepted(old) and not offers.partly_accepted(old, 1)
    assert not offers.shown("nope")
    assert outcomes(counters) == dict.fromkeys(outcomes(counters), 0)
