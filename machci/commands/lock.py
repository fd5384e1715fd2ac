"""`machci lock`: resolve the project and print or write the Lock, without rendering."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from machci.atomic import atomic_write
from machci.config.defaults import PYLOCK_NAME
from machci.config.layers import load_project, source_options
from machci.inputs.spec import build_spec
from machci.lock.model import Lock
from machci.resolve.locking import lock


def _summary(result: Lock) -> str:
    lines = [f"data: {result.revision}"]
    for system in result.systems:
        lines.append(f"{system.system} (Python {system.python}): {len(system.packages)} packages")
        for package in system.packages:
            lines.append(f"  {package.name}=={package.version}  [{package.provider}]")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    config, base = load_project(args)
    spec = build_spec(config, base)
    result = lock(spec, source_options(args))
    text = result.dumps()
    if args.output:
        written = text
        if PYLOCK_NAME.fullmatch(args.output.name):
            from machci.lock import pylock  # packaging.pylock: imported only to write one

            environments = {target.system: target.environment for target in spec.targets}
            written = pylock.dumps(result, environments)
        atomic_write(args.output, written.encode())
    if args.json:
        sys.stdout.write(text)
    elif not args.output:
        sys.stdout.write(_summary(result))
    if args.check_collisions:
        return _check_collisions(result, spec.indexes, args)
    return 0


def _check_collisions(result: Lock, indexes: Sequence[str], args: argparse.Namespace) -> int:
    """The report goes to stdout, or to stderr when stdout carries the JSON lock."""
    from machci.lock.collisions import find_collisions, locked_wheels
    from machci.sources.pypi.wheels import fetch_contents

    contents = fetch_contents(locked_wheels(result), indexes, source_options(args))
    report = find_collisions(result, lambda file: contents[file.sha256])
    (sys.stderr if args.json else sys.stdout).write(report.text())
    return 1 if report.found else 0
