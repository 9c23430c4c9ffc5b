"""What the user did with each suggestion, reported as editors report it (Copilot's notification
names and the accept command every item carries), counted in `vllm-ls/stats`."""

from __future__ import annotations

from lsprotocol import types

from .lsp_helpers import configure, inline_params, insert, open_document, stats

FIB = "def fibonacci(n):\n    "
ACCEPT = "vllm-ls.acceptCompletion"
# On a shared 2-core machine under load a block takes longer than the 30 s default and is answered
# empty; these tests are about what happens to an answer, so they wait for one.
LOADED_MACHINE_MS = 240000
OUTCOMES = ("completions_shown", "completions_accepted", "completions_partially_accepted",
            "completions_dismissed", "characters_accepted")


def _delta(before: dict, after: dict) -> dict[str, int]:
    return {name: after[name] - before[name] for name in OUTCOMES}


def _item(client, item: types.InlineCompletionItem | types.CompletionItem) -> dict:
    return client.protocol._converter.unstructure(item)


async def _suggest(client, uri: str, line: int, character: int) -> types.InlineCompletionItem:
    result = await client.text_document_inline_completion_async(inline_params(uri, line, character))
    assert result.items and result.items[0].insert_text.strip(), "a suggestion from the engine"
    return result.items[0]


async def test_the_server_offers_the_accept_command_and_trigger_characters(client):
    capabilities = client.init_result.capabilities
    assert ACCEPT in capabilities.execute_command_provider.commands
    assert "." in capabilities.completion_provider.trigger_characters


async def test_shown_partly_accepted_accepted_and_dismissed_are_counted(client):
    await configure(client, {"scheduling.debounceMs": 0, "scheduling.requestTimeoutMs": LOADED_MACHINE_MS})
    uri = open_document(client, FIB)
    before = await stats(client)
    item = await _suggest(client, uri, 1, 4)
    assert item.command.command == ACCEPT and len(item.command.arguments) == 1

    # Shown, a word taken (Ctrl+Right in VS Code), then the rest (Tab): the editor runs the command.
    client.protocol.notify("textDocument/didShowCompletion", {"item": _item(client, item)})
    client.protocol.notify("textDocument/didPartiallyAcceptCompletion", {"item": _item(client, item), "acceptedLength": 2})
    await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=item.command.command, arguments=item.command.arguments))
    accepted = await stats(client)
    assert _delta(before, accepted) == {
        "completions_shown": 1, "completions_accepted": 1, "completions_partially_accepted": 1,
        "completions_dismissed": 0, "characters_accepted": len(item.insert_text)}

    # The next suggestion is shown, then the user types something else and closes the file.
    insert(client, uri, 1, 4, item.insert_text)
    lines = (FIB + item.insert_text).split("\n")
    insert(client, uri, len(lines) - 1, len(lines[-1]), "\n    ")
    second = await _suggest(client, uri, len(lines), 4)
    client.protocol.notify("textDocument/didShowCompletion", {"item": _item(client, second)})
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    after = await stats(client)
    assert _delta(accepted, after) == {
        "completions_shown": 1, "completions_accepted": 0, "completions_partially_accepted": 0,
        "completions_dismissed": 1, "characters_accepted": 0}


async def test_completion_items_carry_the_accept_command(client):
    await configure(client, {"scheduling.debounceMs": 0, "scheduling.requestTimeoutMs": LOADED_MACHINE_MS})
    uri = open_document(client, FIB)
    before = await stats(client)
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=1, character=4)))
    (item,) = result.items
    assert item.command.command == ACCEPT
    # Neovim 0.11 and eglot run the command when the item is accepted.
    await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=item.command.command, arguments=item.command.arguments))
    assert _delta(before, await stats(client))["completions_accepted"] == 1


async def test_reports_about_unknown_items_change_nothing(client):
    before = await stats(client)
    client.protocol.notify("textDocument/didShowCompletion", {"item": {"insertText": "x"}})
    client.protocol.notify("textDocument/didShowCompletion", {"item": {"command": {"command": ACCEPT, "arguments": ["s0"]}}})
    client.protocol.notify("textDocument/didPartiallyAcceptCompletion", {"item": {"command": {"command": ACCEPT, "arguments": ["s0"]}}, "acceptedLength": "2"})
    client.protocol.notify("textDocument/didShowCompletion", {})
    await client.workspace_execute_command_async(types.ExecuteCommandParams(command=ACCEPT, arguments=["s0"]))
    await client.workspace_execute_command_async(types.ExecuteCommandParams(command=ACCEPT, arguments=[]))
    after = await stats(client)
    assert _delta(before, after) == dict.fromkeys(OUTCOMES, 0)
    assert after["messages_rejected"] == before["messages_rejected"], "well-formed reports are not errors"
