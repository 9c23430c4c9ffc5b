// The parts of the extension that do not need VS Code: how the server is started, which settings
// reach it, and what the status bar and the stats command show. Kept free of the `vscode` module so
// Node's test runner (and the protocol end-to-end test) can use exactly this code.

/** Settings of the extension itself (they stay on the client: the server would reject them). */
export const CLIENT_SECTION = "server";

export interface ServerLaunch {
  /** The `vllm-ls` executable, or any command that speaks LSP over stdio. */
  command?: string;
  /** A Python with vllm-ls installed; when set it runs `python -m lsp_server` instead of `command`. */
  python?: string;
  /** Global flags put before `serve`, e.g. `["--engine-url", "http://gpu-box:8000", "-v"]`. */
  args?: readonly string[];
}

export interface Executable {
  command: string;
  args: string[];
}

export function serverExecutable(launch: ServerLaunch): Executable {
  const flags = [...(launch.args ?? [])];
  const python = launch.python?.trim();
  if (python) {
    return { command: python, args: ["-m", "lsp_server", ...flags, "serve"] };
  }
  return { command: launch.command?.trim() || "vllm-ls", args: [...flags, "serve"] };
}

/** What `WorkspaceConfiguration.inspect` tells about one key (the fields used here). */
export interface Inspected {
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
  globalLanguageValue?: unknown;
  workspaceLanguageValue?: unknown;
  workspaceFolderLanguageValue?: unknown;
}

/**
 * The server settings the user set explicitly, keyed as the server reads them (dotted: `scheduling.debounceMs`, ...).
 *
 * Defaults are left out on purpose: the server owns them, and sending them would override the
 * flags given in `vllmLs.server.args` (e.g. `--engine-url`) with the defaults.
 */
export function explicitSettings(
  keys: readonly string[],
  inspect: (key: string) => Inspected | undefined,
  get: (key: string) => unknown,
): Record<string, unknown> {
  const settings: Record<string, unknown> = {};
  for (const key of keys) {
    if (key === CLIENT_SECTION || key.startsWith(`${CLIENT_SECTION}.`)) continue;
    const found = inspect(key);
    if (!found) continue;
    const set = [
      found.globalValue, found.workspaceValue, found.workspaceFolderValue,
      found.globalLanguageValue, found.workspaceLanguageValue, found.workspaceFolderLanguageValue,
    ].some((value) => value !== undefined);
    if (set) settings[key] = get(key);
  }
  return settings;
}

/** The keys of the server's settings, from the `contributes.configuration` of package.json. */
export function serverSettingKeys(configuration: unknown, section: string): string[] {
  const blocks = Array.isArray(configuration) ? configuration : [configuration];
  const keys: string[] = [];
  for (const block of blocks) {
    const properties = (block as { properties?: Record<string, unknown> } | undefined)?.properties ?? {};
    for (const name of Object.keys(properties)) {
      if (!name.startsWith(`${section}.`)) continue;
      const key = name.slice(section.length + 1);
      if (key !== CLIENT_SECTION && !key.startsWith(`${CLIENT_SECTION}.`)) keys.push(key);
    }
  }
  return keys;
}

/** The `vllm-ls/status` notification. */
export interface Status {
  state: "loading" | "ready" | "restarting" | "degraded" | "unavailable" | "overloaded" | "failed" | string;
  message?: string;
  engine?: string | null;
  lastLatencyMs?: number | null;
}

export interface StatusView {
  text: string;
  tooltip: string;
  /** What a screen reader says (the text's icons say nothing): "vllm-ls ready, 412 ms". */
  label: string;
  /** `error` and `warning` map to the status bar's background colours. */
  severity: "none" | "warning" | "error";
}

export function statusView(status: Status | undefined): StatusView {
  const engine = status?.engine ? ` (${status.engine})` : "";
  const message = status?.message ?? "";
  const view = (text: string, state: string, tooltip: string, severity: StatusView["severity"]): StatusView => ({
    text, tooltip, severity, label: message && state !== "ready" ? `vllm-ls ${state}: ${message}` : `vllm-ls ${state}`,
  });
  switch (status?.state) {
    case "ready": {
      const latency = status.lastLatencyMs;
      const shown = typeof latency === "number" ? ` ${Math.round(latency)} ms` : "";
      const ready = view(`$(check) vllm-ls${shown}`, "ready", `vllm-ls ready${engine}. ${message}`.trim(), "none");
      return { ...ready, label: shown ? `vllm-ls ready,${shown}` : "vllm-ls ready" };
    }
    case "loading":
      return view("$(sync~spin) vllm-ls", "loading", `vllm-ls loading${engine}: ${message}`, "warning");
    case "restarting":
      // The in-process engine died; the server restarts it with backoff by itself.
      return view("$(sync~spin) vllm-ls", "restarting", `vllm-ls restarting${engine}: ${message}`, "warning");
    case "degraded":
      // Requests are failing (e.g. HTTP 5xx); the next success clears it.
      return view("$(warning) vllm-ls", "degraded", `vllm-ls degraded${engine}: ${message}`, "warning");
    case "unavailable":
      // A remote server is down; the engine retries by itself, so this is a warning, not an error.
      return view("$(debug-disconnect) vllm-ls", "paused", `vllm-ls paused${engine}: ${message}`, "warning");
    case "overloaded":
      return view("$(watch) vllm-ls", "busy", `vllm-ls: the server is busy${engine}: ${message}`, "warning");
    case "failed":
      return view("$(error) vllm-ls", "failed", `vllm-ls failed${engine}: ${message}`, "error");
    case "stopped":
      return { text: "$(circle-slash) vllm-ls", tooltip: "vllm-ls is not running", severity: "error",
               label: "vllm-ls is not running" };
    default:
      return { text: "$(sync~spin) vllm-ls", tooltip: "vllm-ls is starting", severity: "none", label: "vllm-ls starting" };
  }
}

/** The `vllm-ls/stats` answer as lines for the output channel, with the derived waste figures. */
export function formatStats(stats: Record<string, unknown>): string[] {
  const lines = Object.keys(stats)
    .sort()
    .map((key) => `${key}: ${String(stats[key])}`);
  const number = (key: string) => (typeof stats[key] === "number" ? (stats[key] as number) : undefined);
  const generated = number("engine_tokens_generated");
  const received = number("tokens_received");
  const shown = number("tokens_shown");
  if (generated !== undefined && received !== undefined) {
    lines.push(`generated after a cancel (never read): ${Math.max(0, generated - received)} tokens`);
  }
  if (generated !== undefined && shown !== undefined) {
    lines.push(`generated but never shown: ${Math.max(0, generated - shown)} tokens`);
  }
  const prompt = number("prompt_tokens");
  const cached = number("prompt_tokens_cached");
  if (prompt && cached !== undefined) {
    lines.push(`prefix cache hit rate: ${((100 * cached) / prompt).toFixed(1)} %`);
  }
  return lines;
}

/** What the user did with a suggestion: the names Copilot's language server uses (the server's
 * lsp_server/contract.py). Every item the server returns carries ACCEPT_COMMAND with its id. */
export const ACCEPT_COMMAND = "vllm-ls.acceptCompletion";
export const DID_SHOW_COMPLETION = "textDocument/didShowCompletion";
export const DID_PARTIALLY_ACCEPT_COMPLETION = "textDocument/didPartiallyAcceptCompletion";

/** A command as VS Code holds it on an item (`vscode.Command`'s fields used here). */
export interface ItemCommand {
  command: string;
  title?: string;
  arguments?: unknown[];
}

/** The item as the server reads it back in a report, or undefined when it is not one of ours. */
export function reportedItem(
  insertText: unknown,
  command: ItemCommand | undefined,
): { insertText: string; command: { title: string; command: string; arguments: unknown[] } } | undefined {
  if (!command || command.command !== ACCEPT_COMMAND || !Array.isArray(command.arguments)) return undefined;
  const text = typeof insertText === "string" ? insertText : String((insertText as { value?: unknown })?.value ?? "");
  return { insertText: text, command: { title: command.title ?? "", command: command.command, arguments: command.arguments } };
}

/** VS Code has passed the length taken so far as a number, and later as `{ kind, acceptedLength }`. */
export function acceptedLength(info: unknown): number | undefined {
  const length = typeof info === "number" ? info : (info as { acceptedLength?: unknown } | undefined)?.acceptedLength;
  return typeof length === "number" && Number.isInteger(length) && length >= 0 ? length : undefined;
}

export const STATUS_NOTIFICATION = "vllm-ls/status";
export const STATS_REQUEST = "vllm-ls/stats";
export const SECTION = "vllmLs";
