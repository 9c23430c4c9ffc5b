"""Messages as real clients send them reach the handlers."""

from __future__ import annotations

from lsp_server.server import build_server


def test_a_custom_request_without_params_is_read():
    # vscode-jsonrpc's `sendRequest("vllm-ls/stats")` sends no `params` at all.
    protocol = build_server().protocol
    message = protocol.structure_message({"jsonrpc": "2.0", "id": 7, "method": "vllm-ls/stats"})
    assert message.method == "vllm-ls/stats"
    assert message.id == 7
    assert message.params is None


def test_nested_objects_are_left_alone():
    protocol = build_server().protocol
    nested = {"method": "not a message", "other": 1}
    assert protocol.structure_message(dict(nested)) == nested
