"""The Lock as PEP 751's pylock.toml: the same pins, for pip and uv outside Nix.

Each locked system becomes an environment marker (its platform and Python), and each package
one entry per set of systems that install the very same files of it, under the marker of those
systems. So `Pylock.select()` with a system's environment and wheel tags returns exactly the
files machci locked for that system, whatever wheels the other systems use. The document is
built with packaging.pylock (which validates it) and written with tomli-w, in a fixed order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import tomli_w
from packaging.markers import Marker
from packaging.pylock import (
    Package,
    PackageArchive,
    PackageDirectory,
    PackageSdist,
    PackageVcs,
    PackageWheel,
    Pylock,
)
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName
from packaging.version import Version

from machci.errors import InputError
from machci.lock.model import Lock, LockedFile, LockedPackage

CREATED_BY = "machci"
LOCK_VERSION = Version("1.0")


def system_marker(environment: Mapping[str, str]) -> Marker:
    """The environment of one locked system (its PEP 508 marker environment) as a marker on
    its platform, machine and Python."""
    return Marker(
        f"sys_platform == {environment['sys_platform']!r}"
        f" and platform_machine == {environment['platform_machine']!r}"
        f" and python_version == {environment['python_version']!r}"
    )


def _either(markers: Sequence[Marker]) -> Marker:
    return Marker(" or ".join(f"({marker})" for marker in markers))


def dumps(lock: Lock, environments: Mapping[str, Mapping[str, str]]) -> str:
    """pylock.toml for every system of `lock`, given each system's PEP 508 environment."""
    systems = list(lock.systems)
    markers = {s.system: system_marker(environments[s.system]) for s in systems}
    groups: dict[tuple[object, ...], tuple[LockedPackage, list[str]]] = {}
    for system in systems:
        for package in system.packages:
            key = (package.name, package.version, package.provider, package.file, package.source)
            groups.setdefault(key, (package, []))[1].append(system.system)
    nixpkgs = sorted({p.name for p, _ in groups.values() if p.provider == "nixpkgs"})
    if nixpkgs:
        raise InputError(
            "pylock.toml cannot hold packages nixpkgs provides (no index file is locked for"
            f" them): {', '.join(nixpkgs)}; lock them from wheels or sdists for this output"
        )
    everywhere = {s.system for s in systems}
    packages = [
        # A package every system installs alike needs no marker: `environments` bounds them.
        _package(package, None if set(on) == everywhere else _either([markers[s] for s in on]))
        for package, on in sorted(groups.values(), key=lambda item: _order(*item))
    ]
    pythons = {s.python for s in systems}  # one: machci locks one Python for every system
    document = Pylock(
        lock_version=LOCK_VERSION,
        environments=[markers[s.system] for s in systems],
        requires_python=SpecifierSet(f"=={pythons.pop()}.*") if len(pythons) == 1 else None,
        created_by=CREATED_BY,
        packages=packages,
    )
    document.validate()
    return tomli_w.dumps(document.to_dict())


def _order(package: LockedPackage, systems: Iterable[str]) -> tuple[str, Version, list[str]]:
    return (package.name, Version(package.version), sorted(systems))


def _package(package: LockedPackage, marker: Marker | None) -> Package:
    name = NormalizedName(package.name)
    version = Version(package.version)
    source = package.source
    if source is not None:
        if source.kind == "path":
            return Package(
                name=name,
                version=version,
                marker=marker,
                directory=PackageDirectory(path=source.location),
            )
        if source.kind == "git":
            assert source.rev is not None
            return Package(
                name=name,
                version=version,
                marker=marker,
                vcs=PackageVcs(
                    type="git",
                    url=source.location,
                    requested_revision=source.requested,
                    commit_id=source.rev,
                ),
            )
        assert source.sha256 is not None
        return Package(
            name=name,
            version=version,
            marker=marker,
            archive=PackageArchive(url=source.location, hashes={"sha256": source.sha256}),
        )
    file = package.file
    assert file is not None
    if package.provider == "wheel":
        return Package(name=name, version=version, marker=marker, wheels=[_wheel(file)])
    return Package(name=name, version=version, marker=marker, sdist=_sdist(file))


def _upload_time(file: LockedFile) -> datetime | None:
    return datetime.fromisoformat(file.upload_time) if file.upload_time else None


def _wheel(file: LockedFile) -> PackageWheel:
    return PackageWheel(**_file_fields(file))


def _sdist(file: LockedFile) -> PackageSdist:
    return PackageSdist(**_file_fields(file))


def _file_fields(file: LockedFile) -> dict[str, Any]:
    """What PEP 751 records of a wheel or an sdist: name, url, size, upload-time, sha256."""
    return {
        "name": file.filename,
        "url": file.url,
        "size": file.size,
        "upload_time": _upload_time(file),
        "hashes": {"sha256": file.sha256},
    }
