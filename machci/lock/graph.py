"""The dependency graph of one system's lock, as nixpkgs' builder will meet it.

Pure functions over a SystemLock. Runtime dependencies may form cycles (dask needs distributed,
`dask[distributed]` needs dask): the generated file keeps them out of every derivation, so they
are harmless. Two relations do become derivation inputs and must not loop:
- an sdist's build closure (its build requirements and their runtime closure), and
- a binary wheel's library search path (the binary wheels of its runtime closure).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from machci.errors import ResolutionError
from machci.lock.model import LockedPackage, SystemLock


def runtime_closure(packages: Mapping[str, LockedPackage], names: Iterable[str]) -> set[str]:
    """Every package reachable from `names` through runtime dependencies, `names` included."""
    seen: set[str] = set()
    todo = [n for n in names if n in packages]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(d for d in packages[name].dependencies if d not in seen)
    return seen


def _path(packages: Mapping[str, LockedPackage], start: Iterable[str], goal: str) -> list[str]:
    """A shortest runtime path from one of `start` to `goal` (for messages)."""
    parents: dict[str, str | None] = {s: None for s in sorted(start)}
    queue = list(parents)
    while queue:
        name = queue.pop(0)
        if name == goal:
            chain = [name]
            while (parent := parents[chain[-1]]) is not None:
                chain.append(parent)
            return chain[::-1]
        for dep in packages[name].dependencies:
            if dep not in parents:
                parents[dep] = name
                queue.append(dep)
    return [goal]


def check_build_cycles(system: SystemLock) -> None:
    """Refuse an sdist whose build closure contains itself: no Nix derivation can depend on
    itself, so nixpkgs would stop with an infinite recursion."""
    packages = {p.name: p for p in system.packages}
    problems = []
    for package in system.packages:
        if package.provider != "sdist" or not package.build_requires:
            continue
        if package.name in runtime_closure(packages, package.build_requires):
            chain = " -> ".join(_path(packages, package.build_requires, package.name))
            problems.append(
                f"  {package.name} {package.version} builds from its sdist, but its build"
                f" requirements need {package.name} itself ({chain})"
            )
    if problems:
        raise ResolutionError(
            f"cannot build for {system.system}:\n"
            + "\n".join(problems)
            + "\n  allow a wheel for one of them (providers in machci.yaml)"
        )


def _inputs_without_loops(
    system: SystemLock, linked: set[str], wanted: set[str] | None = None
) -> dict[str, tuple[str, ...]]:
    """For each of `linked` (packages whose derivations take others as inputs), the members of
    its runtime closure (of `wanted`, if given) that can be inputs: not itself, and no other
    linked package that depends back on it, which would make two derivations need each other."""
    packages = {p.name: p for p in system.packages}
    closures = {name: runtime_closure(packages, packages[name].dependencies) for name in linked}
    found: dict[str, tuple[str, ...]] = {}
    for name in sorted(linked):
        candidates = closures[name] if wanted is None else closures[name] & wanted
        inputs = sorted(
            other
            for other in candidates
            if other != name and not (other in linked and name in closures[other])
        )
        if inputs:
            found[name] = tuple(inputs)
    return found


def library_sources(system: SystemLock, binary: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """For each binary wheel, the binary wheels whose shared libraries it may load (torch loads
    the nvidia-* wheels'): those of its runtime closure that do not depend back on it.

    A wheel in a dependency cycle with it is left out, so these search paths never loop; its
    libraries can still be found at run time through the usual loader paths.
    """
    compiled = set(binary)
    return _inputs_without_loops(system, compiled, compiled)


def nixpkgs_inputs(system: SystemLock) -> dict[str, tuple[str, ...]]:
    """For each package taken from nixpkgs, the packages its build gets as dependencies: its
    whole runtime closure, so its own import checks and tests see everything they import.

    machci's own packages depend on nothing, so they never loop; only another nixpkgs package
    in a dependency cycle with it is left out."""
    return _inputs_without_loops(
        system, {p.name for p in system.packages if p.provider == "nixpkgs"}
    )
