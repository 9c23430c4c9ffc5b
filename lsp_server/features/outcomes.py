"""What the user did with a suggestion, as editors report it.

The names are those of Copilot's language server, so editors and plugins written for it report to
vllm-ls unchanged: every item carries the command `vllm-ls.acceptCompletion` with its id (editors
run an item's command when the user accepts it: VS Code, Neovim 0.11's completion and 0.12's inline
completion, eglot), `textDocument/didShowCompletion` says it was drawn and
`textDocument/didPartiallyAcceptCompletion` that its first `acceptedLength` characters were taken.
The counts are in `vllm-ls/stats` (completion/offers.py); nothing leaves the machine.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from ..contract import ACCEPT_COMMAND, DID_PARTIALLY_ACCEPT_COMPLETION, DID_SHOW_COMPLETION

if TYPE_CHECKING:
    from ..server import VllmLanguageServer

log = logging.getLogger(__name__)


def accept_command(offer_id: str) -> types.Command:
    """The command an item carries: the editor runs it when the user accepts the item."""
    return types.Command(title="vllm-ls: suggestion accepted", command=ACCEPT_COMMAND, arguments=[offer_id])


def _field(value: Any, name: str) -> Any:
    # Custom notifications arrive as plain objects or dicts, depending on the pygls path.
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def _offer_id(item: Any) -> str | None:
    """The id in an item's accept command (`item.command.arguments[0]`), None when it has none."""
    command = _field(item, "command")
    arguments = _field(command, "arguments") if command is not None else None
    if _field(command, "command") != ACCEPT_COMMAND or not isinstance(arguments, (list, tuple)) or not arguments:
        return None
    return arguments[0] if isinstance(arguments[0], str) else None


async def did_show(ls: VllmLanguageServer, params: Any) -> None:
    """The editor drew the suggestion `params.item`."""
    offer_id = _offer_id(_field(params, "item"))
    if offer_id is None or not ls.offers.shown(offer_id):
        log.debug("didShowCompletion for an unknown item")


async def did_partially_accept(ls: VllmLanguageServer, params: Any) -> None:
    """The user took the first `params.acceptedLength` characters of `params.item`."""
    offer_id = _offer_id(_field(params, "item"))
    length = _field(params, "acceptedLength")
    if offer_id is None or not isinstance(length, int) or isinstance(length, bool) or length < 0:
        log.debug("didPartiallyAcceptCompletion without an item of ours or a length")
        return
    ls.offers.partly_accepted(offer_id, length)


async def accepted(ls, *arguments: Any) -> None:  # noqa: ANN001 - pygls evaluates command annotations at run time
    """`workspace/executeCommand` of an item's accept command: the user took the suggestion."""
    if len(arguments) == 1 and isinstance(arguments[0], str):
        ls.offers.accepted(arguments[0])


HANDLERS = (
    (DID_SHOW_COMPLETION, None, did_show),
    (DID_PARTIALLY_ACCEPT_COMPLETION, None, did_partially_accept),
)
COMMANDS = ((ACCEPT_COMMAND, accepted),)
