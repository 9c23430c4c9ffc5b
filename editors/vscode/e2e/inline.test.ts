// End to end: the protocol library vscode-languageclient is built on, against the real vllm-ls server
// and its real engine, started the way the extension starts it (serverExecutable from src/core).
//
// Environment (no VLLM_ prefix: vLLM warns about every VLLM_* variable it does not know):
// E2E_SERVER_PYTHON (a Python with vllm-ls) or E2E_SERVER_COMMAND (default `vllm-ls`),
// E2E_SERVER_ARGS (JSON list of flags), E2E_READY_TIMEOUT_S (default 600); E2E_SERVER_STDERR=1
// passes the server's log through.
// tests/e2e/test_editors.py runs this with the project's Python.

import { strict as assert } from "node:assert";
import { ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { pathToFileURL } from "node:url";

import {
  DidOpenTextDocumentNotification,
  ExitNotification,
  InitializeRequest,
  InitializeResult,
  InitializedNotification,
  InlineCompletionItem,
  InlineCompletionList,
  InlineCompletionRequest,
  InlineCompletionTriggerKind,
  ProtocolConnection,
  ShutdownRequest,
  WorkDoneProgress,
  WorkDoneProgressCreateRequest,
  createProtocolConnection,
} from "vscode-languageserver-protocol/node";

import { SECTION, STATS_REQUEST, STATUS_NOTIFICATION, Status, formatStats, serverExecutable, statusView } from "../src/core";

const root = resolve(__dirname, "..", "..", "..", "..");
const example = join(root, "docs", "examples", "fibonacci.py");
const readyTimeoutMs = 1000 * Number(process.env.E2E_READY_TIMEOUT_S ?? 600);

let server: ChildProcess;
let connection: ProtocolConnection;
let initialized: InitializeResult;
const statuses: Status[] = [];
const progress: unknown[] = [];
let stderrTail = "";

before(async () => {
  const executable = serverExecutable({
    command: process.env.E2E_SERVER_COMMAND,
    python: process.env.E2E_SERVER_PYTHON,
    args: JSON.parse(process.env.E2E_SERVER_ARGS ?? "[]"),
  });
  server = spawn(executable.command, executable.args, { stdio: ["pipe", "pipe", "pipe"] });
  // The engine is chatty on stderr; an unread pipe would eventually block it.
  server.stderr!.on("data", (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString()).slice(-4000);
    if (process.env.E2E_SERVER_STDERR) process.stderr.write(chunk);
  });
  connection = createProtocolConnection(server.stdout!, server.stdin!);
  connection.onNotification(STATUS_NOTIFICATION, (status: Status) => {
    statuses.push(status);
  });
  // As vscode-languageclient does: accept the token, then listen to that token's progress.
  connection.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
    connection.onProgress(WorkDoneProgress.type, token, (value) => {
      progress.push(value);
    });
  });
  connection.onNotification("window/logMessage", () => undefined);
  connection.listen();

  initialized = await connection.sendRequest(InitializeRequest.type, {
    processId: process.pid,
    rootUri: pathToFileURL(root).href,
    // What vscode-languageclient 10 announces for the features used here.
    capabilities: {
      window: { workDoneProgress: true, showMessage: {} },
      general: { positionEncodings: ["utf-16"] },
      textDocument: {
        synchronization: { dynamicRegistration: true, didSave: true },
        inlineCompletion: { dynamicRegistration: true },
        completion: { completionItem: { snippetSupport: true } },
      },
      workspace: { configuration: true, didChangeConfiguration: { dynamicRegistration: true } },
    },
    // The extension nests its settings under the section name.
    initializationOptions: { [SECTION]: { "generation.maxLines": 6 } },
    workspaceFolders: null,
  });
  await connection.sendNotification(InitializedNotification.type, {});
}, { timeout: 60_000 });

after(async () => {
  if (server.exitCode === null) {
    const exited = new Promise((done) => server.once("exit", done));
    try {
      await withTimeout(connection.sendRequest(ShutdownRequest.type), 60_000, "shutdown");
      await connection.sendNotification(ExitNotification.type);
      await withTimeout(exited, 30_000, "the server to exit");
    } finally {
      if (server.exitCode === null) server.kill("SIGKILL");
      connection.dispose();
    }
  }
}, { timeout: 120_000 });

test("the server advertises inline completion, so vscode-languageclient registers ghost text", () => {
  assert.ok(initialized.capabilities.inlineCompletionProvider, JSON.stringify(initialized.capabilities));
  assert.ok(initialized.capabilities.textDocumentSync !== undefined);
});

test("the status notifications drive the status bar to ready", { timeout: readyTimeoutMs + 10_000 }, async () => {
  const ready = await waitFor(() => statuses.find((status) => status.state === "ready"), readyTimeoutMs, "ready");
  assert.ok(statuses.some((status) => status.state === "loading"), "a loading state is shown first");
  assert.ok(progress.length > 0, "VS Code gets $/progress while the engine loads");
  assert.equal(statusView(ready).severity, "none");
  assert.match(statusView(ready).text, /vllm-ls/);
});

test("inlineCompletion continues fibonacci with real ghost text", { timeout: 180_000 }, async () => {
  const text = readFileSync(example, "utf8");
  const uri = pathToFileURL(example).href;
  await connection.sendNotification(DidOpenTextDocumentNotification.type, {
    textDocument: { uri, languageId: "python", version: 1, text },
  });
  // The cursor goes where the user types: the end of the indented empty line inside fibonacci.
  const lines = text.split("\n");
  const body = lines.findIndex((line) => line.startsWith("def fibonacci(")) + 1;
  assert.ok(body > 0, "the example defines fibonacci");
  const position = { line: body, character: lines[body].length };
  const params = {
    textDocument: { uri },
    position,
    context: { triggerKind: InlineCompletionTriggerKind.Invoked },
  };
  // Ready was announced above; the retry only covers a completion superseded by the scheduler.
  const items = await waitFor(async () => {
    const result = await connection.sendRequest(InlineCompletionRequest.type, params);
    const list: InlineCompletionItem[] = Array.isArray(result) ? result : (result as InlineCompletionList | null)?.items ?? [];
    return list.length > 0 ? list : undefined;
  }, 120_000, "a non-empty inline completion");
  const first = items[0];
  const insertText = typeof first.insertText === "string" ? first.insertText : first.insertText.value;
  assert.ok(insertText.trim().length > 0, "the ghost text is not blank");
  assert.ok(!insertText.includes("def fibonacci"), `it continues the body, not the header: ${insertText}`);
  assert.deepEqual(first.range?.start, position, "the ghost text starts at the cursor");
  assert.ok(insertText.split("\n").length <= 6, "the maxLines setting sent under vllmLs was applied");

  const stats = await connection.sendRequest<Record<string, unknown>>(STATS_REQUEST);
  assert.ok((stats.completions_returned as number) >= 1, JSON.stringify(stats));
  assert.ok((stats.engine_tokens_generated as number) > 0, JSON.stringify(stats));
  assert.ok(formatStats(stats).some((line) => line.startsWith("generated but never shown:")));
  console.log(`ghost text: ${JSON.stringify(insertText)}`);
});

async function waitFor<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`the server exited (${server.exitCode}):\n${stderrTail}`);
    const failed = statuses.find((status) => status.state === "failed");
    if (failed) throw new Error(`the engine failed: ${failed.message}`);
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last status ${JSON.stringify(statuses.at(-1))}`);
    await new Promise((wake) => setTimeout(wake, 200));
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
