"""The remote engine: vLLM OpenAI-compatible servers over httpx.

- `engine.py`: `RemoteEngine` (lifecycle, state, completions with failover, counters);
- `exchange.py`: HTTP with a server (bounded answers; streamed exchanges that a cancel cannot leave
  half-closed);
- `probe.py`: health and model discovery; `tokenizer.py`: an optional local tokenizer;
- `replicas.py`: placement and health bookkeeping (pure); `scraper.py` + `metering.py`: the servers'
  own counters scoped to our requests; `wire.py`: SSE, chunks, stop strings, small parsers (pure).
"""

from .engine import RemoteEngine, RemoteEngineConfig

__all__ = ["RemoteEngine", "RemoteEngineConfig"]
