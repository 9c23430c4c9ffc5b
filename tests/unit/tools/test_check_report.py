"""Expectations, and the reports a check run writes for people and for CI."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lsp_server.tools.check.expect import Expectations, evaluate
from lsp_server.tools.check.report import (
    ERROR, FAILED, PASSED, CaseResult, RunResult, case_details, case_line, summary_line, to_json, write_json,
    write_junit,
)
from lsp_server.tools.check.spec import Case


def case(name: str = "a case", expect: Expectations = Expectations(non_empty=True), line: int = 3) -> Case:
    return Case(spec=Path("specs/ci.toml"), line=line, index=1, name=name, uri="file:///x.py", text="x = ",
                position=(0, 4), language="python", trigger="invoked", method="inline", settings={},
                expect=expect)


# -- expectations ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("expect", "text", "latency", "failed"), [
    (Expectations(non_empty=True), "x", 1, []),
    (Expectations(non_empty=True), "  \n", 1, ["non_empty"]),
    (Expectations(non_empty=False), "", 1, []),
    (Expectations(non_empty=False), "x", 1, ["non_empty"]),
    (Expectations(exact="a + b"), "a + b", 1, []),
    (Expectations(exact="a + b"), "a + b ", 1, ["exact"]),
    (Expectations(contains=("return", "n")), "return n", 1, []),
    (Expectations(contains=("return", "yield")), "return n", 1, ["contains"]),
    (Expectations(not_contains=("def ",)), "return n", 1, []),
    (Expectations(not_contains=("def ", "n")), "return n", 1, ["not_contains"]),
    (Expectations(regex=(re.compile(r"^\s+return", re.M),)), "if x:\n    return 1", 1, []),
    (Expectations(regex=(re.compile(r"^return", re.M),)), "if x:\n    return 1", 1, ["regex"]),
    (Expectations(max_lines=2), "a\nb", 1, []),
    (Expectations(max_lines=2), "a\nb\nc", 1, ["max_lines"]),
    (Expectations(max_lines=1), "", 1, []),
    (Expectations(max_latency_ms=500), "x", 500, []),
    (Expectations(max_latency_ms=500), "x", 500.1, ["max_latency_ms"]),
    (Expectations(non_empty=True, max_lines=1, contains=("y",)), "", 1, ["non_empty", "contains"]),
])
def test_evaluate(expect, text, latency, failed):
    assert [f.expectation for f in evaluate(expect, text, latency)] == failed


def test_latency_is_never_judged_without_a_budget():
    assert evaluate(Expectations(non_empty=True), "x", 10**9) == []


def test_failures_say_what_was_expected_and_what_came_back():
    [lines] = evaluate(Expectations(max_lines=1), "a\nb\nc", 1)
    assert (lines.expected, lines.actual) == ("at most 1 line", "3 lines")
    [latency] = evaluate(Expectations(max_latency_ms=100), "x", 812.4)
    assert (latency.expected, latency.actual) == ("at most 100 ms", "812 ms")


# -- for people -----------------------------------------------------------------------------------

def test_a_failed_case_shows_the_expectation_and_the_completion():
    expect = Expectations(exact="a - b", max_lines=1)
    result = CaseResult(case(expect=expect), FAILED, "a + b\nc", 640.2, tuple(evaluate(expect, "a + b\nc", 640)))
    assert case_line(result, 2, 5) == "[2/5] FAIL  a case (specs/ci.toml:3) 640 ms"
    assert case_details(result) == [
        '    expected (exact): "a - b"',
        "      -> different text",
        "    expected (max_lines): at most 1 line, got 2 lines",
        "    got: (2 lines)",
        "      | a + b",
        "      | c",
    ]


def test_passed_and_error_cases():
    passed = CaseResult(case(), PASSED, "x", 12)
    assert case_line(passed, 1, 1) == "[1/1] PASS  a case (specs/ci.toml:3) 12 ms"
    assert case_details(passed) == []
    error = CaseResult(case(), ERROR, error="no answer to textDocument/inlineCompletion within 120 s")
    assert case_line(error, 1, 1).endswith(" -")
    assert case_details(error) == ["    error: no answer to textDocument/inlineCompletion within 120 s"]


def test_an_empty_completion_is_shown_as_empty():
    expect = Expectations(contains=("return",))
    result = CaseResult(case(expect=expect), FAILED, "", 5, tuple(evaluate(expect, "", 5)))
    assert case_details(result)[-1] == "    got: (empty)"


def run_result() -> RunResult:
    e1 = Expectations(contains=("return",))
    e2 = Expectations(exact="<b> & \"c\"")
    return RunResult(results=[
        CaseResult(case("passes", e1, 3), PASSED, "return n", 900.0),
        CaseResult(case("fails", e2, 9), FAILED, "x\x00y <z>", 300.0, tuple(evaluate(e2, "x\x00y <z>", 300))),
        CaseResult(case("times out", e1, 15), ERROR, error="no answer within 120 s"),
    ], engine="embedded SmolLM2-135M-Instruct", startup_s=38.2, server_stats={"completions_returned": 2})


def test_summary_line():
    assert summary_line(run_result()) == ("3 cases: 1 passed, 1 failed, 1 errors; latency median 600 ms, "
                                          "max 900 ms (engine: embedded SmolLM2-135M-Instruct, ready after 38 s)")


@pytest.mark.parametrize(("statuses", "error", "code"), [
    ([PASSED, PASSED], None, 0), ([PASSED, FAILED], None, 1), ([PASSED, ERROR], None, 1),
    ([ERROR, ERROR], "the engine could not be used", 2), ([], None, 0),
])
def test_exit_codes(statuses, error, code):
    run = RunResult(results=[CaseResult(case(), s) for s in statuses], error=error)
    assert run.exit_code == code


# -- JSON and JUnit -------------------------------------------------------------------------------

def test_json_report(tmp_path):
    path = tmp_path / "out.json"
    write_json(run_result(), path, "0.1.0")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["exit_code"] == 1 and data["summary"] == {"total": 3, "passed": 1, "failed": 1, "errors": 1}
    assert data["engine"] == "embedded SmolLM2-135M-Instruct" and data["vllm_ls_version"] == "0.1.0"
    passed, failed, error = data["cases"]
    assert passed == {**passed, "name": "passes", "spec": "specs/ci.toml", "line": 3, "status": "passed",
                      "completion": "return n", "latency_ms": 900.0, "failures": [], "error": None}
    assert failed["failures"] == [{"expectation": "exact", "expected": '<b> & "c"', "actual": "different text"}]
    assert failed["completion"] == "x\x00y <z>"
    assert error["status"] == "error" and error["latency_ms"] is None
    assert data["server_stats"] == {"completions_returned": 2}
    assert to_json(run_result(), "0.1.0") == data


def test_junit_report_parses_back(tmp_path):
    path = tmp_path / "junit.xml"
    write_junit(run_result(), path)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    [suite] = root.findall("testsuite")
    assert suite.get("name") == "specs/ci.toml" and suite.get("tests") == "3"
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties == {"engine": "embedded SmolLM2-135M-Instruct", "startup_s": "38.2"}
    passes, fails, times_out = suite.findall("testcase")
    assert (passes.get("name"), passes.get("classname"), passes.get("file"), passes.get("line"),
            passes.get("time")) == ("passes", "ci", "specs/ci.toml", "3", "0.900")
    assert passes.find("failure") is None and passes.find("error") is None
    assert "return n" in passes.find("system-out").text
    failure = fails.find("failure")
    assert failure.get("message") == "expectation not met: exact"
    assert 'expected (exact): "<b> & \\"c\\""' in failure.text
    # A control character cannot be carried by XML 1.0: it is shown escaped, the file stays valid.
    assert "x\\x00y <z>" in fails.find("system-out").text
    error = times_out.find("error")
    assert error.get("message") == "no answer within 120 s"


def test_junit_groups_cases_by_spec_file(tmp_path):
    other = Case(**{**vars(case("elsewhere")), "spec": Path("other.toml")})
    run = RunResult(results=[CaseResult(case(), PASSED, "x", 1), CaseResult(other, PASSED, "y", 2)])
    path = tmp_path / "junit.xml"
    write_junit(run, path)
    suites = ET.parse(path).getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["specs/ci.toml", "other.toml"]
