"""Paths that two packages of one environment would install with different contents.

nixpkgs' `python.withPackages` is a `buildEnv` (pkgs/build-support/buildenv/builder.pl): two
packages with a file at the same path abort the build with "collision between `A' and `B'"
unless both files have the same contents and mode; a file where another package has a directory
aborts it too. Users meet that at `nix-build`; this finds it from each wheel's member list and
`RECORD` hashes, before anything is built. Pure: what a wheel holds is given by the caller
(sources/pypi/wheels.py reads it). sdists are built by nixpkgs, so their files are unknown here.

A file's contents are judged as they end up in the store, not only as the wheel lists them:
- pypaInstallHook runs pypa/installer, which compiles every `.py` it puts into site-packages to
  `__pycache__/*.pyc` holding the file's own store path: a `.py` that two packages ship collides
  even when both copies are identical;
- wrapPythonPrograms wraps the Python programs in `bin/` with their package's store path, so any
  executable in `bin/` counts as that package's own;
- pythonRemoveTestsDirHook deletes site-packages' top-level `tests` and `test`, and
  pythonRemoveBinBytecodeHook `bin/__pycache__`: nothing there collides;
- builder.pl never links `nix-support`, `propagated-build-inputs`, `info/dir`, most of
  `share/mime`, or anything named `log` or `perllocal.pod`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from machci.lock.model import Lock, LockedFile


@dataclass(frozen=True)
class WheelEntry:
    """One file member of a wheel."""

    path: str  # as named in the archive
    digest: str | None  # RECORD's hash ("sha256=<urlsafe-b64>"); None when RECORD gives none
    executable: bool  # installer keeps the executable bit, and buildEnv compares modes


@dataclass(frozen=True)
class WheelContents:
    entries: tuple[WheelEntry, ...]
    scripts: tuple[str, ...] = ()  # console and GUI entry points: installer writes bin/<name>


@dataclass(frozen=True, order=True)
class Collision:
    path: str  # relative to the environment's root, e.g. lib/python3.12/site-packages/x.py
    packages: tuple[str, ...]  # sorted


@dataclass(frozen=True)
class SystemCollisions:
    system: str
    collisions: tuple[Collision, ...]  # sorted by path


@dataclass(frozen=True)
class CollisionReport:
    systems: tuple[SystemCollisions, ...]  # in the lock's order
    unchecked: tuple[str, ...] = ()  # packages locked from sdists, sorted

    @property
    def found(self) -> bool:
        return any(s.collisions for s in self.systems)

    def text(self) -> str:
        lines: list[str] = []
        for system in self.systems:
            count = len(system.collisions)
            if not count:
                lines.append(f"{system.system}: no collisions")
                continue
            noun = "path" if count == 1 else "paths"
            lines.append(f"{system.system}: {count} {noun} installed by more than one package")
            lines.extend(f"  {c.path}: {', '.join(c.packages)}" for c in system.collisions)
        if self.unchecked:
            lines.append(
                f"not checked (built by Nix from source or nixpkgs): {', '.join(self.unchecked)}"
            )
        return "\n".join(lines) + "\n"


def _scheme_roots(python: str, distribution: str) -> dict[str, str]:
    """Where installer puts each scheme of `<name>-<version>.data/` (purelib: the archive root)."""
    site = f"lib/python{python}/site-packages"
    return {
        "purelib": site,
        "platlib": site,
        "scripts": "bin",
        "data": "",
        "headers": f"include/python{python}/{distribution}",
    }


_NEVER_LINKED_NAMES = frozenset({"log", "perllocal.pod"})


def _kept(path: str, site: str) -> bool:
    """Whether the path is still in the package's output and linked into the environment."""
    parts = path.split("/")
    if _NEVER_LINKED_NAMES.intersection(parts) or path.endswith("info/dir"):
        return False
    if parts[0] in ("nix-support", "propagated-build-inputs") or path.startswith(
        "bin/__pycache__/"
    ):
        return False
    if path.startswith("share/mime/") and not path.startswith("share/mime/packages"):
        return False
    for removed in (f"{site}/tests", f"{site}/test"):
        if path == removed or path.startswith(removed + "/"):
            return False
    return True


def installed_files(
    contents: WheelContents, filename: str, package: str, python: str
) -> dict[str, str]:
    """Where each file of a wheel lands under the prefix, with a key equal only for equal files.

    Keys are RECORD's hash plus the mode; a file whose installed contents name the package's
    own store path (compiled `.py`, wrapped programs) or whose hash is unknown gets a key no
    other package can have.
    """
    distribution, _, rest = filename.partition("-")
    version = rest.partition("-")[0]
    data_dir = f"{distribution}-{version}.data/"
    roots = _scheme_roots(python, distribution)
    site = roots["purelib"]
    own = f"only {package}"  # never a RECORD hash ("<algorithm>=<digest>")
    files: dict[str, str] = {}
    for entry in contents.entries:
        if entry.path.endswith("/"):
            continue
        scheme, inner = "purelib", entry.path
        if entry.path.startswith(data_dir):
            scheme, _, inner = entry.path[len(data_dir) :].partition("/")
            if scheme not in roots or not inner:
                continue  # installer refuses such a wheel: that package's own build fails
        path = f"{roots[scheme]}/{inner}" if roots[scheme] else inner
        compiled = scheme in ("purelib", "platlib") and inner.endswith(".py")
        wrapped = path.startswith("bin/") and entry.executable
        mode = "x" if entry.executable else "-"
        files[path] = own if compiled or wrapped else f"{entry.digest or own} {mode}"
    for script in contents.scripts:
        files[f"bin/{script}"] = own
    return {path: key for path, key in files.items() if _kept(path, site)}


def collisions(files_by_package: dict[str, dict[str, str]]) -> tuple[Collision, ...]:
    """Paths that are files of several packages with different keys, or a file of one package
    and a directory of another (builder.pl merges only directories)."""
    owners: dict[str, dict[str, str]] = {}
    directories: dict[str, set[str]] = {}
    for package, files in files_by_package.items():
        seen: set[str] = set()
        for path, key in files.items():
            owners.setdefault(path, {})[package] = key
            parent = path.rpartition("/")[0]
            while parent and parent not in seen:
                seen.add(parent)
                directories.setdefault(parent, set()).add(package)
                parent = parent.rpartition("/")[0]
    found = []
    for path, keys in owners.items():
        holders = set(keys) | directories.get(path, set())
        if len(set(keys.values())) > 1 or len(holders) > len(keys):
            found.append(Collision(path, tuple(sorted(holders))))
    return tuple(sorted(found))


def locked_wheels(lock: Lock) -> list[LockedFile]:
    """Every wheel of the lock, once (a pure-Python wheel may serve several systems)."""
    files = {
        p.file.sha256: p.file
        for s in lock.systems
        for p in s.packages
        if p.provider == "wheel" and p.file is not None
    }
    return [files[sha256] for sha256 in sorted(files)]


def find_collisions(
    lock: Lock, contents_of: Callable[[LockedFile], WheelContents]
) -> CollisionReport:
    """The collisions of each system's environment, and the sdists that could not be checked."""
    systems = []
    unchecked: set[str] = set()
    for system in lock.systems:
        files_by_package = {}
        for package in system.packages:
            if package.provider != "wheel" or package.file is None:
                unchecked.add(package.name)
                continue
            files_by_package[package.name] = installed_files(
                contents_of(package.file), package.file.filename, package.name, system.python
            )
        systems.append(SystemCollisions(system.system, collisions(files_by_package)))
    return CollisionReport(tuple(systems), tuple(sorted(unchecked)))
