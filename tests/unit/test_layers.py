"""The import rules of docs/architecture.md, read from the code itself (no module is imported).

- `engine/` knows nothing of LSP: it imports neither `lsp_server`, pygls nor lsprotocol.
- `lsp_server/` knows nothing of vLLM internals: it never imports `vllm`.
- `lsp_server/completion/` is the pipeline: no pygls, no lsprotocol, no vLLM, and of the server only
  the settings, text helpers and its own modules (it reaches the engine through `completion.source`).
- Arrows point one way: no import cycles (imports only for type checking excepted: the
  features ↔ server idiom), and no module imports another module's private names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "lsp_server")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path) -> list[tuple[str, list[str], bool]]:
    """(module imported, names taken from it, only for type checking) for every import in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: list[tuple[str, list[str], bool]] = []

    def visit(node: ast.AST, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for inner in child.body:
                    visit_one(inner, True)
                for inner in child.orelse:
                    visit_one(inner, typing_only)
            else:
                visit_one(child, typing_only)

    def visit_one(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, [], typing_only) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [alias.name for alias in node.names]
            found.append((module, names, typing_only))
            for name in names:  # `from . import features` imports a module too
                found.append((f"{module}.{name}", [], typing_only))
        else:
            visit(node, typing_only)

    visit(tree, False)
    return found


SOURCES = {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def _violations(prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for module, path in SOURCES.items():
        if module != prefix and not module.startswith(prefix + "."):
            continue
        for imported, _, _ in _imports(path):
            if any(imported == f or imported.startswith(f + ".") for f in forbidden):
                bad.append(f"{module} imports {imported}")
    return bad


def test_the_engine_knows_nothing_of_lsp():
    assert _violations("engine", ("lsp_server", "pygls", "lsprotocol")) == []


def test_the_server_knows_nothing_of_vllm():
    assert _violations("lsp_server", ("vllm",)) == []


def test_the_pipeline_knows_nothing_of_lsp_or_of_who_hosts_it():
    forbidden = ("pygls", "lsprotocol", "vllm", "lsp_server.features", "lsp_server.hosting",
                 "lsp_server.protocol", "lsp_server.tools", "lsp_server.server", "lsp_server.transport",
                 "lsp_server.contract")
    assert _violations("lsp_server.completion", forbidden) == []


def test_no_module_takes_another_modules_private_names():
    bad = []
    for module, path in SOURCES.items():
        for imported, names, _ in _imports(path):
            if imported.split(".")[0] in PACKAGES and imported != module:
                bad += [f"{module} imports {imported}.{n}" for n in names if n.startswith("_") and n != "__version__"]
    assert bad == []


def test_no_import_cycles():
    graph = {module: {imported for imported, _, typing_only in _imports(path)
                      if not typing_only and imported in SOURCES and imported != module}
             for module, path in SOURCES.items()}
    # A package's __init__ is imported with any of its modules; it is not an arrow back.
    for module in graph:
        graph[module] = {m for m in graph[module] if not module.startswith(m + ".")}
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node)
    assert cycles == [], " ; ".join(" → ".join(c) for c in cycles)


@pytest.mark.parametrize("rule", [_violations])
def test_the_rules_see_real_imports(rule):
    # A rule that finds nothing because it reads nothing would pass forever: it must see the
    # server's own (allowed) imports of pygls.
    assert rule("lsp_server.server", ("pygls",)), "the import reader found no imports at all"
