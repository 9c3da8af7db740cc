"""The ``simtwin`` command: one dispatcher, each sub-command defined in its own module.

May import every folder but ``plugin``. A module listed in :data:`SUBCOMMANDS` provides
``register(subparsers) -> None`` that adds its parser and sets ``func=callable(args) -> int``.
Modules import lazily so ``simtwin --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pytest_simtwin.errors import SimTwinError

#: Modules that register sub-commands (kept in the order they appear in --help).
SUBCOMMANDS: tuple[str, ...] = (
    "pytest_simtwin.cli.merge",
    "pytest_simtwin.cli.image",
    "pytest_simtwin.cli.report",
    "pytest_simtwin.cli.pool",
    "pytest_simtwin.cli.twin",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simtwin",
        description="pytest-simtwin tools: reports, baselines, twin validation, images and simulator pools.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args))
    except SimTwinError as exc:
        print(f"simtwin {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
