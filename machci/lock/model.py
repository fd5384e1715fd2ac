"""The Lock: the contract between resolving and rendering.

Plain frozen dataclasses in a canonical order, so equal resolutions compare and serialise
identically. Nothing downstream of the Lock reads an index; nothing upstream knows Nix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from machci.redaction import strip_credentials


@dataclass(frozen=True, order=True)
class LockedFile:
    filename: str
    url: str
    sha256: str  # hex digest, as the index publishes it
    # As the index says (PEP 700), for lock files that record them; None when it does not.
    size: int | None = None
    upload_time: str | None = None  # RFC 3339, UTC

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"filename": self.filename, "url": self.url, "sha256": self.sha256}
        if self.size is not None:
            data["size"] = self.size
        if self.upload_time is not None:
            data["upload_time"] = self.upload_time
        return data


# Never part of a package's source: version control, caches, virtual environments, and Nix's
# `result` links (symbolic links are left out in any case).
# The resolver packs a tree without them and default.nix filters them out alike.
EXCLUDED = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "node_modules",
    }
)


_OPTIONAL_SOURCE_FIELDS = ("sha256", "rev", "ref", "archive", "requested")


@dataclass(frozen=True, order=True)
class LockedSource:
    """Where a package from outside the index comes from, pinned."""

    kind: str  # "path" | "url" | "git"
    location: str  # path: relative to the generated file, POSIX; else the URL
    sha256: str | None = None  # url: the archive's sha256 (hex)
    rev: str | None = None  # git: the commit
    ref: str | None = None  # git: the branch or tag it was resolved from
    archive: str | None = None  # url: "source.tar.gz" or "source.zip", how to unpack it
    requested: str | None = None  # git: the rev machci.yaml asks for (None: the remote's HEAD)

    @property
    def request(self) -> tuple[str, str, str | None]:
        """What machci.yaml asked for; the same request keeps its pin until `machci bump`."""
        return (self.kind, self.location, self.requested)

    @classmethod
    def from_json(cls, value: object) -> LockedSource | None:
        """A source as to_json wrote it (a header pin line may add the package's name, which is
        not the source's), or None when it is not one."""
        if not isinstance(value, dict):
            return None
        fields = {k: value.get(k) for k in ("kind", "location", *_OPTIONAL_SOURCE_FIELDS)}
        if value.keys() - fields.keys() - {"name"} or not all(
            v is None or isinstance(v, str) for v in fields.values()
        ):
            return None
        if fields["kind"] not in ("path", "url", "git") or not fields["location"]:
            return None
        return cls(**fields)  # type: ignore[arg-type]

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "location": self.location}
        for key in _OPTIONAL_SOURCE_FIELDS:
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


@dataclass(frozen=True)
class LockedPackage:
    name: str  # canonical (PEP 503) name
    version: str
    provider: str  # "wheel" | "sdist" | "nixpkgs"
    file: LockedFile | None  # None for "nixpkgs": the interpreter's package set builds it
    dependencies: tuple[str, ...] = ()  # canonical names, sorted
    build_requires: tuple[str, ...] = ()  # canonical names, sorted (sdists only)
    extras: tuple[str, ...] = ()  # extras that were requested of this package, sorted
    build_needs: tuple[str, ...] = ()  # what nixpkgs' plain builder lacks, sorted (sdists only)
    attr: str | None = None  # the python3XXPackages attribute, for "nixpkgs"
    source: LockedSource | None = None  # for "path", "url" and "git"
    scripts: bool = False  # the project itself: default.nix's `app` exposes its scripts
    # The metadata's Project-URLs, for a bump's release notes links: not part of what is locked
    # (not rendered, not compared; a lock read back from default.nix has none).
    project_urls: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": self.version,
            "provider": self.provider,
            "file": None,
            "dependencies": list(self.dependencies),
            "build_requires": list(self.build_requires),
            "build_needs": list(self.build_needs),
            "extras": list(self.extras),
        }
        if self.file is not None:
            data["file"] = self.file.to_json()
        if self.attr is not None:
            data["attr"] = self.attr
        if self.source is not None:
            data["source"] = self.source.to_json()
        if self.scripts:
            data["app"] = True
        return data


@dataclass(frozen=True)
class Root:
    """A top-level requirement as the user wrote it (less any credentials in its URL), and where."""

    name: str
    requirement: str
    source: str

    def __post_init__(self) -> None:
        # The lock is written and printed: a `name @ https://user:token@host/…` must not be.
        object.__setattr__(self, "requirement", strip_credentials(self.requirement))


@dataclass(frozen=True)
class SystemLock:
    system: str
    python: str
    packages: tuple[LockedPackage, ...]  # sorted by name
    roots: tuple[Root, ...] = ()

    def package(self, name: str) -> LockedPackage | None:
        return next((p for p in self.packages if p.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "roots": [
                {"name": r.name, "requirement": r.requirement, "source": r.source}
                for r in self.roots
            ],
            "packages": {p.name: p.to_json() for p in self.packages},
        }


@dataclass(frozen=True)
class Lock:
    systems: tuple[SystemLock, ...]  # sorted by system
    index: str  # pypi-deps-db: the repository, or the checkout's path
    snapshot: str | None  # pypi-deps-db: the commit (None for a checkout)
    source: str = "pypi"

    def system(self, name: str) -> SystemLock | None:
        return next((s for s in self.systems if s.system == name), None)

    @property
    def revision(self) -> str:
        """The data revision in one line, e.g. "pypi https://pypi.org/simple 2026-11-01T00:00:00Z"
        or "pypi-deps-db DavHau/pypi-deps-db <commit>"."""
        if self.source == "pypi":
            return f"pypi {self.index} {self.snapshot or 'latest'}"
        return f"{self.source} {self.index} {self.snapshot or 'checkout'}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"source": self.source}
        if self.source == "pypi":
            data.update(index=self.index, snapshot=self.snapshot)
        elif self.snapshot is None:
            data.update(path=self.index)
        else:
            data.update(repository=self.index, rev=self.snapshot)
        return {"data": data, "systems": {s.system: s.to_json() for s in self.systems}}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"
