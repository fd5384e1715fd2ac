"""`machci why NAME`: the requirement paths that pulled a package in, per system."""

from __future__ import annotations

from collections import defaultdict, deque

from machci.lock import Lock, SystemLock


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


def explain(lock: Lock, name: str) -> tuple[str, bool]:
    """Text for every system, grouping systems whose paths are identical; and whether found."""
    grouped: dict[tuple[tuple[str, ...], ...], list[str]] = defaultdict(list)
    absent: list[str] = []
    for system in lock.systems:
        package = system.package(name)
        if package is None:
            absent.append(system.system)
            continue
        paths = tuple(tuple(p) for p in paths_to(system, name))
        grouped[paths].append(f"{system.system} ({name} {package.version})")
    lines: list[str] = []
    for paths, systems in grouped.items():
        lines.append(", ".join(systems) + ":")
        for path in paths:
            lines.append("  " + " -> ".join(path))
    if absent:
        lines.append(f"not needed on: {', '.join(absent)}")
    return "\n".join(lines), bool(grouped)
