"""machci.yaml: loading with ruamel.yaml and validating with errors that point at the line.

The key names are the interface other tools rely on; see the README's configuration section.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from machci.defaults import (
    DEFAULT_GLIBC,
    DEFAULT_MACOS,
    DEFAULT_OUTPUT,
    FLAKE_NAME,
    SYSTEMS,
    parse_glibc,
    parse_macos,
    parse_python,
)
from machci.errors import InputError, Location
from machci.files import read_text
from machci.nixhash import parse_sha256
from machci.redaction import redact_unparsed
from machci.untrusted import control_character, url_problem

DEFAULT_INDEX = "https://pypi.org/simple"
# Attribute names an override may set (Nix identifiers, as buildPythonPackage's arguments are).
_NIX_ATTRIBUTE = re.compile(r"[A-Za-z_][A-Za-z0-9_'-]*")
PROVIDERS = ("wheel", "sdist", "nixpkgs")
DEFAULT_PROVIDERS = ("wheel", "sdist")
# machci.yaml's JSON Schema (shipped beside this module) is the one list of its keys; editors
# read it through the `# yaml-language-server: $schema=` line `machci init` writes.
SCHEMA: dict[str, Any] = json.loads(
    resources.files("machci").joinpath("machci.schema.json").read_text(encoding="utf-8")
)
_PROPERTIES: dict[str, Any] = SCHEMA["properties"]
_TOP_KEYS = tuple(_PROPERTIES)
_IMAGE_KEYS = tuple(_PROPERTIES["image"]["properties"])
# The OCI distribution reference grammar (distribution/reference): a name is path components of
# lower-case letters and digits joined by separators, after an optional registry host[:port]/;
# anything else (quotes, `${`) would also break the Nix string default.nix puts it in.
_IMAGE_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_IMAGE_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IMAGE_NAME = re.compile(
    rf"(?:{_IMAGE_DOMAIN_COMPONENT}(?:\.{_IMAGE_DOMAIN_COMPONENT})*(?::[0-9]+)?/)?"
    rf"{_IMAGE_PATH_COMPONENT}(?:/{_IMAGE_PATH_COMPONENT})*"
)
_IMAGE_NAME_MAX = 255  # the longest name registries accept
_IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
# machci.yaml needs a few levels of nesting; the YAML composer recurses once per level, and a
# file nested thousands deep would exhaust Python's stack (and scanning it costs quadratic time).
MAX_YAML_DEPTH = 50
# Aliases let a short file stand for an exponentially large document ("billion laughs"): the
# nodes that aliases stand for, counted as if written out, are bounded.
MAX_YAML_ALIAS_NODES = 10_000
_DATA_KEYS = tuple(_PROPERTIES["data"]["properties"])
SOURCES = tuple(_PROPERTIES["data"]["properties"]["source"]["enum"])
DEFAULT_DEPSDB_REPOSITORY = "DavHau/pypi-deps-db"
_PYPI_KEYS = ("index", "extra-indexes", "snapshot")
_DEPSDB_KEYS = ("repository", "rev", "sha256", "path")
_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_COMMIT = re.compile(r"[0-9a-fA-F]{40}")
_INPUT_KEYS = ("path", "extras", "groups")
_NIXPKGS_KEYS = tuple(_PROPERTIES["nixpkgs"]["properties"])
_EXTRA_KINDS = ("path", "url", "git")
_EXTRA_KEYS = tuple(_PROPERTIES["packagesExtra"]["items"]["properties"])
_OVERRIDE_FORMS = ("add", "mod")
_FLAKE_KEYS = tuple(_PROPERTIES["flake"]["anyOf"][1]["properties"])
_CONSTRAINT_KEYS = ("path",)
METADATA_FAILURES = tuple(_PROPERTIES["metadataFailures"]["enum"])
DEFAULT_FLAKE_NIXPKGS = "github:NixOS/nixpkgs/nixos-unstable"


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
    source: str = "pypi"
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

    name: str = "machci-env"
    tag: str = "latest"
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
    python: str = "3.12"
    systems: tuple[str, ...] = ("x86_64-linux", "aarch64-linux")
    data: DataRevision = DataRevision()
    providers: Providers = Providers()
    output: Path = Path(DEFAULT_OUTPUT)
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
    ignore_collisions: bool = False
    build: bool = True  # false: no sdist's build backend ever runs (see sources/sdist.py)
    packages_extra: tuple[ExtraSource, ...] = ()  # the project itself (`project:`) first
    flake: Flake | None = None  # None: no flake.nix
    r_packages: RPackages | None = None  # None: no R
    build_constraints: tuple[BuildConstraint, ...] = ()
    # "error": a version whose metadata its backend cannot prepare stops the run; "skip": passed
    # over with a warning (at most failures.MAX_SKIPPED_VERSIONS per package).
    metadata_failures: str = "error"
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
        return (self.output, self.flake_output) if self.flake else (self.output,)


# Snapshots before PyPI's upload times begin cannot select anything; later than a day from now
# (clocks differ) they would let files that do not exist yet into a later lock.
OLDEST_SNAPSHOT = datetime(2000, 1, 1, tzinfo=UTC)
SNAPSHOT_CLOCK_SKEW = timedelta(days=1)
# Python keeps microseconds: a seventh digit would be dropped, and the pin would not be exact.
_FRACTION_DIGITS = re.compile(r":\d\d[.,](\d+)")


def format_snapshot(moment: datetime) -> str:
    """RFC 3339 in UTC; fractional seconds only when there are any, so the pin stays exact."""
    moment = moment.astimezone(UTC)
    fraction = f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


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


class _Loader:
    """Validates one parsed YAML document, producing errors with file and line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def at(self, node: object, key: object) -> Location:
        if isinstance(node, CommentedMap):
            try:
                line = node.lc.key(key)[0] + 1
            except (KeyError, TypeError):
                line = node.lc.line + 1
            return Location.of(self.path, line)
        return Location.of(self.path)

    def check_keys(self, node: CommentedMap, allowed: Sequence[str], section: str) -> None:
        for key in node:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise InputError(
                    f"unknown key {section}{key!r}{hint} (known: {', '.join(allowed)})",
                    self.at(node, key),
                )

    def string(self, node: CommentedMap, key: str, section: str = "") -> str:
        value = node[key]
        if isinstance(value, float):
            raise InputError(
                f'{section}{key}: {value!r} was read as a number; quote it, e.g. "3.10"',
                self.at(node, key),
            )
        if not isinstance(value, str):
            raise InputError(
                f"{section}{key}: expected a string, got {value!r}", self.at(node, key)
            )
        return self.without_nul(value, node, key, section)

    def string_list(self, node: CommentedMap, key: str, section: str = "") -> list[str]:
        value = node[key]
        if isinstance(value, str):
            return [self.without_nul(value, node, key, section)]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InputError(
                f"{section}{key}: expected a list of strings, got {value!r}", self.at(node, key)
            )
        return [self.without_nul(v, node, key, section) for v in value]

    def without_nul(self, value: str, node: CommentedMap, key: object, section: str) -> str:
        """A NUL cannot be a file name, a URL or a Nix string: YAML's "\\0" is refused."""
        if "\0" in value:
            raise InputError(
                f"{section}{key}: {value!r} contains a NUL character", self.at(node, key)
            )
        return value

    def name(self, node: CommentedMap, key: object, section: str) -> str:
        """A mapping key that names a package."""
        if "\0" in str(key):
            raise InputError(f"{section}{str(key)!r} contains a NUL character", self.at(node, key))
        return str(key)

    def load(self, document: object) -> Config:
        if document is None:
            document = CommentedMap()
        if not isinstance(document, CommentedMap):
            raise InputError("expected a mapping of settings at the top level", self.at(None, None))
        self.check_keys(document, _TOP_KEYS, "")
        config = Config(path=self.path)
        base = self.path.parent
        changes: dict[str, object] = {}
        if "requirements" in document:
            changes["requirements"] = self.inputs(document, base)
        if "python" in document:
            python = self.string(document, "python")
            try:
                parse_python(python)
            except InputError as exc:
                raise InputError(exc.message, self.at(document, "python")) from None
            changes["python"] = python
        if "systems" in document:
            systems = self.string_list(document, "systems")
            for system in systems:
                if system not in SYSTEMS:
                    close = difflib.get_close_matches(system, SYSTEMS, n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise InputError(
                        f"systems: unknown system {system!r}{hint} (known: {', '.join(SYSTEMS)})",
                        self.at(document, "systems"),
                    )
            if not systems:
                raise InputError("systems: the list is empty", self.at(document, "systems"))
            changes["systems"] = tuple(dict.fromkeys(systems))
        if "data" in document:
            changes["data"] = self.data(document, base)
        if "providers" in document:
            changes["providers"] = self.providers(document)
        output = base / (self.string(document, "output") if "output" in document else config.output)
        changes["output"] = output
        for key, parse in (("glibc", parse_glibc), ("macos", parse_macos)):
            if key in document:
                text = self.string(document, key)
                try:
                    changes[key] = parse(text)
                except InputError as exc:
                    raise InputError(exc.message, self.at(document, key)) from None
        if "image" in document:
            changes["image"] = self.image(document)
        if "ignore-missing-libraries" in document:
            changes["ignore_missing_libraries"] = tuple(
                self.string_list(document, "ignore-missing-libraries")
            )
        if "nixpkgs" in document:
            changes["nixpkgs"] = self.nixpkgs(document, base)
        if "overrides" in document:
            changes["overrides"] = self.overrides(document)
        for key, field_name in (
            ("overridesPre", "overlays_pre"),
            ("overridesPost", "overlays_post"),
        ):
            if key in document:
                changes[field_name] = tuple(base / f for f in self.string_list(document, key))
        if "ignoreCollisions" in document:
            value = document["ignoreCollisions"]
            if not isinstance(value, bool):
                raise InputError(
                    f"ignoreCollisions: expected true or false, got {value!r}",
                    self.at(document, "ignoreCollisions"),
                )
            changes["ignore_collisions"] = value
        if "build" in document:
            value = document["build"]
            if not isinstance(value, bool):
                raise InputError(
                    f"build: expected true or false, got {value!r}", self.at(document, "build")
                )
            changes["build"] = value
        extra = self.packages_extra(document, base)
        if extra:
            changes["packages_extra"] = extra
        if "rPackages" in document:
            changes["r_packages"] = self.r_packages(document)
        if "buildConstraints" in document:
            changes["build_constraints"] = self.build_constraints(document, base)
        if "metadataFailures" in document:
            value = self.string(document, "metadataFailures")
            if value not in METADATA_FAILURES:
                raise InputError(
                    f"metadataFailures: expected {' or '.join(METADATA_FAILURES)}, got {value!r}",
                    self.at(document, "metadataFailures"),
                )
            changes["metadata_failures"] = value
        if "flake" in document:
            changes["flake"] = self.flake(document, extra)
            if changes["flake"] is not None and output.name == FLAKE_NAME:
                raise InputError(
                    f"flake: the output is named {FLAKE_NAME} itself, and the flake goes beside"
                    " it under that name; name the output default.nix",
                    self.at(document, "flake"),
                )
        return config.with_changes(**changes)

    def r_packages(self, document: CommentedMap) -> RPackages:
        node = document["rPackages"]
        names = self.string_list(document, "rPackages")
        for index, name in enumerate(names):
            if not _NIX_ATTRIBUTE.fullmatch(name):
                where = self.at(document, "rPackages")
                if isinstance(node, list) and hasattr(node, "lc"):
                    where = Location.of(self.path, node.lc.item(index)[0] + 1)
                spelled = name.replace(".", "_")
                hint = (
                    f"; nixpkgs spells R's dots as underscores: {spelled}"
                    if _NIX_ATTRIBUTE.fullmatch(spelled)
                    else ""
                )
                raise InputError(
                    f"rPackages: {name!r} is not an attribute name of nixpkgs' rPackages{hint}",
                    where,
                )
        return RPackages(tuple(sorted(set(names))), self.at(document, "rPackages"))

    def build_constraints(self, document: CommentedMap, base: Path) -> tuple[BuildConstraint, ...]:
        """Requirement lines and {path: FILE} entries; the lines are checked here, the files
        when they are read (requirements.read_build_constraints)."""
        node = document["buildConstraints"]
        items = node if isinstance(node, list) else [node]
        found = []
        for index, item in enumerate(items):
            where = self.at(document, "buildConstraints")
            if isinstance(node, list) and hasattr(node, "lc"):
                where = Location.of(self.path, node.lc.item(index)[0] + 1)
            if isinstance(item, str):
                found.append(BuildConstraint(where, line=self.constraint_line(item, where)))
            elif isinstance(item, CommentedMap):
                self.check_keys(item, _CONSTRAINT_KEYS, "buildConstraints: ")
                if "path" not in item:
                    raise InputError("buildConstraints: entry needs a 'path'", where)
                path = self.string(item, "path", "buildConstraints: ")
                found.append(BuildConstraint(self.at(item, "path"), path=base / path))
            else:
                raise InputError(
                    "buildConstraints: expected a requirement such as 'setuptools<70' or a"
                    f" mapping {{path: FILE}}, got {item!r}",
                    where,
                )
        return tuple(found)

    def constraint_line(self, text: str, where: Location) -> str:
        from machci.requirements import check_build_constraint

        if "\0" in text:
            raise InputError(f"buildConstraints: {text!r} contains a NUL character", where)
        return check_build_constraint(text, where, "buildConstraints: ")

    def flake(self, document: CommentedMap, extra: tuple[ExtraSource, ...]) -> Flake | None:
        node = document["flake"]
        if isinstance(node, bool):
            return Flake() if node else None
        if not isinstance(node, CommentedMap):
            raise InputError(
                "flake: expected true, false or a mapping {nixpkgs: FLAKE-REF, app: SCRIPT}",
                self.at(document, "flake"),
            )
        self.check_keys(node, _FLAKE_KEYS, "flake: ")
        nixpkgs = DEFAULT_FLAKE_NIXPKGS
        if "nixpkgs" in node:
            nixpkgs = self.string(node, "nixpkgs", "flake: ")
            if not nixpkgs or any(c.isspace() or not c.isprintable() for c in nixpkgs):
                raise InputError(
                    f"flake: nixpkgs: {nixpkgs!r} is not a flake reference such as"
                    f" {DEFAULT_FLAKE_NIXPKGS!r}",
                    self.at(node, "nixpkgs"),
                )
        app = None
        if "app" in node:
            app = self.string(node, "app", "flake: ")
            if app in ("", ".", "..") or "/" in app or not app.isprintable():
                raise InputError(
                    f"flake: app: {app!r} is not the name of a script", self.at(node, "app")
                )
            if not any(e.project for e in extra):
                raise InputError(
                    "flake: app: only the project's own scripts can be started; set project:",
                    self.at(node, "app"),
                )
        return Flake(nixpkgs, app)

    def packages_extra(self, document: CommentedMap, base: Path) -> tuple[ExtraSource, ...]:
        found: list[ExtraSource] = []
        if "project" in document:
            where = self.at(document, "project")
            path = (base / self.string(document, "project")).resolve()
            found.append(ExtraSource("path", str(path), where, project=True))
        if "packagesExtra" in document:
            items = document["packagesExtra"]
            if not isinstance(items, list):
                raise InputError(
                    "packagesExtra: expected a list of {path|url|git: ...} entries",
                    self.at(document, "packagesExtra"),
                )
            for item in items:
                found.append(self.extra_source(item, document, base))
        return tuple(found)

    def extra_source(self, item: object, document: CommentedMap, base: Path) -> ExtraSource:
        section = "packagesExtra: "
        if not isinstance(item, CommentedMap):
            raise InputError(
                f"packagesExtra: expected a mapping such as {{path: ./src}}, got {item!r}",
                self.at(document, "packagesExtra"),
            )
        self.check_keys(item, _EXTRA_KEYS, section)
        where = self.at(item, next(iter(item), None))
        kinds = [k for k in _EXTRA_KINDS if k in item]
        if len(kinds) != 1:
            raise InputError(
                "packagesExtra: each entry needs exactly one of path (a source tree), url (an"
                " archive) or git (a repository)",
                where,
            )
        kind = kinds[0]
        location = self.string(item, kind, section)
        if kind == "path":
            location = str((base / location).resolve())
        else:
            self._extra_url(kind, location, item)
        if "rev" in item and kind != "git":
            raise InputError("packagesExtra: rev is for git entries only", self.at(item, "rev"))
        requirements = {}
        for key in ("requirements", "requirementsExtra"):
            if key in item:
                requirements[key] = tuple(self.string_list(item, key, section))
                for text in requirements[key]:
                    self._requirement(text, item, key)
        return ExtraSource(
            kind,
            location,
            where,
            # `{path: .}` is the project itself, as `project: .` is.
            project=kind == "path" and Path(location) == base.resolve(),
            rev=self.string(item, "rev", section) if "rev" in item else None,
            extras=tuple(self.string_list(item, "extras", section)) if "extras" in item else (),
            requirements=requirements.get("requirements"),
            requirements_extra=requirements.get("requirementsExtra", ()),
        )

    def _extra_url(self, kind: str, url: str, item: CommentedMap) -> None:
        """An archive URL must be http(s); a git URL may also be ssh, git or a local path, but
        never start with '-' (git would read it as an option) or use git's ext:: transport."""
        if kind == "url" or url.startswith(("http://", "https://")):
            problem = url_problem(url)
        elif url.startswith("-") or "::" in url.split("/", 1)[0]:
            problem = "it is not a repository URL"
        else:
            problem = None
        if problem:
            shown = redact_unparsed(url)
            raise InputError(f"packagesExtra: {kind} {shown!r}: {problem}", self.at(item, kind))

    def _requirement(self, text: str, item: CommentedMap, key: str) -> None:
        from packaging.requirements import InvalidRequirement, Requirement

        try:
            Requirement(text)
        except InvalidRequirement as exc:
            reason = str(exc).splitlines()[0]
            raise InputError(
                f"packagesExtra: {key}: {text!r} is not a requirement ({reason})",
                self.at(item, key),
            ) from None

    def nixpkgs(self, document: CommentedMap, base: Path) -> NixpkgsData:
        node = document["nixpkgs"]
        if not isinstance(node, CommentedMap):
            raise InputError(
                "nixpkgs: expected a mapping {index: FILE} or {path: DIR}",
                self.at(document, "nixpkgs"),
            )
        self.check_keys(node, _NIXPKGS_KEYS, "nixpkgs: ")
        if len(node) != 1:
            raise InputError(
                "nixpkgs: give exactly one of index (a file from `machci nixpkgs-index`)"
                " or path (a nixpkgs tree)",
                self.at(document, "nixpkgs"),
            )
        key = next(iter(node))
        path = base / self.string(node, key, "nixpkgs: ")
        return NixpkgsData(**{key: path})

    def overrides(self, document: CommentedMap) -> tuple[PackageOverride, ...]:
        from packaging.utils import canonicalize_name  # see providers(): check avoids it

        node = document["overrides"]
        if not isinstance(node, CommentedMap):
            raise InputError(
                "overrides: expected a mapping of package names to attribute overrides",
                self.at(document, "overrides"),
            )
        found: dict[str, PackageOverride] = {}
        for package in node:
            section = f"overrides: {package}: "
            attributes = node[package]
            if not isinstance(attributes, CommentedMap):
                raise InputError(
                    f"{section}expected a mapping of attribute names to Nix expressions",
                    self.at(node, package),
                )
            items = []
            for attribute in attributes:
                items.append(self.attribute_override(attributes, str(attribute), section))
            name = canonicalize_name(self.name(node, package, "overrides: "))
            if name in found:
                raise InputError(f"{section}{name} is overridden twice", self.at(node, package))
            found[name] = PackageOverride(name, tuple(items), self.at(node, package))
        return tuple(found[name] for name in sorted(found))

    def attribute_override(
        self, attributes: CommentedMap, attribute: str, section: str
    ) -> AttributeOverride:
        if not _NIX_ATTRIBUTE.fullmatch(attribute):
            raise InputError(
                f"{section}{attribute!r} is not an attribute name", self.at(attributes, attribute)
            )
        value = attributes[attribute]
        where = self.at(attributes, attribute)
        if isinstance(value, CommentedMap):
            if len(value) != 1 or next(iter(value)) not in _OVERRIDE_FORMS:
                raise InputError(
                    f"{section}{attribute}: expected a Nix expression, {{add: EXPR}} or"
                    " {mod: EXPR}",
                    where,
                )
            form = str(next(iter(value)))
            expression = self.string(value, form, f"{section}{attribute}: ")
            return AttributeOverride(attribute, form, expression, self.at(value, form))
        if isinstance(value, bool):
            return AttributeOverride(attribute, "set", "true" if value else "false", where)
        if isinstance(value, int) and not isinstance(value, bool):
            return AttributeOverride(attribute, "set", str(value), where)
        return AttributeOverride(
            attribute, "set", self.string(attributes, attribute, section), where
        )

    def image(self, document: CommentedMap) -> Image:
        node = document["image"]
        if not isinstance(node, CommentedMap):
            raise InputError(
                "image: expected a mapping {name, tag, cmd}", self.at(document, "image")
            )
        self.check_keys(node, _IMAGE_KEYS, "image: ")
        default = Image()
        return Image(
            name=self.image_field(node, "name") if "name" in node else default.name,
            tag=self.image_field(node, "tag") if "tag" in node else default.tag,
            cmd=tuple(self.string_list(node, "cmd", "image: ")) if "cmd" in node else (),
        )

    def image_field(self, node: CommentedMap, key: str) -> str:
        """image.name or image.tag, checked against the OCI reference grammar: what a registry
        accepts, and nothing that could end the Nix string it is written into."""
        value = self.string(node, key, "image: ")
        if key == "name":
            valid = len(value) <= _IMAGE_NAME_MAX and _IMAGE_NAME.fullmatch(value) is not None
            expected = (
                "lower-case letters and digits, with '.', '_', '__' or '-' between them, in"
                " parts separated by '/', optionally after a registry host[:port]/"
            )
        else:
            valid = _IMAGE_TAG.fullmatch(value) is not None
            expected = "up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        if not valid:
            raise InputError(
                f"image: {key}: {value!r} is not an image {key} ({expected})",
                self.at(node, key),
            )
        return value

    def inputs(self, document: CommentedMap, base: Path) -> tuple[RequirementInput, ...]:
        value = document["requirements"]
        items = value if isinstance(value, list) else [value]
        found: list[RequirementInput] = []
        for item in items:
            if isinstance(item, str):
                item = self.without_nul(item, document, "requirements", "")
                found.append(RequirementInput(base / item))
            elif isinstance(item, CommentedMap):
                self.check_keys(item, _INPUT_KEYS, "requirements: ")
                if "path" not in item:
                    raise InputError("requirements: entry needs a 'path'", self.at(item, None))
                selection = next((key for key in ("extras", "groups") if key in item), None)
                if selection and not str(item["path"]).endswith(".toml"):
                    raise InputError(
                        f"requirements: {selection} select parts of a pyproject.toml;"
                        f" {item['path']!r} is a requirements file",
                        self.at(item, selection),
                    )
                found.append(
                    RequirementInput(
                        base / self.string(item, "path", "requirements: "),
                        tuple(self.string_list(item, "extras")) if "extras" in item else (),
                        tuple(self.string_list(item, "groups")) if "groups" in item else (),
                    )
                )
            else:
                raise InputError(
                    f"requirements: expected a file name or a mapping, got {item!r}",
                    self.at(document, "requirements"),
                )
        if not found:
            raise InputError("requirements: the list is empty", self.at(document, "requirements"))
        return tuple(found)

    def data(self, document: CommentedMap, base: Path) -> DataRevision:
        node = document["data"]
        if not isinstance(node, CommentedMap):
            raise InputError("data: expected a mapping", self.at(document, "data"))
        self.check_keys(node, _DATA_KEYS, "data: ")
        source = self.string(node, "source", "data: ") if "source" in node else "pypi"
        if source not in SOURCES:
            raise InputError(
                f"data: source: unknown source {source!r} (known: {', '.join(SOURCES)})",
                self.at(node, "source"),
            )
        other = _DEPSDB_KEYS if source == "pypi" else _PYPI_KEYS
        for key in other:
            if key in node:
                raise InputError(
                    f"data: {key}: not a setting of source {source}"
                    f" (it takes {', '.join(_PYPI_KEYS if source == 'pypi' else _DEPSDB_KEYS)})",
                    self.at(node, key),
                )
        if source == "pypi-deps-db":
            return self.depsdb(node, base)
        index = self.string(node, "index", "data: ").rstrip("/") if "index" in node else None
        extra = tuple(self.string_list(node, "extra-indexes")) if "extra-indexes" in node else ()
        urls = [("index", index)] if index else []
        urls += [("extra-indexes", url) for url in extra]
        for key, url in urls:
            problem = url_problem(url)
            if problem:
                shown = redact_unparsed(url)
                raise InputError(
                    f"data: index URL {shown!r} is not usable: {problem}", self.at(node, key)
                )
        snapshot = None
        if node.get("snapshot") is not None:
            snapshot = parse_snapshot(node["snapshot"], self.at(node, "snapshot"))
        return DataRevision(index=index, extra_indexes=extra, snapshot=snapshot)

    def depsdb(self, node: CommentedMap, base: Path) -> DataRevision:
        """rev and sha256 (mach-nix's pypiDataRev and pypiDataSha256), or a checkout."""
        repository = DEFAULT_DEPSDB_REPOSITORY
        if "repository" in node:
            repository = self.string(node, "repository", "data: ")
            if not _REPOSITORY.fullmatch(repository):
                raise InputError(
                    f"data: repository: {repository!r} is not a GitHub repository OWNER/NAME",
                    self.at(node, "repository"),
                )
        if "path" in node:
            if "rev" in node or "sha256" in node:
                raise InputError(
                    "data: give either path (a checkout of the database) or rev and sha256,"
                    " not both",
                    self.at(node, "rev" if "rev" in node else "sha256"),
                )
            text = self.string(node, "path", "data: ")
            char = control_character(text)
            if char is not None:
                raise InputError(
                    f"data: path: {text!r} contains the control character {char!r}",
                    self.at(node, "path"),
                )
            return DataRevision(source="pypi-deps-db", repository=repository, path=base / text)
        for key in ("rev", "sha256"):
            if key not in node:
                raise InputError(
                    f"data: source pypi-deps-db needs rev and sha256 (mach-nix's pypiDataRev"
                    f" and pypiDataSha256), or path; {key} is missing",
                    self.at(node, "source"),
                )
        rev = self.string(node, "rev", "data: ")
        if not _COMMIT.fullmatch(rev):
            raise InputError(
                f"data: rev: {rev!r} is not a commit id (40 hexadecimal digits)",
                self.at(node, "rev"),
            )
        sha256 = self.string(node, "sha256", "data: ")
        try:
            parse_sha256(sha256)
        except InputError as exc:
            raise InputError(f"data: sha256: {exc.message}", self.at(node, "sha256")) from None
        return DataRevision(
            source="pypi-deps-db", repository=repository, rev=rev.lower(), sha256=sha256
        )

    def providers(self, document: CommentedMap) -> Providers:
        node = document["providers"]
        if not isinstance(node, CommentedMap):
            raise InputError(
                "providers: expected a mapping such as {_default: 'wheel,sdist'}",
                self.at(document, "providers"),
            )
        default: tuple[str, ...] = DEFAULT_PROVIDERS
        per_package: dict[str, tuple[str, ...]] = {}
        for key in node:
            text = self.string(node, key, "providers: ")
            names = parse_providers(text, self.at(node, key))
            if key == "_default":
                default = names
            else:
                # Imported here: packaging.utils pulls in packaging.tags, which `check` avoids.
                from packaging.utils import canonicalize_name

                per_package[canonicalize_name(self.name(node, key, "providers: "))] = names
        return Providers(default, per_package)


def load_config(path: Path) -> Config:
    """Load and validate a machci.yaml file."""
    try:
        text = read_text(path)
    except FileNotFoundError as exc:
        raise InputError(f"config file {str(path)!r} not found") from exc
    try:
        _check_structure(text, path)
        document = YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"invalid YAML: {problem}", Location.of(path, line)) from exc
    return _Loader(path).load(document)


def _check_structure(text: str, path: Path) -> None:
    """Refuse, before anything is built from it, a document nested deeper than MAX_YAML_DEPTH
    or whose aliases stand for more than MAX_YAML_ALIAS_NODES nodes.

    It walks the parser's events, which come without recursion and without expanding aliases,
    and stops at the first event past a bound, so even a hostile file costs little. Anchors and
    aliases are otherwise allowed (sharing an override between two packages is a fair use).
    """
    from ruamel.yaml.events import (
        AliasEvent,
        CollectionEndEvent,
        CollectionStartEvent,
        ScalarEvent,
    )

    anchored: dict[str, int] = {}  # anchor -> nodes under it, itself included
    open_nodes: list[tuple[str | None, list[int]]] = []  # each open collection: anchor, size
    expanded = 0
    for event in YAML(typ="rt").parse(text):
        size = 0
        if isinstance(event, CollectionStartEvent):
            if len(open_nodes) >= MAX_YAML_DEPTH:
                raise InputError(
                    f"YAML nested more than {MAX_YAML_DEPTH} levels deep; machci.yaml needs a few",
                    Location.of(path, event.start_mark.line + 1),
                )
            open_nodes.append((event.anchor, [1]))
        elif isinstance(event, CollectionEndEvent) and open_nodes:
            anchor, (size,) = open_nodes.pop()
            if anchor is not None:
                anchored[anchor] = size
        elif isinstance(event, ScalarEvent):
            size = 1
            if event.anchor is not None:
                anchored[event.anchor] = size
        elif isinstance(event, AliasEvent):
            size = anchored.get(event.anchor, 1)
            expanded += size
            if expanded > MAX_YAML_ALIAS_NODES:
                raise InputError(
                    f"YAML aliases (*{event.anchor}) stand for more than"
                    f" {MAX_YAML_ALIAS_NODES:,} values; write the settings out instead",
                    Location.of(path, event.start_mark.line + 1),
                )
        if size and open_nodes:
            open_nodes[-1][1][0] += size
