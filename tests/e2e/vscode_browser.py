"""VS Code itself, driven as a person drives it: code-server with the packaged extension, opened
in Debian's Chromium through Playwright.

One `VsCode` is one code-server process (started fresh: a second browser session on the same
code-server would start a second extension host, and so a second server, during its reconnection
grace time) with its own user data, extensions and XDG directories under the test's tmp dir, on
127.0.0.1 with no authentication. Leaving the `with` block kills code-server's whole process group
(its extension host, the vllm-ls server and the engine with it). A failure inside the block leaves
a screenshot and the page's text next to the logs, and the failure message names them.

Waits are for what the page shows, with a timeout; the status bar item is read by its accessible
label (the extension sets one per state), which is also what a screen reader would say.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from .editor_installs import CodeServer

T = TypeVar("T")

# As the machine's notes give them: without the background-networking flags Chromium keeps
# opening connections this closed network refuses; as root it needs --no-sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
EXTENSION_ID = "vllm-ls.vllm-ls"
STATUS = '[id="vllm-ls.vllm-ls.vllmLs.status"]'  # the status bar item: extension id + item id
_LISTENING = re.compile(r"HTTP server listening on (http://127\.0\.0\.1:\d+/)")


class EditorFailed(AssertionError):
    """The editor showed that something is wrong (an error notification, a failed status)."""


class VsCode:
    def __init__(self, code_server: CodeServer, chromium: Path, vsix: Path, workspace: Path, tmp: Path,
                 settings: dict, env: dict[str, str], proposed_api: bool = False):
        self.code_server = code_server
        self.chromium = chromium
        self.vsix = vsix
        self.workspace = workspace
        self.tmp = tmp
        self.settings = settings
        self.env = env
        self.proposed_api = proposed_api
        self.user_data = tmp / "code-user-data"
        self.extensions = tmp / "code-extensions"
        self.log_path = tmp / "code-server.log"
        self.process: subprocess.Popen | None = None
        self.url: str | None = None
        self.page = None
        self._playwright = None
        self._browser = None
        self._log_lines: list[str] = []
        self._statuses: list[str] = []

    # -- start and stop -------------------------------------------------------------------------

    def __enter__(self) -> VsCode:
        try:
            self._install_extension()
            self._write_settings()
            self._start_code_server()
            self._open_browser()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        artifacts = ""
        if exc is not None and self.page is not None:
            artifacts = self.keep_artifacts("failure")
        try:
            if self._browser is not None:
                self._browser.close()
            if self._playwright is not None:
                self._playwright.stop()
        finally:
            self._stop_code_server()
        if isinstance(exc, Exception) and artifacts:
            kind = type(exc) if isinstance(exc, AssertionError) else AssertionError
            raise kind(f"{exc}\n{artifacts}") from exc

    def _code_env(self) -> dict[str, str]:
        env = self.code_server.node.env(self.env)
        for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
            path = self.tmp / f"code-{name.lower()}"
            path.mkdir(exist_ok=True)
            env[name] = str(path)
        return env

    def _install_extension(self) -> None:
        cmd = self.code_server.command("--user-data-dir", str(self.user_data), "--extensions-dir", str(self.extensions),
                                       "--install-extension", str(self.vsix), "--force")
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=self._code_env())
        installed = run.returncode == 0 and "successfully installed" in run.stdout
        assert installed, f"code-server --install-extension failed:\n{run.stdout}\n{run.stderr}"

    def _write_settings(self) -> None:
        user = self.user_data / "User"
        user.mkdir(parents=True, exist_ok=True)
        (user / "settings.json").write_text(json.dumps(self.settings, indent=2), encoding="utf-8")

    def _start_code_server(self, timeout: float = 60) -> None:
        config = self.tmp / "code-server.yaml"
        config.write_text("auth: none\n", encoding="utf-8")
        flags = ["--config", str(config), "--auth", "none", "--bind-addr", "127.0.0.1:0",
                 "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust",
                 "--disable-getting-started-override", "--reconnection-grace-time", "5",
                 "--user-data-dir", str(self.user_data), "--extensions-dir", str(self.extensions)]
        if self.proposed_api:
            flags += ["--enable-proposed-api", EXTENSION_ID]
        self.process = subprocess.Popen(
            self.code_server.command(*flags, str(self.workspace)), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=self._code_env(), start_new_session=True)
        listening = threading.Event()

        def pump() -> None:
            with open(self.log_path, "w", encoding="utf-8") as log:
                for line in self.process.stdout:
                    log.write(line)
                    log.flush()
                    self._log_lines.append(line)
                    match = _LISTENING.search(line)
                    if match and self.url is None:
                        self.url = match.group(1)
                        listening.set()
            listening.set()  # it exited

        threading.Thread(target=pump, daemon=True).start()
        if not listening.wait(timeout) or self.url is None:
            raise AssertionError(f"code-server did not start listening in {timeout:.0f} s:\n{self.log_tail()}")

    def _stop_code_server(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:  # whatever ignored the TERM (an engine still shutting down) goes now
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=15)

    def _open_browser(self) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(
            executable_path=str(self.chromium), headless=True, args=CHROMIUM_ARGS)
        context = self._browser.new_context(viewport={"width": 1400, "height": 900})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=self.url.rstrip("/"))
        self.page = context.new_page()
        self.page.set_default_timeout(30_000)
        self.page.goto(f"{self.url}?folder={self.workspace}")
        self.page.wait_for_selector(".monaco-workbench", timeout=60_000)

    # -- what the page shows --------------------------------------------------------------------

    def log_tail(self, chars: int = 3000) -> str:
        return "".join(self._log_lines)[-chars:]

    def keep_artifacts(self, name: str) -> str:
        """A screenshot and the page's text under the tmp dir; returns where they are."""
        shot = self.tmp / f"{name}.png"
        text = self.tmp / f"{name}.txt"
        try:
            self.page.screenshot(path=str(shot), timeout=20_000)
            text.write_text(self.page.inner_text("body", timeout=10_000), encoding="utf-8")
        except Exception as error:  # a dead page still leaves the logs
            return f"(no screenshot: {error})"
        return f"screenshot: {shot}\npage text: {text}\ncode-server log: {self.log_path}"

    def notifications(self) -> list[str]:
        """The texts of the notification toasts on screen."""
        return [t.strip() for t in self.page.locator(".notification-toast .notification-list-item-message")
                .all_inner_texts()]

    def status_label(self) -> str | None:
        """The accessible label of the extension's status bar item, None while it has none."""
        item = self.page.locator(STATUS)
        if item.count() == 0:
            return None
        label = item.first.get_attribute("aria-label")
        if label and (not self._statuses or self._statuses[-1] != label):
            self._statuses.append(label)
        return label

    @property
    def statuses(self) -> list[str]:
        """Every status label seen so far, in order, each once per change."""
        return list(self._statuses)

    def wait_for(self, what: str, check: Callable[[], T | None], timeout: float, poll: float = 0.1) -> T:
        """Poll `check` until it returns something truthy; fail early on what shows a failure."""
        deadline = time.monotonic() + timeout
        while True:
            self.status_label()
            result = check()
            if result:
                return result
            self.raise_if_failed(what)
            if time.monotonic() > deadline:
                raise AssertionError(f"VS Code: timed out after {timeout:.0f} s waiting for {what} "
                                     f"(status: {self.statuses[-3:]}, notifications: {self.notifications()})")
            self.page.wait_for_timeout(poll * 1000)

    def raise_if_failed(self, what: str) -> None:
        label = self.status_label() or ""
        if self.process is not None and self.process.poll() is not None:
            raise EditorFailed(f"code-server exited while waiting for {what}:\n{self.log_tail()}")
        failing = [n for n in self.notifications() if "vllm-ls" in n.lower() and (
            "could not" in n.lower() or "fail" in n.lower() or "error" in n.lower())]
        if label.startswith(("vllm-ls failed", "vllm-ls is not running")) or failing:
            raise EditorFailed(f"vllm-ls failed while waiting for {what}: status {label!r}, "
                               f"notifications {failing or self.notifications()}")

    # -- doing things ---------------------------------------------------------------------------

    def run_command(self, title: str) -> None:
        """Run a command from the command palette by its title, as a person does."""
        self.page.keyboard.press("F1")
        box = self.page.locator(".quick-input-widget input")
        box.wait_for(state="visible")
        box.fill(f">{title}")
        self.page.locator(".quick-input-list .monaco-list-row", has_text=title).first.wait_for(state="visible")
        self.page.keyboard.press("Enter")

    def open_file(self, name: str) -> None:
        """Open a workspace file from the Explorer, as a person does."""
        self.page.locator(".explorer-folders-view .monaco-list-row", has_text=name).first.click()
        self.page.locator(f'.tab.active[aria-label*="{name}"]').wait_for(state="visible")
        self.page.locator(".monaco-editor .view-lines").first.wait_for(state="visible")

    def go_to_line_end(self, line: int) -> None:
        """Ctrl+G to a line, then End: the cursor at the end of that line."""
        self.page.locator(".monaco-editor textarea").first.focus()
        self.page.keyboard.press("Control+G")
        box = self.page.locator(".quick-input-widget input")
        box.wait_for(state="visible")
        box.fill(f":{line}")
        self.page.keyboard.press("Enter")
        box.wait_for(state="hidden")
        self.page.keyboard.press("End")

    def type(self, text: str, delay_ms: float = 60) -> None:
        """Type into the focused editor key by key, as a person does (auto-closing included)."""
        self.page.keyboard.type(text, delay=delay_ms)

    def ghost_text(self) -> str:
        """The ghost text on screen: its part in the cursor's line, then the lines it adds below
        (each a view line of the ghost text's zone); '' when there is none."""
        return self.page.evaluate(
            """() => {
                const editor = document.querySelector('.monaco-editor.focused') || document.querySelector('.monaco-editor');
                if (!editor) return '';
                const text = (nodes) => [...nodes].map(n => n.textContent).join('');
                const inline = text(editor.querySelectorAll('.view-lines .view-line .ghost-text-decoration'));
                const below = [...editor.querySelectorAll('.ghost-text .view-line, div.ghost-text > div')]
                    .map(line => line.textContent);
                return [inline, ...below].join('\\n').replace(/\\u00a0/g, ' ').replace(/\\n+$/, '');
            }""")

    def suggest_widget_visible(self) -> bool:
        return self.page.locator(".editor-widget.suggest-widget.visible").count() > 0

    def output_text(self) -> str:
        """The text of the Output panel's editor (only the lines on screen are in the page)."""
        return self.page.locator(".panel .monaco-editor .view-lines").first.inner_text().replace("\xa0", " ")
