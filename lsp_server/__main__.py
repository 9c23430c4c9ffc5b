"""The `vllm-ls` command: serve (stdio | --tcp), complete, check, bench, model path, settings-schema."""

from __future__ import annotations

import argparse
import sys

from . import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vllm-ls",
        description="AI code completions for any editor over LSP, served by vLLM. "
        "Without a command: serve LSP over stdio.",
    )
    parser.add_argument("--version", action="version", version=f"vllm-ls {__version__}")
    parser.add_argument("--engine-url", action="append", default=[], metavar="URL",
                        help="remote vLLM OpenAI-compatible server (repeat for replicas); "
                        "default: the in-process engine")
    parser.add_argument("--model", metavar="PATH_OR_NAME",
                        help="model for the engine (default: the embedded SmolLM2-135M)")
    parser.add_argument("--log-file", metavar="FILE", help="also write logs to FILE")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more logging (-vv: debug, with a line per completion: how it ended and where the time went)")
    parser.add_argument("--trace", metavar="FILE",
                        help="append a JSON line per completion to FILE (docs/performance.md: reading a trace)")
    commands = parser.add_subparsers(dest="command")

    serve = commands.add_parser("serve", help="serve LSP (stdio by default)")
    serve.add_argument("--stdio", action="store_true", help="serve over stdin/stdout (the default)")
    serve.add_argument("--tcp", action="store_true", help="serve one client over TCP")
    serve.add_argument("--host", default="127.0.0.1", help="TCP address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=2087, help="TCP port (default 2087)")

    complete = commands.add_parser(
        "complete", help="one completion at FILE:LINE:COL (1-based), through a real LSP session")
    complete.add_argument("location", metavar="FILE:LINE:COL")
    complete.add_argument("--language", default=None, help="language id (default: from the file suffix)")
    complete.add_argument("--timeout", type=float, default=600, help="seconds to wait for the engine")
    complete.add_argument("--json", action="store_true", help="print the result as JSON")
    complete.add_argument("--settings", default="{}", help="settings as JSON (initializationOptions)")

    check = commands.add_parser(
        "check", help="run the completion cases of spec files through a real LSP session (for CI)",
        description="Run the cases of SPEC files (TOML) in one LSP session with a vllm-ls server. "
        "Exit 0: all passed; 1: some failed; 2: a spec or the engine could not be used. "
        "See docs/ci.md.")
    from .tools.check.cli import add_arguments as add_check_arguments

    add_check_arguments(check)

    bench = commands.add_parser(
        "bench", help="replay real typing against the server and a naive profile of it; score infill",
        description="Replay the typing of real source files through real vllm-ls servers (one per settings "
        "profile) over LSP stdio, as editors do, and measure the engine work, latency and memory side by side "
        "with a direct engine call; score infill on holes punched in the files. See docs/performance.md.")
    from .tools.bench.cli import add_arguments as add_bench_arguments

    add_bench_arguments(bench)

    model = commands.add_parser("model", help="the embedded model")
    model.add_argument("action", choices=["path"], help="path: prepare the model if needed and print its directory")

    schema = commands.add_parser("settings-schema", help="print the settings (JSON schema or Markdown)")
    schema.add_argument("--format", choices=["json", "markdown", "vscode"], default="json")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "serve"
    if command == "serve":
        return _serve(args)
    if command == "complete":
        from .tools.complete import run as run_complete

        return run_complete(args)
    if command == "check":
        from .tools.check.cli import run as run_check

        return run_check(args)
    if command == "bench":
        from .tools.bench.cli import run as run_bench

        return run_bench(args)
    if command == "model":
        return _model_path()
    if command == "settings-schema":
        return _settings_schema(args.format)
    raise AssertionError(command)


def _base_settings(args: argparse.Namespace) -> dict:
    engine: dict = {}
    if args.engine_url:
        engine["url"] = args.engine_url
    if args.model:
        engine["model"] = args.model
    return {"engine": engine} if engine else {}


def _serve(args: argparse.Namespace) -> int:
    from . import logs

    logs.configure(args.verbose, args.log_file)
    from .server import build_server
    from .transport import serve_stdio, serve_tcp

    server = build_server(_base_settings(args), getattr(args, "trace", None))
    if getattr(args, "tcp", False):
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            import logging

            logging.getLogger("vllm-ls").warning(
                "listening on %s: anyone who can reach it can read the documents you send", args.host)
        return serve_tcp(server, args.host, args.port)
    return serve_stdio(server)


def _model_path() -> int:
    from engine.embedded import EmbeddedModelError, ensure_model

    try:
        print(ensure_model())
    except EmbeddedModelError as exc:
        print(f"vllm-ls: {exc}", file=sys.stderr)
        return 2
    return 0


def _settings_schema(fmt: str) -> int:
    from .settings_docs import render

    print(render(fmt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
