import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import {
  ACCEPT_COMMAND,
  Inspected,
  SECTION,
  acceptedLength,
  explicitSettings,
  formatStats,
  reportedItem,
  serverExecutable,
  serverSettingKeys,
  statusView,
} from "../src/core";

test("the server runs as `vllm-ls serve` by default", () => {
  assert.deepEqual(serverExecutable({}), { command: "vllm-ls", args: ["serve"] });
  assert.deepEqual(serverExecutable({ command: "  " }), { command: "vllm-ls", args: ["serve"] });
});

test("flags go before `serve`, where the CLI expects global options", () => {
  const args = ["--engine-url", "http://gpu:8000", "-v"];
  assert.deepEqual(serverExecutable({ command: "/opt/bin/vllm-ls", args }), {
    command: "/opt/bin/vllm-ls",
    args: ["--engine-url", "http://gpu:8000", "-v", "serve"],
  });
});

test("a configured python wins over the command and runs the module", () => {
  assert.deepEqual(serverExecutable({ command: "vllm-ls", python: "/venv/bin/python", args: ["-v"] }), {
    command: "/venv/bin/python",
    args: ["-m", "lsp_server", "-v", "serve"],
  });
});

test("only settings the user set reach the server; defaults stay the server's", () => {
  const inspected: Record<string, Inspected> = {
    "scheduling.debounceMs": { globalValue: 300 },
    "generation.maxTokens": {},
    "engine.url": { workspaceFolderValue: ["http://gpu:8000"] },
    "generation.temperature": { workspaceLanguageValue: 0.2 },
  };
  const values: Record<string, unknown> = {
    "scheduling.debounceMs": 300, "generation.maxTokens": 96, "engine.url": ["http://gpu:8000"],
    "generation.temperature": 0.2,
  };
  const settings = explicitSettings(
    ["scheduling.debounceMs", "generation.maxTokens", "engine.url", "generation.temperature", "missing"],
    (key) => inspected[key],
    (key) => values[key],
  );
  // Dotted keys, as the server reads them (`{"scheduling.debounceMs": 300}` is `scheduling.debounceMs`).
  assert.deepEqual(settings, {
    "scheduling.debounceMs": 300, "engine.url": ["http://gpu:8000"], "generation.temperature": 0.2,
  });
});

test("the extension's own settings never reach the server (it rejects unknown settings)", () => {
  const settings = explicitSettings(
    ["server", "server.command", "scheduling.debounceMs"], () => ({ globalValue: "x" }), () => "x");
  assert.deepEqual(settings, { "scheduling.debounceMs": "x" });
});

test("server setting keys come from every configuration block of package.json", () => {
  const pkg = JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8"));
  const keys = serverSettingKeys(pkg.contributes.configuration, SECTION);
  assert.ok(keys.includes("scheduling.debounceMs"));
  assert.ok(keys.includes("engine.url"));
  assert.ok(keys.includes("engine.remote.apiKey"));
  assert.ok(!keys.some((key) => key.startsWith("server")), keys.join(","));
  assert.deepEqual(serverSettingKeys({ properties: { "vllmLs.a": {}, "other.b": {} } }, SECTION), ["a"]);
});

test("status bar: a remote server that is down or busy is a warning, not an error", () => {
  const paused = statusView({ state: "unavailable", message: "no vLLM server is reachable", engine: "remote" });
  assert.equal(paused.severity, "warning");
  assert.match(paused.tooltip, /no vLLM server is reachable/);
  const busy = statusView({ state: "overloaded", message: "retry after 1.0 s" });
  assert.equal(busy.severity, "warning");
  assert.match(busy.tooltip, /busy/);
});

test("status bar: an engine restarting or failing requests is a warning that says so", () => {
  const restarting = statusView({ state: "restarting", message: "the engine stopped; restarting in 1 s" });
  assert.equal(restarting.severity, "warning");
  assert.match(restarting.tooltip, /restarting in 1 s/);
  const degraded = statusView({ state: "degraded", message: "HTTP 500" });
  assert.equal(degraded.severity, "warning");
  assert.match(degraded.tooltip, /degraded.*HTTP 500/);
});

test("status bar: loading spins, ready shows the last latency, failure is an error", () => {
  assert.deepEqual(statusView({ state: "loading", message: "loading weights", engine: "embedded" }), {
    text: "$(sync~spin) vllm-ls",
    tooltip: "vllm-ls loading (embedded): loading weights",
    severity: "warning",
    label: "vllm-ls loading: loading weights",
  });
  const ready = statusView({ state: "ready", message: "completed in 412 ms", engine: "embedded", lastLatencyMs: 411.6 });
  assert.equal(ready.text, "$(check) vllm-ls 412 ms");
  assert.equal(ready.severity, "none");
  assert.equal(statusView({ state: "ready", lastLatencyMs: null }).text, "$(check) vllm-ls");
  const failed = statusView({ state: "failed", message: "no model" });
  assert.equal(failed.severity, "error");
  assert.match(failed.tooltip, /no model/);
  assert.equal(statusView(undefined).severity, "none");
  assert.equal(statusView({ state: "stopped" }).severity, "error");
});

test("status bar: a screen reader hears the state, not the icon", () => {
  assert.equal(statusView(undefined).label, "vllm-ls starting");
  assert.equal(statusView({ state: "loading" }).label, "vllm-ls loading");
  assert.equal(statusView({ state: "ready", message: "completed in 412 ms", lastLatencyMs: 411.6 }).label,
    "vllm-ls ready, 412 ms");
  assert.equal(statusView({ state: "ready" }).label, "vllm-ls ready");
  assert.equal(statusView({ state: "failed", message: "no model" }).label, "vllm-ls failed: no model");
  assert.equal(statusView({ state: "unavailable", message: "down" }).label, "vllm-ls paused: down");
  assert.equal(statusView({ state: "stopped" }).label, "vllm-ls is not running");
});

test("reports name the server's item by its accept command, and nothing else", () => {
  const command = { command: ACCEPT_COMMAND, title: "vllm-ls: suggestion accepted", arguments: ["s7"] };
  assert.deepEqual(reportedItem("n - 1)", command), {
    insertText: "n - 1)", command: { title: "vllm-ls: suggestion accepted", command: ACCEPT_COMMAND, arguments: ["s7"] },
  });
  assert.equal(reportedItem({ value: "snippet" }, command)?.insertText, "snippet");
  assert.equal(reportedItem("x", undefined), undefined);
  assert.equal(reportedItem("x", { command: "other.command", arguments: ["s7"] }), undefined);
  assert.equal(acceptedLength(4), 4);
  assert.equal(acceptedLength({ kind: 1, acceptedLength: 9 }), 9);
  assert.equal(acceptedLength(-1), undefined);
  assert.equal(acceptedLength({ kind: 1 }), undefined);
  assert.equal(acceptedLength(undefined), undefined);
});

test("stats are listed with the waste the design cares about", () => {
  const lines = formatStats({
    engine_tokens_generated: 120,
    tokens_received: 100,
    tokens_shown: 60,
    prompt_tokens: 1000,
    prompt_tokens_cached: 900,
    engine_state: "ready",
  });
  assert.equal(lines[0], "engine_state: ready");
  assert.ok(lines.includes("generated after a cancel (never read): 20 tokens"));
  assert.ok(lines.includes("generated but never shown: 60 tokens"));
  assert.ok(lines.includes("prefix cache hit rate: 90.0 %"));
  assert.deepEqual(formatStats({}), []);
});
