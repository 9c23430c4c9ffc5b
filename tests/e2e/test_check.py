"""`vllm-ls check` as CI runs it: the real command as a subprocess, which starts the real server with
the real embedded engine. Each run that gets as far as a server costs an engine start, so the runs
are few and each is checked for several things; the runs that must fail early start no server."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil

from lsp_server.tools.check.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "check.toml"
FAILING = Path(__file__).resolve().parent / "specs" / "failing.toml"
STARTING = "starting the server"


def check(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # The timeout only stops a hung run from hanging the suite; nothing here is judged by time.
    return subprocess.run(
        [sys.executable, "-m", "lsp_server", "check", *map(str, args)], cwd=ROOT, capture_output=True,
        text=True, timeout=1200, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )


def test_the_example_spec_passes_a_failing_one_fails_in_the_same_run_with_junit_and_json(tmp_path):
    """The documented example and a spec that must fail, in one run (one engine start): the example's
    cases all pass; the failing spec's misses show expected and actual; the run exits 1."""
    junit, report = tmp_path / "junit.xml", tmp_path / "check.json"
    done = check(EXAMPLE, FAILING, "--junit", junit, "--json", report)
    assert done.returncode == 1, done.stdout + done.stderr
    names = [case.name for case in load_spec(EXAMPLE).cases]
    failing = [case.name for case in load_spec(FAILING).cases]
    total = len(names) + len(failing)

    # Progress and a per-case result, then the summary.
    for number, name in enumerate(names, start=1):
        assert f"[{number}/{total}] PASS  {name} (" in done.stdout
    assert f"{total} cases: {len(names) + 1} passed, 2 failed; latency median" in done.stdout

    root = ET.parse(junit).getroot()
    assert (root.tag, root.get("tests"), root.get("failures"), root.get("errors")) == (
        "testsuites", str(total), "2", "0")
    example, other = root.findall("testsuite")
    cases = example.findall("testcase")
    assert [c.get("name") for c in cases] == names
    assert all(c.find("failure") is None and c.find("error") is None for c in cases)
    assert all(c.get("file") == str(EXAMPLE) and int(c.get("line")) > 0 for c in cases)
    assert all(float(c.get("time")) > 0 for c in cases)
    testcases = {c.get("name"): c for c in other.iter("testcase")}
    assert list(testcases) == failing
    assert testcases["passes"].find("failure") is None
    assert testcases["wrong exact text"].find("failure").get("message") == "expectation not met: exact"
    assert "a - b  # not what the model writes" in testcases["wrong exact text"].find("failure").text
    assert testcases["over its latency budget"].find("failure").get("message") == (
        "expectation not met: max_latency_ms")

    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["exit_code"] == 1 and data["summary"]["passed"] == len(names) + 1
    assert all(case["latency_ms"] > 0 and case["completion"] for case in data["cases"][: len(names)])
    # All cases ran through one server session: its counters saw every one of them.
    assert data["server_stats"]["completions_requested"] == total
    # Per-case settings reached the server and were taken back for the next case.
    by_name = {case["name"]: case for case in data["cases"]}
    assert len(by_name["multiline = never gives one line"]["completion"].splitlines()) == 1
    assert len(by_name["the next case has the spec's settings again"]["completion"].splitlines()) > 1

    # The failing spec: what was expected and what the model wrote.
    assert [by_name[name]["status"] for name in failing] == ["passed", "failed", "failed"]
    wrong = by_name["wrong exact text"]
    assert wrong["completion"], "the model answered; the spec expected something else"
    assert '    expected (exact): "a - b  # not what the model writes"' in done.stdout
    assert f"    got: {json.dumps(wrong['completion'], ensure_ascii=False)}" in done.stdout
    slow = by_name["over its latency budget"]
    assert slow["latency_ms"] >= 400  # the debounce is part of what the user waits for
    shown = re.search(r"    expected \(max_latency_ms\): at most 300 ms, got (\d+) ms", done.stdout)
    # The report rounds the measured latency, the JSON keeps a decimal: 887.46 shows as 887, stores 887.5.
    assert shown and abs(int(shown.group(1)) - slow["latency_ms"]) <= 1, done.stdout


def test_a_malformed_spec_exits_2_naming_file_and_line_before_any_server(tmp_path):
    spec = tmp_path / "broken.toml"
    spec.write_text('[[case]]\nlanguage = "python"\nsource = "x = <cursor>"\n'
                    '[case.expect]\nnon_empty = true\nmax_line = 1\n', encoding="utf-8")
    done = check(spec, EXAMPLE, "--junit", tmp_path / "junit.xml")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{spec}:6: unknown expectation 'max_line'; did you mean 'max_lines'?" in done.stderr
    assert STARTING not in done.stderr + done.stdout
    assert not (tmp_path / "junit.xml").exists()


def test_an_unreachable_engine_url_exits_2_at_once(tmp_path):
    with socket.socket() as sock:  # a port nothing listens on once this socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    junit = tmp_path / "junit.xml"
    done = check(EXAMPLE, "--engine-url", f"http://127.0.0.1:{port}", "--junit", junit)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"cannot reach the engine at http://127.0.0.1:{port}: connection refused" in done.stderr
    assert STARTING not in done.stderr + done.stdout  # decided before starting a server
    # CI still gets a report that lists every case as not run, and why.
    root = ET.parse(junit).getroot()
    assert root.get("errors") == root.get("tests") == str(len(load_spec(EXAMPLE).cases))
    assert all("connection refused" in e.get("message") for e in root.iter("error"))


def test_an_engine_url_that_is_not_http_exits_2_before_any_server():
    done = check("--engine-url", "gpu-box:8000", EXAMPLE)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "'gpu-box:8000' is not an http:// or https:// URL" in done.stderr
    assert STARTING not in done.stderr + done.stdout


def test_an_engine_that_fails_to_start_exits_2_with_its_reason(tmp_path):
    not_a_model = tmp_path / "empty-model-dir"
    not_a_model.mkdir()
    done = check("--model", not_a_model, EXAMPLE)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "vllm-ls check: the engine could not be used: the engine failed: " in done.stderr
    assert str(not_a_model) in done.stderr


def test_a_ci_timeout_sigterm_stops_the_server_and_its_engine():
    """A CI job that runs out of time sends SIGTERM to `vllm-ls check`: it stops its server, which
    stops the engine, and nothing of vLLM's is left on the runner."""
    proc = subprocess.Popen([sys.executable, "-m", "lsp_server", "check", str(EXAMPLE)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        tool = psutil.Process(proc.pid)
        deadline = time.monotonic() + 300
        while not any("Worker" in name for name in _names(_descendants(tool))):
            assert proc.poll() is None and time.monotonic() < deadline, "the engine never started"
            time.sleep(0.2)
        children = _descendants(tool)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 128 + signal.SIGTERM
        _, alive = psutil.wait_procs(children, timeout=60)
        assert not alive, f"left running after SIGTERM: {alive}"
    finally:
        if proc.poll() is None:
            for child in _descendants(psutil.Process(proc.pid)):
                child.kill()
            proc.kill()


def _descendants(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _names(processes: list[psutil.Process]) -> list[str]:
    names = []
    for process in processes:
        try:
            names.append(process.name())
        except psutil.NoSuchProcess:
            pass  # ended between the listing and the look
    return names
