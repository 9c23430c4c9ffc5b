"""Real editors with the shipped editor setups, against the real server and the real embedded engine.

- Neovim (Debian's 0.7.2, headless) with editors/neovim: omnifunc completion, accepted with <C-y>.
- Emacs (Debian's emacs-nox + elpa-eglot, batch) with editors/emacs/vllm-ls.el: completion-at-point.
- VS Code: the extension builds, passes its unit tests and packages to a .vsix; a Node test with the
  protocol library the extension is built on gets ghost text (`textDocument/inlineCompletion`).
- Helix: the shipped languages.toml names a command the CLI accepts and settings the server accepts.

Each editor test starts one server (and engine) through the editor itself. Missing Debian packages
are installed (as root) and npm dependencies come from the committed package-lock.json, so a fresh
clone works; when everything is present these steps are a few existence checks.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from lsp_server.settings import parse_settings
from lsp_server.settings_docs import vscode as vscode_settings

pytestmark = pytest.mark.editors

ROOT = Path(__file__).resolve().parents[2]
EDITORS = ROOT / "editors"
VSCODE = EDITORS / "vscode"
EXAMPLE = ROOT / "docs" / "examples" / "fibonacci.py"
READY_TIMEOUT_S = 600
SERVER = [sys.executable, "-m", "lsp_server"]  # this installation's server, as `vllm-ls` would run


def _server_env(tmp_path: Path) -> dict[str, str]:
    """The editors' environment: this checkout's code, and their state files kept out of $HOME.

    XDG_CACHE_HOME stays: the converted embedded model lives there and is made once per machine.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    for name in ("XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        (tmp_path / name).mkdir(exist_ok=True)
        env[name] = str(tmp_path / name)
    return env


def _user_cache() -> str:
    return os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")


def _server_log(tmp_path: Path) -> list[str]:
    """Server flags that keep its log where a failing test can show it."""
    return ["--log-file", str(tmp_path / "server.log")]


def _log_tail(tmp_path: Path) -> str:
    log = tmp_path / "server.log"
    return "\n--- server log ---\n" + log.read_text(encoding="utf-8", errors="replace")[-4000:] if log.exists() else ""


def _run(cmd: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """Run an editor (and so its server and engine) in its own process group, all killed at the end.

    A timeout or a crash must not leave a vLLM engine behind on a 2-core machine.
    """
    started = time.monotonic()
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True, **kwargs)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{cmd[0]} did not finish in {timeout:.0f} s:\n{output[-6000:]}")
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    print(f"{Path(cmd[0]).name}: {time.monotonic() - started:.1f} s")
    return subprocess.CompletedProcess(cmd, process.returncode, output, "")


def _ensure_debian(packages: list[str], present: Callable[[], bool]) -> None:
    """Install Debian packages unless `present()` says they already are."""
    if present():
        return
    if os.geteuid() != 0:
        pytest.fail(f"missing; install with: apt-get install {' '.join(packages)}")
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    started = time.monotonic()
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        # Only an outdated (or empty) package list needs the slower update.
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    print(f"installed {' '.join(packages)} in {time.monotonic() - started:.1f} s")
    assert present(), f"still missing after installing {packages}"


def _read_result(path: Path, run: subprocess.CompletedProcess) -> dict:
    logs = run.stdout[-6000:] + _log_tail(path.parent)
    assert path.exists(), f"the editor wrote no result (exit {run.returncode}):\n{logs}"
    result = json.loads(path.read_text(encoding="utf-8"))
    assert result["ok"] is True, f"{result.get('message')}\n{logs}"
    return result


# -- Neovim ---------------------------------------------------------------------------------------

def test_neovim_omnifunc_completes_from_the_engine(tmp_path):
    _ensure_debian(["neovim"], lambda: shutil.which("nvim") is not None)
    nvim = shutil.which("nvim")
    work = tmp_path / "project"
    work.mkdir()
    source = work / "fibonacci.py"
    shutil.copy(EXAMPLE, source)
    result_path = tmp_path / "nvim-result.json"
    env = _server_env(tmp_path) | {
        "VLLM_LS_NVIM_PLUGIN": str(EDITORS / "neovim"),
        # Neovim 0.7 copies a server's stderr (vLLM's start-up chatter) into its cache's lsp.log:
        # that cache goes to tmp_path, while the server keeps the real one (the converted model).
        "XDG_CACHE_HOME": str(tmp_path / "nvim-cache"),
        "VLLM_LS_NVIM_CMD": json.dumps(["env", f"XDG_CACHE_HOME={_user_cache()}",
                                        *SERVER, *_server_log(tmp_path), "serve"]),
        "VLLM_LS_NVIM_RESULT": str(result_path),
        "VLLM_LS_NVIM_TIMEOUT_S": str(READY_TIMEOUT_S),
    }
    e2e = ROOT / "tests" / "e2e" / "editors"
    run = _run([nvim, "--headless", "-n", "-i", "NONE", "-u", str(e2e / "nvim_init.lua"),
                "-c", f"luafile {e2e / 'nvim_driver.lua'}", str(source)],
               timeout=READY_TIMEOUT_S + 120, cwd=work, env=env)
    result = _read_result(result_path, run)

    assert result["clients"] == ["vllm_ls"], "the plugin attached vllm-ls to the Python buffer"
    assert result["filetype"] == "python"
    assert result["omnifunc"] == "v:lua.vim.lsp.omnifunc"
    states = [status["state"] for status in result["statuses"]]
    assert "loading" in states and "ready" in states, states
    assert result["mode"] == "i", "the menu was open in insert mode"
    assert len(result["items"]) == 1
    item = result["items"][0]["user_data"]["nvim"]["lsp"]["completion_item"]
    assert item["detail"] == "vllm-ls"
    suggestion = item["textEdit"]["newText"]
    assert suggestion.strip(), "a non-empty completion from the engine"

    # <C-y> accepted it: the buffer is the old text plus the suggestion at the cursor, with a
    # multi-line suggestion split into real lines (the menu alone would leave ^@ in one line).
    before, after = result["before"], result["lines"]
    header = before.index("def fibonacci(n):")
    expected = before[: header + 1] + (before[header + 1] + suggestion).split("\n") + before[header + 2:]
    assert after == expected
    assert not any("\0" in line for line in after)


# -- Emacs + eglot --------------------------------------------------------------------------------

def test_emacs_eglot_completion_at_point_inserts_the_suggestion(tmp_path):
    _ensure_debian(["emacs-nox", "elpa-eglot"], lambda: shutil.which("emacs") is not None
                   and any(Path("/usr/share/emacs/site-lisp/elpa").glob("eglot-*")))
    emacs = shutil.which("emacs")
    work = tmp_path / "project"
    work.mkdir()
    source = work / "fibonacci.py"
    shutil.copy(EXAMPLE, source)
    result_path = tmp_path / "emacs-result.json"
    env = _server_env(tmp_path) | {
        "VLLM_LS_EMACS_CMD": json.dumps([*SERVER, *_server_log(tmp_path)]),
        "VLLM_LS_EMACS_FILE": str(source),
        "VLLM_LS_EMACS_RESULT": str(result_path),
        "VLLM_LS_EMACS_TIMEOUT_S": str(READY_TIMEOUT_S),
    }
    run = _run([emacs, "--batch", "-Q", "-L", str(EDITORS / "emacs"), "-l", str(EDITORS / "emacs" / "vllm-ls.el"),
                "-l", str(ROOT / "tests" / "e2e" / "editors" / "emacs_driver.el")],
               timeout=READY_TIMEOUT_S + 120, cwd=work, env=env)
    result = _read_result(result_path, run)

    assert result["mode"] == "python-mode"
    assert "eglot-completion-at-point" in result["capf"]
    assert result["status"]["state"] == "ready", "vllm-ls.el recorded the status notifications"
    before, after = result["before"], result["text"]
    cursor = before.index("def fibonacci(n):\n") + len("def fibonacci(n):\n    ")
    assert after.startswith(before[:cursor]) and after.endswith(before[cursor:])
    inserted = after[cursor: len(after) - len(before[cursor:])]
    assert inserted.strip(), "completion-at-point inserted the engine's suggestion"
    assert "def fibonacci" not in inserted.split("\n")[0]


# -- VS Code --------------------------------------------------------------------------------------

def _npm(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    npm = shutil.which("npm") or pytest.fail("npm is missing: the VS Code extension needs Node.js 20+ and npm")
    run = subprocess.run([npm, *args], cwd=VSCODE, capture_output=True, text=True, timeout=timeout, env=env)
    assert run.returncode == 0, f"npm {' '.join(args)} failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    return run


@pytest.fixture(scope="module")
def vscode_built() -> dict[str, str]:
    """node_modules from the lock file (once per lock file), then build, unit tests and package.

    Returns each step's output.
    """
    outputs: dict[str, str] = {}
    seconds: dict[str, float] = {}
    lock = (VSCODE / "package-lock.json").read_bytes()
    stamp = VSCODE / "node_modules" / ".vllm-ls-lock"
    if not stamp.exists() or stamp.read_bytes() != lock:
        started = time.monotonic()
        outputs["npm ci"] = _npm("ci", "--no-audit", "--no-fund").stdout
        stamp.write_bytes(lock)
        seconds["npm ci"] = round(time.monotonic() - started, 1)
    for step, args in (("build", ("run", "build")), ("unit tests", ("test",)), ("package", ("run", "package"))):
        started = time.monotonic()
        outputs[step] = _npm(*args).stdout
        seconds[step] = round(time.monotonic() - started, 1)
    print(f"vscode extension, seconds per step: {seconds}")
    return outputs


def test_vscode_settings_are_the_servers():
    """package.json's settings are generated from lsp_server/settings.py; drift fails here."""
    package = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    blocks = package["contributes"]["configuration"]
    assert blocks[0] == vscode_settings(), (
        "editors/vscode/package.json differs from the server's settings: run `make vscode-settings`")
    # The extension's own settings (how to start the server) must not collide with server settings.
    own = {key for block in blocks[1:] for key in block["properties"]}
    assert own and all(key.startswith("vllmLs.server.") for key in own), own
    assert not own & set(blocks[0]["properties"])


def test_vscode_extension_builds_passes_unit_tests_and_packages(vscode_built):
    unit = vscode_built["unit tests"]
    assert "# fail 0" in unit and "# pass 0" not in unit, unit
    vsix = VSCODE / "out" / "vllm-ls.vsix"
    with zipfile.ZipFile(vsix) as archive:
        names = set(archive.namelist())
        assert "extension/out/extension.js" in names, names
        assert not any("node_modules" in name or name.endswith(".ts") for name in names), names
        manifest = json.loads(archive.read("extension/package.json"))
    assert manifest["main"] == "./out/extension.js"
    assert manifest["contributes"]["configuration"][0] == vscode_settings()
    commands = {command["command"] for command in manifest["contributes"]["commands"]}
    assert commands == {"vllmLs.restartServer", "vllmLs.showStats"}
    # esbuild bundled the client library in: the .vsix needs no node_modules.
    bundle = (VSCODE / "out" / "extension.js").read_text(encoding="utf-8")
    assert "textDocument/inlineCompletion" in bundle


def test_vscode_protocol_library_gets_ghost_text_from_the_server(vscode_built, tmp_path):
    env = _server_env(tmp_path) | {
        "E2E_SERVER_PYTHON": sys.executable,
        "E2E_SERVER_ARGS": json.dumps(_server_log(tmp_path)),
        "E2E_READY_TIMEOUT_S": str(READY_TIMEOUT_S),
    }
    node = shutil.which("node") or pytest.fail("node is missing")
    run = _run([node, "--test", "out/e2e/"], timeout=READY_TIMEOUT_S + 300, cwd=VSCODE, env=env)
    assert run.returncode == 0 and "# fail 0" in run.stdout, run.stdout[-8000:] + _log_tail(tmp_path)
    assert "# pass 3" in run.stdout, run.stdout[-8000:]


# -- Helix ----------------------------------------------------------------------------------------

def test_helix_languages_toml_adds_vllm_ls_for_completion_only():
    from lsp_server.__main__ import _parser

    config = tomllib.loads((EDITORS / "helix" / "languages.toml").read_text(encoding="utf-8"))
    server = config["language-server"]["vllm-ls"]
    assert server["command"] == "vllm-ls"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "vllm-ls" in pyproject["project"]["scripts"], "the command Helix runs is the installed script"
    assert _parser().parse_args(server["args"]).command == "serve"
    settings, problems = parse_settings(server["config"])
    assert problems == [], problems
    languages = {language["name"]: language for language in config["language"]}
    assert "python" in languages
    for name, language in languages.items():
        ours = [entry for entry in language["language-servers"] if isinstance(entry, dict)]
        assert ours == [{"name": "vllm-ls", "only-features": ["completion"]}], name
        others = [entry for entry in language["language-servers"] if isinstance(entry, str)]
        assert others, f"{name}: the language keeps its own server next to vllm-ls"


def test_emacs_setups_load_with_eglot_and_lsp_mode(tmp_path):
    """vllm-ls.el byte-compiles cleanly next to real eglot and lsp-mode (Debian's 1.9 and 8) and
    registers what the docs promise; no server is started here."""
    _ensure_debian(["emacs-nox", "elpa-eglot", "elpa-lsp-mode"], lambda: shutil.which("emacs") is not None and all(
        any(Path("/usr/share/emacs/site-lisp/elpa").glob(f"{name}-*")) for name in ("eglot", "lsp-mode")))
    result_path = tmp_path / "setup.json"
    env = {**os.environ, "VLLM_LS_EMACS_EL": str(EDITORS / "emacs" / "vllm-ls.el"),
           "VLLM_LS_EMACS_OUT": str(tmp_path), "VLLM_LS_EMACS_RESULT": str(result_path)}
    run = subprocess.run(["emacs", "--batch", "-Q", "-l", str(ROOT / "tests" / "e2e" / "editors" / "emacs_setup_check.el")],
                         capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert run.returncode == 0 and result_path.exists(), run.stdout + run.stderr
    result = json.loads(result_path.read_text(encoding="utf-8"))

    command = result["command"]
    assert command == ["/venv/bin/vllm-ls", "--engine-url", "http://127.0.0.1:8000", "serve"]
    from lsp_server.__main__ import _parser

    parsed = _parser().parse_args(command[1:])
    assert parsed.command == "serve" and parsed.engine_url == ["http://127.0.0.1:8000"]
    assert result["emptyOptions"] == "{}", "empty settings go out as an object, not null"
    for key in ("options", "lspInitOptions"):
        settings, problems = parse_settings(json.loads(result[key]))
        assert problems == [] and settings.scheduling.debounce_ms == 150, (key, problems)
    assert result["eglotFirst"] is True
    assert result["eglotContact"].startswith('("/venv/bin/vllm-ls" "--engine-url"')
    assert ":initializationOptions" in result["eglotContact"]
    assert result["addOn"] is True, "lsp-mode runs vllm-ls next to the language's own server"
    assert result["suggestCommand"] is True
    assert result["activatesPython"] is True and result["activatesText"] is False
    assert result["statusText"] == "vllm-ls 412ms", "the lsp-mode status handler reads the notification"


def test_neovim_plugin_lua_compiles():
    """Every Lua file of the plugin, the 0.12 one included, is valid Lua for Neovim's LuaJIT.

    Only the legacy path can run on Debian's Neovim 0.7.2; this at least keeps the 0.12 path loadable."""
    _ensure_debian(["neovim"], lambda: shutil.which("nvim") is not None)
    files = sorted(str(p) for p in (EDITORS / "neovim").rglob("*.lua"))
    assert len(files) >= 3, files
    check = ("lua for _, f in ipairs(vim.fn.json_decode(os.getenv('LUA_FILES'))) do "
             "local ok, err = loadfile(f); if not ok then io.stderr:write(err .. '\\n'); vim.cmd('cquit 1') end end")
    run = subprocess.run(["nvim", "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", check, "-c", "qa!"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "LUA_FILES": json.dumps(files)})
    assert run.returncode == 0, run.stderr
