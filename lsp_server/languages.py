"""File suffixes and the LSP language ids editors use for them (for tools that open files themselves)."""

from __future__ import annotations

from pathlib import Path

LANGUAGES = {".py": "python", ".js": "javascript", ".ts": "typescript", ".rs": "rust", ".go": "go",
             ".c": "c", ".h": "c", ".cpp": "cpp", ".java": "java", ".rb": "ruby", ".sh": "shellscript",
             ".lua": "lua", ".md": "markdown", ".pyi": "python", ".mjs": "javascript", ".cjs": "javascript",
             ".jsx": "javascriptreact", ".tsx": "typescriptreact"}


def language_of(file: Path | str) -> str:
    """The language id for a file, by its suffix; `plaintext` when unknown."""
    return LANGUAGES.get(Path(file).suffix, "plaintext")


def suffix_of(language: str) -> str:
    """A file suffix for a language id (the first one listed), or "" when unknown."""
    return next((suffix for suffix, name in LANGUAGES.items() if name == language), "")
