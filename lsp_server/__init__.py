"""vllm-ls: AI code completions for any editor over LSP, served by vLLM."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vllm-ls")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
