"""Peak resident memory of a server process and of the processes it started (the in-process engine's
engine-core process), sampled with psutil while a replay runs."""

from __future__ import annotations

import asyncio
import contextlib

import psutil

_MB = 1024 * 1024


class RssSampler:
    """Samples every `interval` seconds between `start()` and `stop()`; peaks in MB."""

    def __init__(self, pid: int | None, interval: float = 0.25):
        self.pid = pid
        self.interval = interval
        self.peak_server = 0
        self.peak_children = 0
        self._task: asyncio.Task | None = None

    def sample(self) -> None:
        if self.pid is None:
            return
        try:
            process = psutil.Process(self.pid)
            server = process.memory_info().rss
            children = process.children(recursive=True)
        except psutil.Error:
            return  # the server has gone: the last samples stand
        total = 0
        for child in children:
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        self.peak_server = max(self.peak_server, server)
        self.peak_children = max(self.peak_children, total)

    def start(self) -> None:
        self.sample()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, float | None]:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.sample()
        return self.peaks()

    def peaks(self) -> dict[str, float | None]:
        return {
            "peak_rss_mb": round(self.peak_server / _MB, 1) if self.peak_server else None,
            # The in-process engine's own processes; none with a remote engine.
            "peak_rss_engine_mb": round(self.peak_children / _MB, 1),
        }

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.sample()
