"""`vllm-ls check SPEC...`: the command line around the spec reader, the runner and the reports.

Exit codes: 0 every case passed, 1 some case failed (or could not be run), 2 a spec or the engine
could not be used. The cheap checks come first, so a typo or a wrong URL fails CI in seconds:
specs are read and validated, then the engine URL is tried, and only then does a server start.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from ... import termination
from ... import __version__
from ...settings import parse_settings
from .report import EXIT_UNUSABLE, RunResult, case_details, case_line, summary_line, write_json, write_junit
from .spec import SpecError, load_specs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", nargs="+", metavar="SPEC", help="spec files (TOML) listing the cases")
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write the results as JSON to FILE")
    parser.add_argument("--junit", metavar="FILE", type=Path, help="also write JUnit XML to FILE (for CI)")
    parser.add_argument("--startup-timeout", type=float, default=600, metavar="SECONDS",
                        help="give up when the engine is not ready after this long (default 600: a first "
                        "run converts the embedded model)")
    parser.add_argument("--case-timeout", type=float, default=120, metavar="SECONDS",
                        help="a case with no answer after this long is an error (default 120)")
    # The engine flags are also accepted after `check`, where CI scripts tend to put them.
    # SUPPRESS: when not given here, the values given before `check` stand.
    parser.add_argument("--engine-url", action="append", default=argparse.SUPPRESS, metavar="URL",
                        help="remote vLLM OpenAI-compatible server (repeat for replicas); "
                        "default: the in-process engine")
    parser.add_argument("--model", default=argparse.SUPPRESS, metavar="PATH_OR_NAME",
                        help="model for the engine (default: the embedded SmolLM2-135M)")


def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    from .runner import Options, Runner, preflight

    try:
        specs = load_specs(args.specs)
    except SpecError as exc:
        print(f"vllm-ls check: the spec cannot be used:\n{exc}", file=err)
        return EXIT_UNUSABLE
    if args.engine_url:
        # The server would only warn and fall back to the embedded engine: a check must not.
        _, problems = parse_settings({"engine": {"url": args.engine_url}})
        if problems:
            print(f"vllm-ls check: --engine-url: {'; '.join(problems)}".replace("; using the default", ""),
                  file=err)
            return EXIT_UNUSABLE
    options = Options(
        engine_urls=tuple(args.engine_url), model=args.model,
        server_flags=["-v"] * args.verbose + (["--log-file", args.log_file] if args.log_file else []),
        startup_timeout=args.startup_timeout, case_timeout=args.case_timeout,
    )

    def show(result, number: int, total: int) -> None:
        print(case_line(result, number, total), file=out, flush=True)
        for line in case_details(result):
            print(line, file=out, flush=True)

    runner = Runner(specs, options, out, err, show)
    total = len(runner.cases)
    print(f"vllm-ls check: {total} case{'s' if total != 1 else ''} from "
          f"{', '.join(str(s.path) for s in specs)}", file=out, flush=True)
    if options.engine_urls:
        problems = [p for p in (preflight(url) for url in options.engine_urls) if p]
        if len(problems) == len(options.engine_urls):
            result = runner.unusable(RunResult(results=[]), "; ".join(problems))
            return _finish(args, result, out, err)
        for problem in problems:  # the server spreads requests over the replicas that answer
            print(f"vllm-ls check: warning: {problem}", file=err, flush=True)
    try:
        result = termination.run(runner.run())
    except KeyboardInterrupt:  # the server has been stopped on the way out
        print("vllm-ls check: interrupted", file=err)
        return 130
    return _finish(args, result, out, err)


def _finish(args: argparse.Namespace, result: RunResult, out: TextIO, err: TextIO) -> int:
    for path, write in ((args.json, lambda p: write_json(result, p, __version__)),
                        (args.junit, lambda p: write_junit(result, p))):
        if path is not None:
            try:
                write(path)
            except OSError as exc:
                print(f"vllm-ls check: cannot write {path}: {exc}", file=err)
                return EXIT_UNUSABLE
    if result.error is not None:
        print(f"vllm-ls check: {result.error}", file=err, flush=True)
    print(summary_line(result), file=out, flush=True)
    return result.exit_code
