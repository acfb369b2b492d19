"""The command line: ``python -m wsfast {info,bench}``."""

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
    if args[:1] == ["bench"]:
        from . import bench

        return bench.main(args[1:])
    ns = parser.parse_args(args)
    if ns.command == "info":
        from .info import main as info_main

        return info_main()
    parser.print_help()
    return 2
