"""`python -m machci.action`: the composite action's single entry point."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from machci.errors import MachciError

from . import build, bump, check
from .workflow import Inputs, error


def main(argv: Sequence[str] | None = None) -> int:
    inputs = Inputs.from_environment()
    commands = {"check": check.run, "build": build.run, "bump": bump.run}
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else inputs.command
    if command not in commands:
        error(f"unknown command {command!r}: expected check, build or bump")
        return 2
    try:
        return commands[command](inputs)
    except MachciError as exc:
        error(str(exc))
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
