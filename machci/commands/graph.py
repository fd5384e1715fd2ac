"""`machci graph`: one system's locked runtime dependency graph, as a tree, DOT or Mermaid."""

from __future__ import annotations

import argparse
import sys

from packaging.utils import canonicalize_name

from machci.commands.synced import synced_lock
from machci.config.layers import load_project, source_options
from machci.errors import InputError
from machci.inputs.spec import build_spec
from machci.lock.draw import draw
from machci.lock.model import Lock, SystemLock
from machci.resolve.locking import lock


def chosen(result: Lock, system: str | None, configured: tuple[str, ...]) -> SystemLock:
    """The system asked for, or the first in machci.yaml's `systems` (the lock sorts them)."""
    wanted = system if system is not None else next(iter(configured), None)
    found = result.system(wanted) if wanted is not None else result.systems[0]
    if found is None:
        known = ", ".join(s.system for s in result.systems)
        raise InputError(f"--system {system} is not one of the configured systems ({known})")
    return found


def run(args: argparse.Namespace) -> int:
    # --system picks the system to draw, never the systems to lock: the lock stays the one an
    # in-sync default.nix records, and is read from it offline.
    config, base = load_project(args)
    spec = build_spec(config, base)
    result = synced_lock(spec, config) or lock(spec, source_options(args))
    system = chosen(result, args.system, config.systems)
    name = canonicalize_name(args.why) if args.why is not None else None
    if name is not None and system.package(name) is None:
        sys.stderr.write(f"machci: {name} is not in the lock of {system.system}\n")
        return 1
    sys.stdout.write(draw(system, args.format, name))
    return 0
