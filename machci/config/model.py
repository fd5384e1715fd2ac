"""What machci.yaml describes: the Config and its parts, with the defaults the schema gives.

The key names are the interface other tools rely on; see the README's configuration section
and machci.schema.json.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from machci.config.defaults import (
    DEFAULT_GLIBC,
    DEFAULT_MACOS,
    DEFAULT_OUTPUT,
    FLAKE_NAME,
)
from machci.config.properties import PROPERTIES
from machci.errors import InputError, Location


def _default(*keys: str) -> Any:
    """A default as machci.schema.json gives it (the schema is the one place defaults live)."""
    node: Any = PROPERTIES
    for key in keys[:-1]:
        branches = node[key].get("anyOf", [node[key]])  # flake: true, false or a mapping
        node = next(branch["properties"] for branch in branches if "properties" in branch)
    return node[keys[-1]]["default"]


DEFAULT_INDEX: str = _default("data", "index")
PROVIDERS = ("wheel", "sdist", "nixpkgs")
DEFAULT_PROVIDERS = tuple(_default("providers")["_default"].split(","))
SOURCES = tuple(PROPERTIES["data"]["properties"]["source"]["enum"])
DEFAULT_DEPSDB_REPOSITORY: str = _default("data", "repository")
METADATA_FAILURES = tuple(PROPERTIES["metadataFailures"]["enum"])
DEFAULT_FLAKE_NIXPKGS: str = _default("flake", "nixpkgs")


@dataclass(frozen=True)
class RequirementInput:
    """One requirements input: a requirements file, or a pyproject.toml with selections."""

    path: Path
    extras: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataRevision:
    """The pinned dependency data. For "pypi": which index, and the instant it is frozen at.
    For "pypi-deps-db" (mach-nix's pypiDataRev/pypiDataSha256): a commit of the repository and
    the NAR hash of its tarball, or a checkout."""

    index: str | None = None  # None: the requirements' --index-url, else DEFAULT_INDEX
    extra_indexes: tuple[str, ...] = ()
    snapshot: datetime | None = None
    source: str = _default("data", "source")
    repository: str = DEFAULT_DEPSDB_REPOSITORY
    rev: str | None = None  # 40 hex digits, lower case
    sha256: str | None = None  # as written (Nix base32, hex or SRI): bump keeps the spelling
    path: Path | None = None  # a checkout of the repository instead of rev and sha256

    @property
    def snapshot_text(self) -> str | None:
        return format_snapshot(self.snapshot) if self.snapshot else None


@dataclass(frozen=True)
class Providers:
    """Provider order per package (canonical names), with a default for the rest."""

    default: tuple[str, ...] = DEFAULT_PROVIDERS
    per_package: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def for_package(self, name: str) -> tuple[str, ...]:
        return self.per_package.get(name, self.default)


@dataclass(frozen=True)
class Image:
    """The container image built from the environment (mach-nix's mkDockerImage)."""

    name: str = _default("image", "name")
    tag: str = _default("image", "tag")
    cmd: tuple[str, ...] = ()  # empty: the environment's python


@dataclass(frozen=True)
class NixpkgsData:
    """Where the versions of nixpkgs' Python packages come from (the `nixpkgs` provider)."""

    index: Path | None = None  # a file written by `machci nixpkgs-index`
    path: Path | None = None  # a nixpkgs tree, evaluated with nix-instantiate


def is_script_attribute(attribute: str) -> bool:
    """Phases and hooks hold shell code: a plain or `add` value for them is that code itself
    (`postInstall: "rm -rf $out/share"`); every other value is a Nix expression."""
    return attribute.endswith(("Phase", "Hook")) or attribute.startswith(("pre", "post"))


@dataclass(frozen=True)
class AttributeOverride:
    """One attribute of mach-nix's simplified `_` overrides: `form` is "set" (the expression
    replaces the value), "add" (appended to it) or "mod" (a function of the old value)."""

    attribute: str
    form: str
    expression: str  # Nix code written by the user; shell code for a script attribute
    where: Location

    @property
    def is_nix(self) -> bool:
        return self.form == "mod" or not is_script_attribute(self.attribute)


@dataclass(frozen=True)
class PackageOverride:
    name: str  # canonical name
    attributes: tuple[AttributeOverride, ...]
    where: Location


@dataclass(frozen=True)
class ExtraSource:
    """A package from outside the index (mach-nix's packagesExtra): a local source tree, an
    archive URL or a git repository, resolved together with the requirements."""

    kind: str  # "path" | "url" | "git"
    location: str  # the path (absolute), the archive URL or the repository URL
    where: Location
    rev: str | None = None  # git: a branch, tag or commit (None: the remote's HEAD)
    extras: tuple[str, ...] = ()
    requirements: tuple[str, ...] | None = None  # replace the detected requirements
    requirements_extra: tuple[str, ...] = ()  # added to them
    project: bool = False  # the project itself (`project:`), which also gets an `app`


@dataclass(frozen=True)
class RPackages:
    """R with these packages of nixpkgs' rPackages, and rpy2 wired to it (mach-nix's R
    packages in packagesExtra)."""

    names: tuple[str, ...]  # rPackages attribute names (R's dots as underscores), sorted
    where: Location  # the rPackages key: where the rpy2 requirement comes from


@dataclass(frozen=True)
class BuildConstraint:
    """One entry of buildConstraints: a requirement line (`setuptools<70`), or a file of them
    (`{path: build-constraints.txt}`, pip's constraints format). They restrict the versions of
    the build requirements machci resolves and installs, and never add a package."""

    where: Location
    line: str | None = None
    path: Path | None = None


@dataclass(frozen=True)
class Flake:
    """flake.nix beside the generated file: where its nixpkgs comes from, and which of the
    project's scripts `nix run` starts."""

    nixpkgs: str = DEFAULT_FLAKE_NIXPKGS  # a flake reference
    app: str | None = None  # None: the script named like the project


@dataclass(frozen=True)
class Config:
    requirements: tuple[RequirementInput, ...] = ()
    python: str = _default("python")
    systems: tuple[str, ...] = tuple(_default("systems"))
    data: DataRevision = DataRevision()
    providers: Providers = Providers()
    output: Path = Path(DEFAULT_OUTPUT)
    # pylock.toml files (PEP 751) written beside the output, from the same lock.
    lock_outputs: tuple[Path, ...] = ()
    glibc: tuple[int, int] = DEFAULT_GLIBC
    macos: tuple[int, int] = DEFAULT_MACOS
    image: Image = Image()
    # Shared libraries binary wheels may leave unresolved (besides libcuda.so.1), e.g. ones
    # only a driver on the running machine provides.
    ignore_missing_libraries: tuple[str, ...] = ()
    nixpkgs: NixpkgsData = NixpkgsData()
    overrides: tuple[PackageOverride, ...] = ()
    overlays_pre: tuple[Path, ...] = ()  # overridesPre: Nix files, each a Python package overlay
    overlays_post: tuple[Path, ...] = ()
    ignore_collisions: bool = _default("ignoreCollisions")
    build: bool = _default(
        "build"
    )  # false: no sdist's build backend ever runs (see backends/sdist.py)
    packages_extra: tuple[ExtraSource, ...] = ()  # the project itself (`project:`) first
    flake: Flake | None = None  # None: no flake.nix
    r_packages: RPackages | None = None  # None: no R
    build_constraints: tuple[BuildConstraint, ...] = ()
    # "error": a version whose metadata its backend cannot prepare stops the run; "skip": passed
    # over with a warning (at most failures.MAX_SKIPPED_VERSIONS per package).
    metadata_failures: str = _default("metadataFailures")
    path: Path | None = None
    overridden: bool = False  # command-line options changed what machci.yaml says

    def with_changes(self, **changes: object) -> Config:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def flake_output(self) -> Path:
        """Where flake.nix goes (written only with `flake:`): beside the generated file, which it
        imports."""
        return self.output.parent / FLAKE_NAME

    @property
    def written(self) -> tuple[Path, ...]:
        """The files `machci sync` writes."""
        flake = (self.flake_output,) if self.flake else ()
        return (self.output, *flake, *self.lock_outputs)


# Snapshots before PyPI's upload times begin cannot select anything; later than a day from now
# (clocks differ) they would let files that do not exist yet into a later lock.
OLDEST_SNAPSHOT = datetime(2000, 1, 1, tzinfo=UTC)
SNAPSHOT_CLOCK_SKEW = timedelta(days=1)
# Python keeps microseconds: a seventh digit would be dropped, and the pin would not be exact.
_FRACTION_DIGITS = re.compile(r":\d\d[.,](\d+)")


def format_snapshot(moment: datetime) -> str:
    """RFC 3339 in UTC; fractional seconds only when there are any, so the pin stays exact."""
    # isoformat, not strftime: a page has thousands of upload times, and it is twice as fast.
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return (utc.isoformat().rstrip("0") if utc.microsecond else utc.isoformat()) + "Z"


def parse_snapshot(value: object, where: Location | None = None) -> datetime:
    """An RFC 3339 instant with a time zone, e.g. 2026-11-01T00:00:00Z."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        digits = _FRACTION_DIGITS.search(value)
        if digits and len(digits.group(1)) > 6:
            raise InputError(
                f"snapshot {value!r} has more than 6 fractional digits; machci keeps"
                " snapshots to the microsecond",
                where,
            )
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise InputError(
                f"invalid snapshot {value!r}: expected an RFC 3339 time such as"
                " '2026-11-01T00:00:00Z'",
                where,
            ) from exc
    else:
        raise InputError(f"invalid snapshot {value!r}: expected a quoted RFC 3339 time", where)
    if moment.tzinfo is None:
        raise InputError(
            f"snapshot {value!s} has no time zone: add 'Z' for UTC, e.g. '2026-11-01T00:00:00Z'",
            where,
        )
    try:
        moment = moment.astimezone(UTC)
        in_range = OLDEST_SNAPSHOT <= moment <= datetime.now(UTC) + SNAPSHOT_CLOCK_SKEW
    except OverflowError:  # the first or last day datetime can hold, moved to UTC
        in_range = False
    if not in_range:
        raise InputError(
            f"snapshot {value!s} is out of range: expected a time from"
            f" {format_snapshot(OLDEST_SNAPSHOT)} to now (at most a day ahead of this clock)",
            where,
        )
    return moment


def parse_providers(value: str, where: Location | None = None) -> tuple[str, ...]:
    names = tuple(p.strip() for p in value.split(",") if p.strip())
    unknown = [p for p in names if p not in PROVIDERS]
    if unknown or not names:
        raise InputError(
            f"invalid provider list {value!r}: expected a comma-separated list of"
            f" {', '.join(PROVIDERS)}",
            where,
        )
    if len(set(names)) != len(names):
        raise InputError(f"provider list {value!r} names a provider twice", where)
    return names


def selects(path: Path) -> bool:
    """Whether extras and groups can be selected from an input: a pyproject.toml (or another
    .toml file), a uv.lock or a poetry.lock."""
    return path.suffix == ".toml" or path.name in ("uv.lock", "poetry.lock")
