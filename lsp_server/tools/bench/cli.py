"""`vllm-ls bench [FILES...]`: the command line around the bench runner and its reports.

Progress goes to stderr; the table goes to stdout, on a private copy of it made before any engine
starts (the in-process direct engine's processes inherit file descriptor 1 and may write there).
Exit codes: 0 the bench ran (whatever the numbers say), 2 it could not be run.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from ... import termination
from .profiles import BUILTIN, parse_profiles
from .schedule import Typist

EXIT_OK, EXIT_UNUSABLE = 0, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE",
                        help="source files to type and to punch holes in (default: a few modules of this "
                        "Python's standard library)")
    parser.add_argument("--editors", default="2", metavar="N[,N...]",
                        help="concurrent simulated editors (default 2); several counts, e.g. 1,32, run each "
                        "profile once per count")
    parser.add_argument("--keystrokes", type=int, default=300, metavar="N",
                        help="keystrokes each editor types (default 300)")
    parser.add_argument("--cps", type=float, default=6.0, metavar="CHARS_PER_SEC",
                        help="typing speed inside a burst, in characters per second (default 6); pauses come on top")
    parser.add_argument("--style", choices=["vscode", "neovim", "both"], default="both",
                        help="vscode: cancel the outstanding request on each keystroke; neovim: never cancel; "
                        "both (default): alternate per editor")
    parser.add_argument("--profiles", default="vllm-ls,v0.1,naive", metavar="LIST",
                        help=f"settings profiles to compare, one server each (default vllm-ls,v0.1,naive); built-in: "
                        f"{', '.join(BUILTIN)}; or name={{settings JSON}}")
    parser.add_argument("--quality", action=argparse.BooleanOptionalAction, default=True,
                        help="also score infill on holes punched in the files (default: yes)")
    parser.add_argument("--holes", type=int, default=40, metavar="N",
                        help="holes for the infill score: a quarter calls with their closer after the cursor, "
                        "the rest half single lines and half blocks (default 40; without FILEs, from more "
                        "standard-library modules than the typing replay uses)")
    parser.add_argument("--quality-profiles", default=None, metavar="LIST",
                        help="settings profiles to score infill with (default: the first of --profiles); "
                        "e.g. vllm-ls,paths compares prefix-only with prefix-only-paths")
    parser.add_argument("--probes", type=int, default=4, metavar="N",
                        help="requests timed through the server and directly for the overhead ratio (default 4)")
    parser.add_argument("--serial", action=argparse.BooleanOptionalAction, default=None,
                        help="start each profile's server when its turn comes instead of all at once (less "
                        "memory, longer run); default: only when the machine lacks the memory for all "
                        "in-process engines at once")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON to FILE")
    parser.add_argument("--plot", type=Path, metavar="FILE.png", help="draw the comparison to FILE.png")
    parser.add_argument("--trace", type=Path, metavar="FILE.jsonl",
                        help="write every completion's trace record (how it ended, where the time went) to "
                        "FILE as JSON lines, with its profile")
    parser.add_argument("--seed", type=int, default=0, help="seed of the typing plans and holes (default 0)")
    parser.add_argument("--startup-timeout", type=float, default=600, metavar="SECONDS",
                        help="give up when an engine is not ready after this long (default 600)")
    parser.add_argument("--answer-timeout", type=float, default=120, metavar="SECONDS",
                        help="a request with no answer this long after typing ends counts as unanswered "
                        "(default 120)")
    # As with `check`, the engine flags are accepted after the command too.
    parser.add_argument("--engine-url", action="append", default=argparse.SUPPRESS, metavar="URL",
                        help="remote vLLM OpenAI-compatible server (repeat for replicas); default: in-process")
    parser.add_argument("--model", default=argparse.SUPPRESS, metavar="PATH_OR_NAME",
                        help="model for the engine (default: the embedded SmolLM2-135M)")


def parse_editor_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--editors takes numbers, e.g. 2 or 1,32; got {text!r}") from None
    if not counts or any(n < 1 or n > 256 for n in counts):
        raise ValueError(f"--editors: each count must be between 1 and 256, got {text!r}")
    return list(dict.fromkeys(counts))


def options_from(args: argparse.Namespace):
    from .runner import HOLE_MODULES, Options, default_files

    profiles = parse_profiles(args.profiles)
    quality_profiles = parse_profiles(args.quality_profiles) if args.quality_profiles else []
    for profile in quality_profiles:
        if profile.name == "raw":
            raise ValueError("'raw' is the name of the baseline; call the profile something else")
        if profile.engine_settings() != profiles[0].engine_settings():
            raise ValueError(f"quality profile {profile.name!r} changes engine settings "
                             f"({', '.join(sorted(profile.engine_settings()))}): the infill runs on "
                             f"the first profile's server")
    if args.keystrokes < 1 or args.holes < 0 or args.probes < 1:
        raise ValueError("--keystrokes and --probes must be at least 1, --holes at least 0")
    files = args.files or default_files()
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ValueError(f"no such file: {', '.join(missing)}")
    return Options(
        files=list(files),
        editors=parse_editor_counts(args.editors),
        keystrokes=args.keystrokes,
        typist=Typist(cps=args.cps),
        style=args.style,
        profiles=profiles,
        quality=args.quality and args.holes > 0,
        holes=args.holes,
        quality_profiles=quality_profiles,
        hole_files=[] if args.files else default_files(HOLE_MODULES),
        probes=args.probes,
        engine_urls=tuple(args.engine_url),
        model=args.model,
        seed=args.seed,
        startup_timeout=args.startup_timeout,
        answer_timeout=args.answer_timeout,
        serial=args.serial,
        server_flags=["-v"] * args.verbose + (["--log-file", args.log_file] if args.log_file else []),
        trace=args.trace,
    )


def run(args: argparse.Namespace) -> int:
    from ... import logs
    from ..check.runner import preflight
    from ..client import ServerFailed
    from ...transport import protect_stdout
    from . import report
    from .runner import Bench

    logs.configure(args.verbose, args.log_file)
    try:
        options = options_from(args)
        bench = Bench(options, say)
    except (ValueError, OSError) as exc:
        print(f"vllm-ls bench: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    for url in options.engine_urls:
        problem = preflight(url)
        if problem:
            print(f"vllm-ls bench: {problem}", file=sys.stderr)
            return EXIT_UNUSABLE
    out = io.TextIOWrapper(protect_stdout(), encoding="utf-8", line_buffering=True)
    try:
        result = termination.run(bench.run())
    except ServerFailed as exc:
        print(f"vllm-ls bench: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except Exception as exc:  # noqa: BLE001 - an engine that cannot start fails in many ways: say which
        print(f"vllm-ls bench: the bench could not run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:  # servers and engines have been stopped on the way out
        print("vllm-ls bench: interrupted", file=sys.stderr)
        return 130
    report.versus_baseline(result["runs"])
    result["targets"] = report.targets(result)
    print(report.render(result), file=out)
    try:
        if args.json:
            report.write_json(result, args.json)
            say(f"results written to {args.json}")
        if args.plot:
            report.plot(result, args.plot)
            say(f"plot written to {args.plot}")
    except OSError as exc:
        print(f"vllm-ls bench: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    out.flush()
    return EXIT_OK


def say(message: str) -> None:
    print(f"vllm-ls bench: {message}", file=sys.stderr, flush=True)
