"""The command line: ``python -m wsfast {info,bench,serve,demo,client,run}``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command named in ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog="python -m wsfast", description="Fast WebSocket (RFC 6455) framing kernels."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("info", help="version, implementation, Python, platform and CPU features")
    sub.add_parser("bench", help="quick table: wsfast against its pure twins and peers")
    from . import client, demo, serve

    serve.add_arguments(sub.add_parser("serve", help="an echo server"))
    demo.add_arguments(
        sub.add_parser("demo", help="a live order board page and its WebSocket, on one port")
    )
    client.add_arguments(sub.add_parser("client", help="an interactive client"))
    sub.add_parser(
        "run", help="run a script, -m module or program with the patches applied (see run -h)"
    )
    if args[:1] == ["bench"]:
        from . import bench

        return bench.main(args[1:])
    if args[:1] == ["run"]:
        from . import run

        return run.main(args[1:])
    ns = parser.parse_args(args)
    if ns.command == "info":
        from .info import main as info_main

        return info_main()
    if ns.command == "serve":
        return serve.main(ns)
    if ns.command == "demo":
        return demo.main(ns)
    if ns.command == "client":
        return client.main(ns)
    parser.print_help()
    return 2
