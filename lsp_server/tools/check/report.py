"""Pure: the results of a check run, as a person reads them and as CI systems do (JSON, JUnit XML)."""

from __future__ import annotations

import json
import re
import statistics
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .expect import Failure
from .spec import Case

PASSED, FAILED, ERROR = "passed", "failed", "error"

EXIT_PASSED, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2

JSON_FORMAT_VERSION = 1


@dataclass(frozen=True)
class CaseResult:
    case: Case
    status: str  # PASSED, FAILED or ERROR
    completion: str = ""
    latency_ms: float | None = None
    failures: tuple[Failure, ...] = ()
    error: str | None = None  # why the case could not be run (a timeout, an LSP error, no engine)


@dataclass
class RunResult:
    results: list[CaseResult]
    engine: str | None = None
    startup_s: float | None = None
    error: str | None = None  # the spec ran into an engine that could not be used: exit 2
    server_stats: dict[str, Any] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return EXIT_UNUSABLE
        return EXIT_PASSED if all(r.status == PASSED for r in self.results) else EXIT_FAILED

    def latencies(self) -> list[float]:
        return [r.latency_ms for r in self.results if r.latency_ms is not None]


# -- for people -------------------------------------------------------------------------------

def case_line(result: CaseResult, number: int, total: int) -> str:
    """One line per case as it finishes: what, where, how it went, how long it took."""
    latency = f"{result.latency_ms:.0f} ms" if result.latency_ms is not None else "-"
    word = {PASSED: "PASS", FAILED: "FAIL", ERROR: "ERROR"}[result.status]
    return f"[{number}/{total}] {word:<5} {result.case.name} ({result.case.location}) {latency}"


def case_details(result: CaseResult) -> list[str]:
    """For a case that did not pass: each missed expectation, then what came back."""
    if result.status == ERROR:
        return [f"    error: {result.error}"]
    if result.status == PASSED:
        return []
    lines: list[str] = []
    for failure in result.failures:
        if failure.literal:
            lines.append(f"    expected ({failure.expectation}): {_shown(failure.expected)}")
            if "\n" in failure.expected:
                lines += _block(failure.expected)
            lines.append(f"      -> {failure.actual}")
        else:
            lines.append(f"    expected ({failure.expectation}): {failure.expected}, got {failure.actual}")
    lines.append(f"    got: {_shown(result.completion)}")
    if "\n" in result.completion:
        lines += _block(result.completion)
    return lines


def _shown(text: str) -> str:
    """Short text inline as a JSON string (quotes, escapes visible); long or multi-line text below."""
    if not text:
        return "(empty)"
    if "\n" in text:
        return f"({len(text.splitlines())} lines)"
    return json.dumps(text, ensure_ascii=False)


def _block(text: str) -> list[str]:
    # The bar keeps leading whitespace visible: indentation is part of what a completion gets right.
    return [f"      | {line}" for line in text.split("\n")]


def summary_line(run: RunResult) -> str:
    total = len(run.results)
    parts = [f"{run.count(PASSED)} passed", f"{run.count(FAILED)} failed"]
    if run.count(ERROR):
        parts.append(f"{run.count(ERROR)} errors")
    text = f"{total} case{'s' if total != 1 else ''}: {', '.join(parts)}"
    latencies = run.latencies()
    if latencies:
        text += f"; latency median {statistics.median(latencies):.0f} ms, max {max(latencies):.0f} ms"
    if run.engine:
        text += f" (engine: {run.engine}"
        text += f", ready after {run.startup_s:.0f} s)" if run.startup_s is not None else ")"
    return text


# -- JSON -------------------------------------------------------------------------------------

def to_json(run: RunResult, version: str) -> dict[str, Any]:
    return {
        "format": JSON_FORMAT_VERSION,
        "vllm_ls_version": version,
        "exit_code": run.exit_code,
        "error": run.error,
        "engine": run.engine,
        "startup_s": run.startup_s,
        "summary": {"total": len(run.results), "passed": run.count(PASSED), "failed": run.count(FAILED),
                    "errors": run.count(ERROR)},
        "cases": [_case_json(r) for r in run.results],
        "server_stats": run.server_stats,
    }


def _case_json(result: CaseResult) -> dict[str, Any]:
    case = result.case
    return {
        "name": case.name,
        "spec": str(case.spec),
        "line": case.line,
        "uri": case.uri,
        "position": {"line": case.position[0], "character": case.position[1]},
        "language": case.language,
        "method": case.method,
        "trigger": case.trigger,
        "status": result.status,
        "completion": result.completion,
        "latency_ms": None if result.latency_ms is None else round(result.latency_ms, 1),
        "failures": [{"expectation": f.expectation, "expected": f.expected, "actual": f.actual}
                     for f in result.failures],
        "error": result.error,
    }


def write_json(run: RunResult, path: Path, version: str) -> None:
    path.write_text(json.dumps(to_json(run, version), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# -- JUnit XML --------------------------------------------------------------------------------

# XML 1.0 cannot carry most control characters, even escaped; a model can still generate them.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def to_junit(run: RunResult) -> ET.Element:
    """JUnit XML as CI systems (GitLab, Jenkins, GitHub test reporters) read it: one suite per spec."""
    root = ET.Element("testsuites", name="vllm-ls check")
    suites: dict[Path, list[CaseResult]] = {}
    for result in run.results:
        suites.setdefault(result.case.spec, []).append(result)
    for spec, results in suites.items():
        suite = ET.SubElement(root, "testsuite", name=str(spec), tests=str(len(results)),
                              failures=str(sum(r.status == FAILED for r in results)),
                              errors=str(sum(r.status == ERROR for r in results)), skipped="0",
                              time=_seconds(sum(r.latency_ms or 0 for r in results)))
        properties = ET.SubElement(suite, "properties")
        for name, value in (("engine", run.engine), ("startup_s", run.startup_s)):
            if value is not None:
                ET.SubElement(properties, "property", name=name, value=_xml_text(str(value)))
        for result in results:
            suite.append(_testcase(result))
    root.set("tests", str(len(run.results)))
    root.set("failures", str(run.count(FAILED)))
    root.set("errors", str(run.count(ERROR)))
    root.set("time", _seconds(sum(run.latencies())))
    return root


def _testcase(result: CaseResult) -> ET.Element:
    case = result.case
    element = ET.Element("testcase", name=_xml_text(case.name), classname=_xml_text(case.spec.stem),
                         file=str(case.spec), line=str(case.line), time=_seconds(result.latency_ms or 0))
    if result.status == FAILED:
        names = ", ".join(dict.fromkeys(f.expectation for f in result.failures))
        failure = ET.SubElement(element, "failure", type="ExpectationFailed",
                                message=_xml_text(f"expectation not met: {names}"))
        failure.text = _xml_text(textwrap.dedent("\n".join(case_details(result))))
    elif result.status == ERROR:
        error = ET.SubElement(element, "error", type="CaseError", message=_xml_text(result.error or "error"))
        error.text = _xml_text(result.error or "")
    out = ET.SubElement(element, "system-out")
    latency = "-" if result.latency_ms is None else f"{result.latency_ms:.1f} ms"
    out.text = _xml_text(f"latency: {latency}\ncompletion:\n{result.completion}")
    return element


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.3f}"


def write_junit(run: RunResult, path: Path) -> None:
    tree = ET.ElementTree(to_junit(run))
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
