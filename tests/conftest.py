"""Two lanes for `make test` (pytest-xdist, `--dist loadgroup`): the machine has two cores and the
suite, run in one line, keeps about one of them busy (most of its time is engine starts, each about
one core for 30–40 s). Each module runs whole in one lane, in file order, so module fixtures and
the shared session engine (tests/e2e/conftest.py) stay as they are.

- **session**: the tests on the shared embedded session and the other e2e modules that start servers
  of their own (lifecycle, engine death, streams, speculation, remote).
- **tools**: the tools and editors as a user runs them (`vllm-ls bench`, `vllm-ls check`, Neovim,
  Emacs, VS Code), and the unit tests.

The split is by hand, from the durations `make test` prints: on a clean clone "tools" was the longer
lane (its tests summed to the whole run's 790 s; moving test_check over would make "session" the
longer one). It never lets more than four in-process engines live at once (about 16 GB of the 24):
the session engine and one other in the first lane, the bench's (serial: at most two) in the second. Without `-n` (one lane) nothing changes. (pytest is kept
below 9.2, where loadgroup silently stops grouping: pyproject.toml.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: Modules of the "tools" lane (by file name); everything else under tests/e2e is "session".
TOOLS = frozenset({"test_bench.py", "test_check.py", "test_editors.py"})


def lane(path: Path) -> str:
    """The lane of the test module at `path`."""
    if "unit" in path.parts or path.name in TOOLS:
        return "tools"
    return "session"


def pytest_itemcollected(item: pytest.Item) -> None:
    # As each test is collected, so the mark is there before any pytest_collection_modifyitems:
    # xdist's reads the marks into the test ids that loadgroup groups by.
    item.add_marker(pytest.mark.xdist_group(lane(item.path)))
