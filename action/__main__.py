"""`python -m machci.action`: the composite action's single entry point."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from machci.errors import MachciError

from . import build, bump, check
from .workflow import Inputs, error, workspace_path


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
        where = exc.location
        if where is not None and "://" not in where.where:  # a file of the project: annotate it
            path = inputs.working_directory / where.where
            error(exc.message, file=workspace_path(path), line=where.line)
        else:
            error(str(exc))
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
