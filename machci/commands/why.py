"""`machci why NAME`: the requirement paths that pulled a package in, per system."""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence

from packaging.utils import canonicalize_name

from machci.commands.synced import synced_lock
from machci.config.layers import load_project, source_options
from machci.inputs.spec import build_spec
from machci.lock.model import Lock, LockedPackage, SystemLock
from machci.resolve.locking import lock, nixpkgs_index
from machci.sources.nixpkgs.index import NixpkgsPackage


def paths_to(system: SystemLock, name: str, limit: int = 20) -> list[list[str]]:
    """Shortest paths from a root requirement to `name`; build-time edges are marked."""
    edges = {
        p.name: [(d, "") for d in p.dependencies] + [(b, " (build)") for b in p.build_requires]
        for p in system.packages
    }
    found: list[list[str]] = []
    queue: deque[tuple[list[str], list[str]]] = deque(
        ([f"{root.source} ({root.requirement})"], [root.name]) for root in system.roots
    )
    while queue and len(found) < limit:
        steps, names = queue.popleft()
        if names[-1] == name:
            found.append([*steps, name])
            continue
        for child, mark in edges.get(names[-1], []):
            if child not in names:
                queue.append(([*steps, names[-1] + mark], [*names, child]))
    return found


def nixpkgs_choice(
    package: LockedPackage, offered: Mapping[str, Sequence[NixpkgsPackage]]
) -> str | None:
    """Which nixpkgs attribute a package comes from, and the others nixpkgs has for it."""
    if package.attr is None:
        return None
    others = [p for p in offered.get(package.name, ()) if p.attr != package.attr]
    text = f"from nixpkgs' attribute {package.attr}"
    if others:
        text += (
            "; nixpkgs also offers "
            + ", ".join(f"{p.attr} {p.version}" for p in others)
            + " (the newest version the requirements allow is taken, ties by attribute name)"
        )
    return text


def explain(
    lock: Lock, name: str, nixpkgs: Mapping[str, Sequence[NixpkgsPackage]] | None = None
) -> tuple[str, bool]:
    """Text for every system, grouping systems whose paths are identical; and whether found."""
    grouped: dict[tuple[tuple[str, ...], ...], list[str]] = defaultdict(list)
    origins: dict[str, None] = {}
    absent: list[str] = []
    for system in lock.systems:
        package = system.package(name)
        if package is None:
            absent.append(system.system)
            continue
        paths = tuple(tuple(p) for p in paths_to(system, name))
        grouped[paths].append(f"{system.system} ({name} {package.version})")
        origin = nixpkgs_choice(package, nixpkgs or {})
        if origin:
            origins[f"{name} {package.version} comes {origin}"] = None
    lines: list[str] = []
    for paths, systems in grouped.items():
        lines.append(", ".join(systems) + ":")
        for path in paths:
            lines.append("  " + " -> ".join(path))
    lines.extend(origins)
    if absent:
        lines.append(f"not needed on: {', '.join(absent)}")
    return "\n".join(lines), bool(grouped)


def run(args: argparse.Namespace) -> int:
    config, base = load_project(args)
    spec = build_spec(config, base)
    options = source_options(args)
    result = synced_lock(spec, config) or lock(spec, options)
    name = canonicalize_name(args.package)
    text, found = explain(result, name, nixpkgs_index(spec, options))
    if not found:
        sys.stderr.write(f"machci: {name} is not in the lock of any system\n")
        return 1
    sys.stdout.write(text + "\n")
    return 0
