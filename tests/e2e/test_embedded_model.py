"""The embedded model is prepared atomically: an interrupted conversion never looks ready."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine import embedded


def _model_path_cmd() -> list[str]:
    return [sys.executable, "-m", "lsp_server", "model", "path"]


def test_interrupted_conversion_leaves_nothing_that_looks_ready(tmp_path: Path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    target = tmp_path / "vllm-ls" / "models" / embedded.MODEL_DIR_NAME
    proc = subprocess.Popen(_model_path_cmd(), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Interrupt once the conversion has started writing its temporary directory.
    deadline = time.monotonic() + 180
    while not list(target.parent.glob(f".{embedded.MODEL_DIR_NAME}.partial-*")):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "conversion never started"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert not target.exists(), "a killed conversion must not leave the final directory"
    assert not embedded.is_ready(target)

    # The next run cleans up the leftovers and finishes; progress goes to stderr, the path to stdout.
    done = subprocess.run(_model_path_cmd(), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == target
    assert embedded.is_ready(target)
    assert "converting" in done.stderr
    assert not list(target.parent.glob(f".{embedded.MODEL_DIR_NAME}.partial-*"))

    # Prepared: a second call is instant and prints the same directory.
    again = subprocess.run(_model_path_cmd(), env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and Path(again.stdout.strip()) == target
    assert again.stderr == ""
