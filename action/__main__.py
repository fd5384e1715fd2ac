"""`python -m machci.action`: the composite action's entry point.

Without arguments it runs the `command` input (check, build, manifest, or bump's resolving
step); with `cache` the build's choice of binary cache, with `publish` bump's second step, the
only one action.yml gives the token.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from machci.errors import MachciError

from . import build, bump, cache, check, manifest, publish
from .workflow import Inputs, error, workspace_path

COMMANDS = {
    "check": check.run,
    "build": build.run,
    "manifest": manifest.run,
    "bump": bump.run,
}
STEPS = {"cache": cache.run, "publish": publish.run}


def main(argv: Sequence[str] | None = None) -> int:
    inputs = Inputs.from_environment()
    args = list(sys.argv[1:] if argv is None else argv)
    name, known = (args[0], STEPS) if args else (inputs.command, COMMANDS)
    step = known.get(name)
    if step is None:
        error(f"unknown command {name!r}: expected {', '.join(known)}")
        return 2
    try:
        return step(inputs)
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
