"""The parts of the check runner that need no server: the engine URL pre-flight and completion items."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest
from lsprotocol import types

from lsp_server.tools.check.runner import inserted_text, preflight, public_url


@pytest.mark.parametrize(("url", "shown"), [
    ("http://gpu:8000", "http://gpu:8000"),
    ("https://user:s3cret@gpu.example.com/v1?key=s3cret", "https://gpu.example.com/v1"),
    ("http://[::1]:8000/", "http://[::1]:8000/"),
    ("http://user:pw@host:99999/x?k=v", "http://host:99999/x"),
])
def test_public_url_drops_credentials(url, shown):
    assert public_url(url) == shown


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_preflight_names_the_url_and_the_reason():
    port = free_port()  # closed again: nothing listens there
    assert preflight(f"http://user:s3cret@127.0.0.1:{port}") == (
        f"cannot reach the engine at http://127.0.0.1:{port}: connection refused")


@pytest.mark.parametrize("status", [200, 404])
def test_any_http_answer_counts_as_reachable(status):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert preflight(f"http://127.0.0.1:{server.server_port}/") is None
    finally:
        server.shutdown()
        server.server_close()


def item(new_text: str, start: int, end: int, line: int = 1) -> types.CompletionItem:
    return types.CompletionItem(label=new_text, text_edit=types.TextEdit(
        range=types.Range(start=types.Position(line, start), end=types.Position(line, end)), new_text=new_text))


@pytest.mark.parametrize(("text", "position", "completion_item", "inserted"), [
    # The item replaces the word before the cursor ("fib") with the word plus the suggestion.
    ("x\n    return fib\n", (1, 14), item("fibonacci(n - 1)", 11, 14), "onacci(n - 1)"),
    ("x\n    return \n", (1, 11), item("n + 1", 11, 11), "n + 1"),
    ("x\r\n  é😀ab\r\n", (1, 7), item("abc", 5, 7), "c"),  # UTF-16 columns, CRLF lines
    ("x\n", (0, 1), types.CompletionItem(label="label", insert_text="inserted"), "inserted"),
])
def test_inserted_text_of_a_completion_item(text, position, completion_item, inserted):
    assert inserted_text(text, position, completion_item) == inserted
