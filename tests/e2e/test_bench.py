"""`vllm-ls bench` as a user runs it: the real command, which starts real servers (the defaults and
the v0.1 profile, the baseline every ratio is taken to) and a direct engine, all on the real
embedded engine, and replays a short stretch of typing by two editors (one VS Code-style, one
Neovim-style) who accept the suggestions that agree with what they type. One run, checked for
everything at once: it costs three engine starts, one after the other (`--serial`: `make test`
runs another lane of tests with engines of their own next to this one, tests/conftest.py).
Nothing here is judged by time; the numbers are checked for sense and against the server's own
counters. (The naive profile's settings are checked in tests/unit/tools.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYSTROKES = 100
EDITORS = 2
PROFILES = ["vllm-ls", "v0.1"]
FIELDS = ("profile", "engine_requests_per_100_keystrokes", "waste_ratio", "tokens_after_cancel",
          "prefix_cache_hit_ratio", "shown_latency_ms", "overhead_ratio", "peak_rss_mb",
          "pauses_served_ratio", "accept_latency_ms", "accepts", "accepted_share", "tokens_shown_per_engine_token",
          "vs_baseline", "planned_keystrokes")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    marker = uuid.uuid4().hex
    done = subprocess.run(
        [sys.executable, "-m", "lsp_server", "bench", "--editors", str(EDITORS), "--keystrokes", str(KEYSTROKES),
         "--cps", "10", "--holes", "2", "--probes", "1", "--profiles", ",".join(PROFILES),
         "--serial", "--json", str(out / "bench.json"),
         "--plot", str(out / "bench.png")],
        cwd=ROOT, capture_output=True, text=True, timeout=1500,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_LS_BENCH_TEST": marker},
    )
    return done, out, marker


def test_the_bench_leaves_no_server_or_engine_behind(bench):
    done, _, marker = bench
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    left = []
    for process in psutil.process_iter(["pid", "name"]):
        try:
            if process.environ().get("VLLM_LS_BENCH_TEST") == marker:
                left.append(f"{process.pid} {process.name()}")
        except psutil.Error:
            continue
    assert not left, f"still running after the bench: {left}"


def test_the_table_shows_both_profiles_and_the_targets(bench):
    done, _, _ = bench
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    lines = done.stdout.splitlines()
    headers = [i for i, line in enumerate(lines) if line.startswith("profile ") and "editors" in line]
    assert len(headers) == 2, "what users feel, and what it costs"
    assert "accept p50" in lines[headers[0]] and "req/100k" in lines[headers[1]]
    for header in headers:
        rows = lines[header + 1: lines.index("", header)]
        assert [row.split()[0] for row in rows] == PROFILES
    assert any(line.startswith("raw ") for line in lines), "the raw infill baseline"
    assert "targets:" in lines
    assert "vllm-ls bench:" not in done.stdout.split("\n", 1)[1], "progress belongs on stderr"


def test_every_run_has_every_field_with_sane_values(bench):
    done, out, _ = bench
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    data = json.loads((out / "bench.json").read_text())
    assert data["config"]["serial"] is True
    runs = {run["profile"]: run for run in data["runs"]}
    assert list(runs) == PROFILES
    for name, run in runs.items():
        for field in FIELDS:
            assert field in run, (name, field)
        assert run["editors"] == EDITORS and run["styles"] == {"neovim": 1, "vscode": 1}
        # An accept inserts the keystrokes it covers in one action.
        assert run["planned_keystrokes"] == EDITORS * KEYSTROKES
        assert run["keystrokes"] <= run["planned_keystrokes"] and (run["keystrokes"] < run["planned_keystrokes"]
                                                                   or run["accepts"]["total"] == 0)
        for ratio in ("waste_ratio", "prefix_cache_hit_ratio"):
            assert 0.0 <= run[ratio] <= 1.0, (name, ratio, run[ratio])
        assert run["overhead_ratio"] > 0
        assert run["peak_rss_mb"] > 50 and run["peak_rss_engine_mb"] > 50  # in-process: the engine's processes
        assert run["tokens_after_cancel"] is not None, "the VS Code-style editor cancels"
        # From the engine core's own count (in-process): the tokens nobody read per stopped request.
        truth = run["engine_truth"]
        assert truth["source"] == "engine core"
        assert truth["requests_stopped"] == run["stats"]["engine_core_requests_stopped"] > 0
        assert 0 <= run["tokens_after_cancel"] <= 2, truth
        latency = run["shown_latency_ms"]
        assert set(latency) == {"p50", "p95", "n"} and latency["n"] == run["pauses"]["served"]
        accepts, accept = run["accepts"], run["accept_latency_ms"]
        assert (run["pauses"]["served"] + run["shown_while_typing"] + accepts["served"]
                == run["requests"]["shown"])
        for summary in (latency, accept):
            if summary["n"]:
                assert 0 < summary["p50"] <= summary["p95"]
        assert run["pauses"]["served"] <= run["pauses"]["total"]
        assert accept["n"] == accepts["served"] <= accepts["total"]
        assert (accepts["chars"] == 0) == (accepts["total"] == 0) and 0 <= run["accepted_share"] <= 1
        assert run["pauses_served_ratio"] == round(run["pauses"]["served"] / run["pauses"]["total"], 4)
        # Ratios to the v0.1 profile's run in the same bench.
        base = runs["v0.1"]
        assert run["vs_baseline"]["profile"] == "v0.1"
        if latency["n"] and base["shown_latency_ms"]["n"]:
            assert run["vs_baseline"]["shown_latency_p50"] == round(latency["p50"] / base["shown_latency_ms"]["p50"], 3)
        assert run["vs_baseline"]["engine_requests_per_100_keystrokes"] == round(
            run["engine_requests_per_100_keystrokes"] / base["engine_requests_per_100_keystrokes"], 3)
        overhead = run["overhead"]
        assert overhead["probes"], "probes were timed"
        for probe in overhead["probes"]:
            # The bench rebuilt the server's own prompt and made the engine do the same work.
            assert probe["same_prompt"], probe
            assert probe["direct_tokens"] == probe["tokens"], probe


def test_the_figures_agree_with_the_servers_counters(bench):
    done, out, _ = bench
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    for run in json.loads((out / "bench.json").read_text())["runs"]:
        stats, requests = run["stats"], run["requests"]
        # Every keystroke's request was answered. A request whose $/cancelRequest arrives before its
        # handler has started is cancelled by pygls without running it: the client counts the
        # cancellation, the server's counters never see the request.
        assert requests["sent"] == requests["answered"] == run["keystrokes"]
        unseen = requests["sent"] - stats["completions_requested"]
        assert 0 <= unseen <= 3 and requests["cancelled"] - stats["completions_cancelled"] == unseen, (requests, stats)
        assert requests["unanswered"] == requests["error"] == 0
        assert requests["completion"] == stats["completions_returned"]
        assert stats["completions_cancelled"] > 0
        assert requests["empty"] == (stats["completions_superseded"] + stats["requests_debounced"]
                                     + stats["requests_shed"] + stats["completions_empty"])
        assert run["engine_requests_per_100_keystrokes"] == round(100 * stats["engine_requests_started"] / run["keystrokes"], 2)
        assert run["waste_ratio"] == round(1 - stats["tokens_shown"] / stats["engine_core_tokens_generated"], 4)
        assert run["tokens_shown_per_engine_token"] == round(
            stats["tokens_shown"] / stats["engine_core_tokens_generated"], 4)
        assert run["tokens_after_cancel"] == round(
            stats["engine_core_tokens_unread"] / stats["engine_core_requests_stopped"], 3)
        assert run["prefix_cache_hit_ratio"] == round(stats["prompt_tokens_cached"] / stats["prompt_tokens"], 4)
        assert stats["engine_tokens_generated"] >= stats["tokens_received"] >= stats["tokens_shown"]
        assert stats["engine_core_tokens_generated"] >= stats["tokens_received"] + stats["engine_core_tokens_unread"]
        # The typist reports each suggestion on screen at its next keystroke and takes the ones it
        # types next; the server counts a suggestion typed along (cache answers) once.
        acceptance = run["acceptance"]
        assert acceptance["shown"] == stats["completions_shown"] and acceptance["accepted"] == stats["completions_accepted"]
        assert 0 <= acceptance["accepted"] <= acceptance["shown"] <= requests["shown"], (acceptance, requests)
        assert acceptance["shown"] > 0 or requests["shown"] <= EDITORS, "every shown suggestion but the last ones is reported"


def test_quality_scores_the_server_next_to_the_raw_baseline(bench):
    done, out, _ = bench
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    quality = json.loads((out / "bench.json").read_text())["quality"]
    assert quality["holes"] == 2
    assert [v["variant"] for v in quality["variants"]] == ["vllm-ls", "raw"]
    for variant in quality["variants"]:
        assert variant["line"]["n"] == variant["block"]["n"] == 1 and variant["all"]["n"] == 2
        for key in ("exact_match", "edit_similarity", "first_line_match"):
            assert 0.0 <= variant["all"][key] <= 1.0
    for case in quality["cases"]:
        assert case["expected"].strip()
        assert set(case["completions"]) == {"vllm-ls", "raw"}
        assert case["completions"]["raw"], "the raw baseline always writes its full budget"
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
