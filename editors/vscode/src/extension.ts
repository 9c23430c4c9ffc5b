// VS Code glue: start vllm-ls over stdio, feed it the settings, show its status, offer commands.
// Ghost text itself needs no code here: vscode-languageclient 10 registers an inline completion
// provider when the server advertises `inlineCompletionProvider` (LSP 3.18).

import * as vscode from "vscode";
import {
  InlineCompletionRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  TransportKind,
} from "vscode-languageclient/node";

import {
  CLIENT_SECTION,
  DID_PARTIALLY_ACCEPT_COMPLETION,
  DID_SHOW_COMPLETION,
  SECTION,
  STATS_REQUEST,
  STATUS_NOTIFICATION,
  Status,
  acceptedLength,
  explicitSettings,
  formatStats,
  reportedItem,
  serverExecutable,
  serverSettingKeys,
  statusView,
} from "./core";

let client: LanguageClient | undefined;
let statusItem: vscode.StatusBarItem;
let output: vscode.LogOutputChannel;
let settingKeys: string[] = [];
// True when VS Code lets this extension tell the server what the user did with a suggestion (its
// proposed API `inlineCompletionsAdditions`); then our own provider asks for the ghost text.
let reportsOutcomes = false;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel("vllm-ls", { log: true });
  settingKeys = serverSettingKeys(context.extension.packageJSON?.contributes?.configuration, SECTION);
  statusItem = vscode.window.createStatusBarItem("vllmLs.status", vscode.StatusBarAlignment.Right, 100);
  statusItem.name = "vllm-ls";
  statusItem.command = "vllmLs.showStats";
  showStatus(undefined);
  statusItem.show();

  context.subscriptions.push(
    output,
    statusItem,
    vscode.commands.registerCommand("vllmLs.restartServer", restart),
    vscode.commands.registerCommand("vllmLs.showStats", showStats),
    ...registerOutcomeProvider(),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (!event.affectsConfiguration(SECTION)) return;
      if (event.affectsConfiguration(`${SECTION}.${CLIENT_SECTION}`)) {
        await restart(); // a new command or new flags need a new process
      } else {
        sendSettings();
      }
    }),
  );
  await start();
}

export async function deactivate(): Promise<void> {
  await stop();
}

function serverSettings(): Record<string, unknown> {
  const config = vscode.workspace.getConfiguration(SECTION);
  return explicitSettings(settingKeys, (key) => config.inspect(key), (key) => config.get(key));
}

async function start(): Promise<void> {
  const config = vscode.workspace.getConfiguration(SECTION);
  const executable = serverExecutable({
    command: config.get<string>(`${CLIENT_SECTION}.command`),
    python: config.get<string>(`${CLIENT_SECTION}.python`),
    args: config.get<string[]>(`${CLIENT_SECTION}.args`),
  });
  const serverOptions: ServerOptions = { ...executable, transport: TransportKind.stdio };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
    initializationOptions: { [SECTION]: serverSettings() },
    outputChannel: output,
    middleware: {
      // VS Code shows the suggestion as ghost text. The same suggestion as a completion item
      // (for editors without ghost text) would open the suggest widget over it, Tab would take
      // the widget's copy, and the server would supersede one request for the document with the
      // other. So the completion menu is never asked.
      provideCompletionItem: () => undefined,
      // With the proposed API our own provider (registerOutcomeProvider) asks instead.
      provideInlineCompletionItems: (document, position, context, token, next) =>
        reportsOutcomes ? undefined : next(document, position, context, token),
    },
  };
  output.info(`starting ${executable.command} ${executable.args.join(" ")}`);
  client = new LanguageClient("vllmLs", "vllm-ls", serverOptions, clientOptions);
  client.onDidChangeState((event) => {
    if (event.newState === State.Stopped) showStatus({ state: "stopped" });
  });
  client.onNotification(STATUS_NOTIFICATION, (status: Status) => showStatus(status));
  try {
    await client.start();
  } catch (error) {
    showStatus({ state: "failed", message: String(error) });
    void vscode.window.showErrorMessage(
      `vllm-ls could not start (${executable.command}): ${String(error)}. ` +
        `Set "${SECTION}.${CLIENT_SECTION}.command" or "${SECTION}.${CLIENT_SECTION}.python".`,
    );
  }
}

async function stop(): Promise<void> {
  const running = client;
  client = undefined;
  if (running?.isRunning()) await running.stop();
}

async function restart(): Promise<void> {
  await stop();
  showStatus(undefined);
  await start();
}

/**
 * Ghost text that reports back what the user did with it: shown, and partly accepted (a word with
 * Ctrl+Right). Full acceptance needs nothing here: every item carries the server's accept command,
 * which VS Code runs when the user takes it. These two callbacks are VS Code's proposed API
 * `inlineCompletionsAdditions`: registering them throws unless VS Code runs with
 * `--enable-proposed-api vllm-ls.vllm-ls`, and then vscode-languageclient's provider serves alone.
 */
function registerOutcomeProvider(): vscode.Disposable[] {
  const provider = {
    async provideInlineCompletionItems(
      document: vscode.TextDocument, position: vscode.Position, context: vscode.InlineCompletionContext,
      token: vscode.CancellationToken,
    ) {
      if (!client?.isRunning()) return undefined;
      const params = client.code2ProtocolConverter.asInlineCompletionParams(document, position, context);
      const result = await client.sendRequest(InlineCompletionRequest.type, params, token);
      return client.protocol2CodeConverter.asInlineCompletionResult(result, token);
    },
    handleDidShowCompletionItem(item: vscode.InlineCompletionItem): void {
      const reported = reportedItem(item.insertText, item.command);
      if (reported && client?.isRunning()) void client.sendNotification(DID_SHOW_COMPLETION, { item: reported });
    },
    handleDidPartiallyAcceptCompletionItem(item: vscode.InlineCompletionItem, info: unknown): void {
      const reported = reportedItem(item.insertText, item.command);
      const length = acceptedLength(info);
      if (reported && length !== undefined && client?.isRunning()) {
        void client.sendNotification(DID_PARTIALLY_ACCEPT_COMPLETION, { item: reported, acceptedLength: length });
      }
    },
  };
  try {
    const registration = vscode.languages.registerInlineCompletionItemProvider(
      [{ scheme: "file" }, { scheme: "untitled" }], provider);
    reportsOutcomes = true;
    return [registration];
  } catch {
    reportsOutcomes = false; // no proposed API: what the user did is known only from the accept command
    return [];
  }
}

function sendSettings(): void {
  if (!client?.isRunning()) return;
  void client.sendNotification("workspace/didChangeConfiguration", { settings: { [SECTION]: serverSettings() } });
}

async function showStats(): Promise<void> {
  if (!client?.isRunning()) {
    void vscode.window.showWarningMessage("vllm-ls is not running.");
    return;
  }
  const stats = await client.sendRequest<Record<string, unknown>>(STATS_REQUEST);
  output.appendLine(`--- vllm-ls stats, ${new Date().toLocaleTimeString()}`);
  for (const line of formatStats(stats)) output.appendLine(line);
  output.show(true);
}

function showStatus(status: Status | undefined): void {
  const view = statusView(status);
  statusItem.text = view.text;
  statusItem.tooltip = `${view.tooltip}\nClick for stats.`;
  statusItem.accessibilityInformation = { label: view.label };
  statusItem.backgroundColor =
    view.severity === "none" ? undefined : new vscode.ThemeColor(`statusBarItem.${view.severity}Background`);
}
