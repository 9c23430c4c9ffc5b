"""Which other open documents the prompt may show the model, and under what path.

Documents are ordered by their last use (opened, changed, or completed in), most recent first: the
file the user just came from is the likeliest to matter. Paths are relative to the workspace root
when the document lies inside it, so the model sees `src/app/models.py`, not a home directory.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import PurePosixPath
from urllib.parse import unquote, urlparse


class RecentDocuments:
    """Open documents in order of last use, most recent last (bounded)."""

    def __init__(self, capacity: int = 64):
        self.capacity = capacity
        self._order: OrderedDict[str, None] = OrderedDict()

    def touch(self, uri: str) -> None:
        """`uri` was just used (opened, changed, completed in)."""
        self._order[uri] = None
        self._order.move_to_end(uri)
        while len(self._order) > self.capacity:
            self._order.popitem(last=False)

    def forget(self, uri: str) -> None:
        """`uri` was closed."""
        self._order.pop(uri, None)

    def most_recent(self, exclude: str | None = None) -> list[str]:
        """The documents, most recently used first, without `exclude`."""
        return [uri for uri in reversed(self._order) if uri != exclude]


def display_path(uri: str, root_uri: str | None = None) -> str:
    """The document's path as the model should see it: relative to the workspace root if inside it."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", ""):
        return (parsed.path or uri).lstrip("/") or uri
    path = PurePosixPath(unquote(parsed.path))
    if root_uri:
        root = PurePosixPath(unquote(urlparse(root_uri).path))
        try:
            return str(path.relative_to(root))
        except ValueError:
            pass
    return path.name or str(path)
