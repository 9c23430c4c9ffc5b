"""Replies from the client to requests of ours (progress tokens, configuration): a late reply to a
request we stopped waiting for is dropped quietly; a timely one completes its future."""

from concurrent.futures import Future

from lsp_server.server import build_server


def test_a_reply_after_we_stopped_waiting_is_dropped_without_an_error():
    protocol = build_server().protocol
    late: Future = Future()
    late.cancel()  # e.g. a progress token asked for during a load that shutdown cancelled
    protocol._request_futures["late"] = late
    protocol._handle_response("late", None)  # pygls alone raises InvalidStateError here
    assert "late" not in protocol._request_futures


def test_a_timely_reply_completes_its_request():
    protocol = build_server().protocol
    waiting: Future = Future()
    protocol._request_futures["waiting"] = waiting
    protocol._handle_response("waiting", {"ok": True})
    assert waiting.result(timeout=0) == {"ok": True}
    assert "waiting" not in protocol._request_futures


def test_a_cancel_for_a_request_already_answered_is_not_a_warning(caplog):
    # VS Code cancels the previous keystroke's request before every keystroke, answered or not.
    protocol = build_server().protocol
    with caplog.at_level("DEBUG"):
        protocol._handle_cancel_notification("answered-long-ago")
    assert not [r for r in caplog.records if r.levelname == "WARNING"], caplog.text


def test_a_cancel_for_a_running_request_cancels_it():
    protocol = build_server().protocol
    running: Future = Future()
    protocol._request_futures["running"] = running
    protocol._handle_cancel_notification("running")
    assert running.cancelled()
