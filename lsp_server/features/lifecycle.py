"""Session lifecycle: settings from `initialize`, the engine started after `initialized`, stopped on
`shutdown`. `initialize` never waits for the engine: loading happens in the background."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from ..server import VllmLanguageServer

log = logging.getLogger(__name__)


async def initialize(ls: VllmLanguageServer, params: types.InitializeParams) -> None:
    """Adopt the client's settings; the engine starts after `initialized`."""
    ls.apply_settings(params.initialization_options)
    ls.loop_lag.start()


async def initialized(ls: VllmLanguageServer, params: types.InitializedParams) -> None:
    """Start the engine in the background."""
    ls.start_engine()


async def shutdown(ls: VllmLanguageServer, params: None) -> None:
    """Stop the engine (and its processes) before the client's `exit`."""
    log.info("shutdown requested: stopping the engine")
    await ls.speculation.close()
    running = len(ls.completer.streams)
    await ls.completer.close()
    # The engine's own aborted count with it: the speculation shutdown test reads this line.
    log.info("shutdown: %d speculations aborted since start; engine requests aborted: %d",
             ls.counters.speculations_aborted, ls.host.counters().requests_aborted)
    # The engine's own count, after every stream was closed: the shutdown test reads this line.
    log.info("shutdown: %d engine streams aborted; engine requests in flight: %d", running,
             ls.host.counters().requests_in_flight)
    await ls.host.close()
    await ls.loop_lag.stop()
    ls.traces.close()


async def did_change_configuration(ls: VllmLanguageServer, params: types.DidChangeConfigurationParams) -> None:
    """New settings; the engine is rebuilt only if `engine` settings changed."""
    ls.apply_settings(params.settings)
    ls.start_engine()  # restarts only if engine settings changed


HANDLERS = (
    (types.INITIALIZE, None, initialize),
    (types.INITIALIZED, None, initialized),
    (types.SHUTDOWN, None, shutdown),
    (types.WORKSPACE_DID_CHANGE_CONFIGURATION, None, did_change_configuration),
)
