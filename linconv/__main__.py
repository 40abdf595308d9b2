"""``python -m linconv``: the command line. Each subcommand lives in linconv/commands/<name>.py
and exposes ``register(subparsers)``, which adds its parser and sets ``func`` (args -> exit code)."""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> module under linconv.commands; listed here so --help shows them in this order
COMMANDS = ("calibrate", "report", "regressions", "faults", "gate", "gpu", "model")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m linconv",
        description="linconv: verify that PyTorch's Linear and Conv2d formulations compute the same linear maps.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"linconv.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"linconv.commands.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
