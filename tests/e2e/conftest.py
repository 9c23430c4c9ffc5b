"""One real server with the real embedded engine per test session (loading costs ~40 s)."""

from __future__ import annotations

import pytest
import pytest_lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from .lsp_helpers import configure, initialize, make_client, server_command, wait_ready
from .peer import Peer

LOG_DIR_KEY = "vllm_ls_log_dir"


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory) -> "Path":  # noqa: F821
    return tmp_path_factory.mktemp("logs")


@pytest_lsp.fixture(
    scope="session",
    config=ClientServerConfig(server_command=server_command(), client_factory=make_client),
)
async def engine_client(lsp_client: LanguageClient):
    """A session on the embedded engine, ready to complete."""
    await initialize(lsp_client)
    await wait_ready(lsp_client)
    yield
    await lsp_client.shutdown_session()


@pytest.fixture
async def client(engine_client: LanguageClient):
    """The shared session with default settings, restored after the test."""
    await configure(engine_client, {})
    yield engine_client
    await configure(engine_client, {})


@pytest.fixture(scope="module")
async def peer():
    """A misbehaving OpenAI-compatible HTTP server on 127.0.0.1 (tests/e2e/peer.py), one per module."""
    peer = Peer()
    await peer.listen()
    yield peer
    await peer.close()
