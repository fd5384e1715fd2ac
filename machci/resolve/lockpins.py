"""The pins of a lock input, checked against the index before resolving (each must exist there
at the snapshot with a file the lock lists, and a pylock.toml's must give every system it
covers a file that system can install) and against the resolution after it (what a pinned
package needs at run time must be pinned too: machci fills in build requirements only).
Every failure is the lock's, named at its entry."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

from machci.config.model import Providers
from machci.dists import DistFile
from machci.errors import InputError
from machci.inputs.locks import is_lock_input
from machci.inputs.requirements import RequirementLine
from machci.inputs.targets import Target
from machci.lock.model import SystemLock
from machci.resolve.resolution import Finder


def lock_pins(lines: Iterable[RequirementLine]) -> list[RequirementLine]:
    """The lines a lock input pinned (a version and the hashes of its files)."""
    return [line for line in lines if line.hashes and is_lock_input(Path(line.location.where))]


def check_lock_pins(
    roots: Sequence[RequirementLine],
    constraints: Sequence[RequirementLine],
    targets: Sequence[Target],
    providers: Providers,
    finder: Finder,
) -> None:
    for line in lock_pins([*roots, *constraints]):
        files = _pinned_files(line, finder)
        if line in constraints:
            continue  # a uv.lock or poetry.lock pin: used where the roots need it
        for target in targets:
            _check_usable(line, files, target, providers)


def explain_lock_failure(
    failure: str,
    constraints: Sequence[RequirementLine],
    target: Target,
    providers: Providers,
    finder: Finder,
) -> None:
    """After resolving failed for `target`: a uv.lock or poetry.lock pin that the failure names
    and that has no file the target can install is the cause, and is said as the lock's error
    (a pin the roots do not need on this target may well have none)."""
    named = set(re.findall(r"[A-Za-z0-9][A-Za-z0-9._-]*", failure))
    for line in lock_pins(constraints):
        if line.requirement.name in named or line.name in named:
            _check_usable(line, _pinned_files(line, finder), target, providers)


def _check_usable(
    line: RequirementLine, files: Sequence[DistFile], target: Target, providers: Providers
) -> None:
    marker = line.requirement.marker
    if marker is not None and not marker.evaluate(dict(target.environment)):
        return
    if not any(_usable(file, target, providers) for file in files):
        listed = ", ".join(sorted(f.filename for f in files))
        raise InputError(
            f"{line.name} {_version(line)}: the lock lists no file {target.system} can"
            f" install (it lists {listed})",
            line.location,
        )


def _version(line: RequirementLine) -> str:
    return next(iter(line.requirement.specifier)).version


def _pinned_files(line: RequirementLine, finder: Finder) -> list[DistFile]:
    version = _version(line)
    files = [
        file
        for file in finder.every_file(canonicalize_name(line.name)).files
        if file.version == Version(version) and file.sha256 in line.hashes
    ]
    if not files:
        raise InputError(
            f"{line.name} {version}: the index has no file of this version with a hash the lock"
            " lists (as of the snapshot)",
            line.location,
        )
    return files


def _usable(file: DistFile, target: Target, providers: Providers) -> bool:
    if file.kind == "sdist":
        return "sdist" in providers.for_package(canonicalize_name(file.name))
    return target.wheel_rank(file.tags) is not None


def check_lock_closure(system: SystemLock, lines: Sequence[RequirementLine]) -> None:
    """A runtime dependency of a package the lock pins, that the lock does not pin, means the
    lock is not the whole environment it claims to be: an error at the dependent's entry."""
    pins = {line.name: line for line in lock_pins(lines)}
    for package in system.packages:
        line = pins.get(package.name)
        if line is None:
            continue
        missing = [name for name in package.dependencies if name not in pins]
        if missing:
            raise InputError(
                f"{package.name} {package.version} requires {', '.join(missing)} on"
                f" {system.system}, which the lock does not pin",
                line.location,
            )
