// Puts the server's settings, as printed by `vllm-ls settings-schema --format vscode` on stdin,
// into package.json's contributes.configuration (the first block; the second holds the
// extension's own settings). With --check it only reports whether package.json is up to date.
// `make vscode-settings` runs it; tests/e2e/test_editors.py fails when the two drift.

import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const packagePath = join(dirname(fileURLToPath(import.meta.url)), "..", "package.json");
const check = process.argv.includes("--check");

const generated = JSON.parse(readFileSync(0, "utf8"));
const pkg = JSON.parse(readFileSync(packagePath, "utf8"));
const blocks = pkg.contributes.configuration;
const current = JSON.stringify(blocks[0]);
if (current === JSON.stringify(generated)) {
  console.log("package.json settings are up to date");
  process.exit(0);
}
if (check) {
  console.error("package.json settings differ from the server's: run `make vscode-settings`");
  process.exit(1);
}
blocks[0] = generated;
writeFileSync(packagePath, JSON.stringify(pkg, null, 2) + "\n");
console.log(`package.json: ${Object.keys(generated.properties).length} server settings written`);
