"""SIGTERM and SIGHUP as a way to stop, not a way to die: the running coroutine is cancelled, so
its `finally` blocks stop the engines and servers it started, and the process then leaves with
128 + the signal's number.

Python's default for both is to die at once. vLLM's engine-core and worker processes do not watch
the process that started them, so they would run on without a parent, holding gigabytes, for good:
an editor ending its server with SIGTERM (Neovim on `:qa`), a CI job's timeout killing
`vllm-ls check`, a terminal closing on `vllm-ls bench`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The signals that stop the process the way the end of its work does.
TERMINATING = (signal.SIGTERM, signal.SIGHUP)


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`, stopped cleanly by a terminating signal (SystemExit(128 + signal))."""
    return asyncio.run(until_terminated(main))


async def until_terminated(main: Coroutine[Any, Any, T]) -> T:
    """Run `main`; a terminating signal cancels it, and once its cleanup has run, SystemExit says
    which signal it was. Further signals meanwhile are ignored: a second cancel would interrupt
    the cleanup (an engine half stopped)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    received: list[int] = []

    def terminate(signum: int) -> None:
        if not received and task is not None:
            received.append(signum)
            log.warning("%s received: stopping the engine, then leaving", signal.Signals(signum).name)
            task.cancel()

    for signum in TERMINATING:
        loop.add_signal_handler(signum, terminate, signum)
    try:
        return await main
    except asyncio.CancelledError:
        if not received:
            raise
        raise SystemExit(128 + received[0]) from None
    finally:
        for signum in TERMINATING:
            loop.remove_signal_handler(signum)
