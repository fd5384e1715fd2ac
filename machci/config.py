"""machci.yaml: the Config it describes, and loading it (ruamel.yaml, then the schema, then
the checks a schema cannot make), with errors that point at the line.

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

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from machci.defaults import (
    DEFAULT_GLIBC,
    DEFAULT_MACOS,
    DEFAULT_OUTPUT,
    FLAKE_NAME,
    parse_glibc,
    parse_macos,
    parse_python,
)
from machci.errors import InputError, Location
from machci.files import read_text
from machci.nixhash import parse_sha256
from machci.redaction import redact_unparsed
from machci.schema import PROPERTIES, label, line_of, problems
from machci.untrusted import control_character, url_problem


def _default(*keys: str) -> Any:
    """A default as machci.schema.json gives it (the schema is the one place defaults live)."""
    node: Any = PROPERTIES
    for key in keys[:-1]:
        branches = node[key].get("anyOf", [node[key]])  # flake: true, false or a mapping
        node = next(branch["properties"] for branch in branches if "properties" in branch)
    return node[keys[-1]]["default"]


DEFAULT_INDEX: str = _default("data", "index")
# Attribute names an override may set (Nix identifiers, as buildPythonPackage's arguments are).
_NIX_ATTRIBUTE = re.compile(r"[A-Za-z_][A-Za-z0-9_'-]*")
PROVIDERS = ("wheel", "sdist", "nixpkgs")
DEFAULT_PROVIDERS = tuple(_default("providers")["_default"].split(","))
# machci.yaml needs a few levels of nesting; the YAML composer recurses once per level, and a
# file nested thousands deep would exhaust Python's stack (and scanning it costs quadratic time).
MAX_YAML_DEPTH = 50
# Aliases let a short file stand for an exponentially large document ("billion laughs"): the
# nodes that aliases stand for, counted as if written out, are bounded.
MAX_YAML_ALIAS_NODES = 10_000
SOURCES = tuple(PROPERTIES["data"]["properties"]["source"]["enum"])
DEFAULT_DEPSDB_REPOSITORY: str = _default("data", "repository")
# Which data keys belong to which source: a rule across keys, kept here rather than in the schema.
_PYPI_KEYS = ("index", "extra-indexes", "snapshot")
_DEPSDB_KEYS = ("repository", "rev", "sha256", "path")
_EXTRA_KINDS = ("path", "url", "git")
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
    )  # false: no sdist's build backend ever runs (see sources/sdist.py)
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
    """Builds a Config from a parsed document the schema has accepted: what is left is what a
    schema cannot say (paths relative to machci.yaml, Nix and requirement syntax, URLs, times,
    rules across keys), each error on its line."""

    def __init__(self, path: Path, document: CommentedMap) -> None:
        self.path = path
        self.document = document

    def at(self, *path: str | int) -> Location:
        return Location.of(self.path, line_of(self.document, path))

    def load(self) -> Config:
        document = self.document
        config = Config(path=self.path)
        base = self.path.parent
        changes: dict[str, object] = {}
        if "requirements" in document:
            changes["requirements"] = self.inputs(base)
        if "python" in document:
            try:
                parse_python(str(document["python"]))
            except InputError as exc:
                raise InputError(exc.message, self.at("python")) from None
            changes["python"] = str(document["python"])
        if "systems" in document:
            changes["systems"] = tuple(dict.fromkeys(_strings(document["systems"])))
        if "data" in document:
            changes["data"] = self.data(document["data"], base)
        if "providers" in document:
            changes["providers"] = self.providers(document["providers"])
        output = base / str(document.get("output", config.output))
        changes["output"] = output
        for key, parse in (("glibc", parse_glibc), ("macos", parse_macos)):
            if key in document:
                try:
                    changes[key] = parse(str(document[key]))
                except InputError as exc:
                    raise InputError(exc.message, self.at(key)) from None
        if "image" in document:
            node = document["image"]
            default = Image()
            changes["image"] = Image(
                name=str(node.get("name", default.name)),
                tag=str(node.get("tag", default.tag)),
                cmd=tuple(_strings(node.get("cmd", []))),
            )
        if "ignore-missing-libraries" in document:
            changes["ignore_missing_libraries"] = tuple(
                _strings(document["ignore-missing-libraries"])
            )
        if "nixpkgs" in document:
            ((key, value),) = document["nixpkgs"].items()
            changes["nixpkgs"] = NixpkgsData(**{key: base / str(value)})
        if "overrides" in document:
            changes["overrides"] = self.overrides(document["overrides"])
        for key, field_name in (
            ("overridesPre", "overlays_pre"),
            ("overridesPost", "overlays_post"),
        ):
            if key in document:
                changes[field_name] = tuple(base / f for f in _strings(document[key]))
        for key, field_name in (("ignoreCollisions", "ignore_collisions"), ("build", "build")):
            if key in document:
                changes[field_name] = bool(document[key])
        extra = self.packages_extra(base)
        if extra:
            changes["packages_extra"] = extra
        if "rPackages" in document:
            changes["r_packages"] = self.r_packages()
        if "buildConstraints" in document:
            changes["build_constraints"] = self.build_constraints(base)
        if "metadataFailures" in document:
            changes["metadata_failures"] = str(document["metadataFailures"])
        if "flake" in document:
            changes["flake"] = self.flake(document["flake"], extra)
            if changes["flake"] is not None and output.name == FLAKE_NAME:
                raise InputError(
                    f"flake: the output is named {FLAKE_NAME} itself, and the flake goes beside"
                    " it under that name; name the output default.nix",
                    self.at("flake"),
                )
        return config.with_changes(**changes)

    def r_packages(self) -> RPackages:
        names = _strings(self.document["rPackages"])
        listed = isinstance(self.document["rPackages"], list)
        for index, name in enumerate(names):
            if not _NIX_ATTRIBUTE.fullmatch(name):
                spelled = name.replace(".", "_")
                hint = (
                    f"; nixpkgs spells R's dots as underscores: {spelled}"
                    if _NIX_ATTRIBUTE.fullmatch(spelled)
                    else ""
                )
                raise InputError(
                    f"rPackages: {name!r} is not an attribute name of nixpkgs' rPackages{hint}",
                    self.at("rPackages", index) if listed else self.at("rPackages"),
                )
        return RPackages(tuple(sorted(set(names))), self.at("rPackages"))

    def build_constraints(self, base: Path) -> tuple[BuildConstraint, ...]:
        """Requirement lines and {path: FILE} entries; the lines are checked here, the files
        when they are read (requirements.read_build_constraints)."""
        from machci.requirements import check_build_constraint

        node = self.document["buildConstraints"]
        listed = isinstance(node, list)
        found = []
        for index, item in enumerate(node if listed else [node]):
            at: tuple[str | int, ...] = (
                ("buildConstraints", index) if listed else ("buildConstraints",)
            )
            if isinstance(item, str):
                line = check_build_constraint(item, self.at(*at), "buildConstraints: ")
                found.append(BuildConstraint(self.at(*at), line=line))
            else:
                found.append(BuildConstraint(self.at(*at, "path"), path=base / str(item["path"])))
        return tuple(found)

    def flake(self, node: object, extra: tuple[ExtraSource, ...]) -> Flake | None:
        if not isinstance(node, CommentedMap):
            return Flake() if node else None
        nixpkgs = str(node.get("nixpkgs", DEFAULT_FLAKE_NIXPKGS))
        if not nixpkgs or any(c.isspace() or not c.isprintable() for c in nixpkgs):
            raise InputError(
                f"flake: nixpkgs: {nixpkgs!r} is not a flake reference such as"
                f" {DEFAULT_FLAKE_NIXPKGS!r}",
                self.at("flake", "nixpkgs"),
            )
        app = None
        if "app" in node:
            app = str(node["app"])
            if app in ("", ".", "..") or "/" in app or not app.isprintable():
                raise InputError(
                    f"flake: app: {app!r} is not the name of a script", self.at("flake", "app")
                )
            if not any(e.project for e in extra):
                raise InputError(
                    "flake: app: only the project's own scripts can be started; set project:",
                    self.at("flake", "app"),
                )
        return Flake(nixpkgs, app)

    def packages_extra(self, base: Path) -> tuple[ExtraSource, ...]:
        found: list[ExtraSource] = []
        if "project" in self.document:
            path = (base / str(self.document["project"])).resolve()
            found.append(ExtraSource("path", str(path), self.at("project"), project=True))
        for index, item in enumerate(self.document.get("packagesExtra", [])):
            found.append(self.extra_source(item, index, base))
        return tuple(found)

    def extra_source(self, item: CommentedMap, index: int, base: Path) -> ExtraSource:
        kind = next(k for k in _EXTRA_KINDS if k in item)
        at = ("packagesExtra", index)
        location = str(item[kind])
        if kind == "path":
            location = str((base / location).resolve())
        else:
            self._extra_url(kind, location, self.at(*at, kind))
        if "rev" in item and kind != "git":
            raise InputError("packagesExtra: rev is for git entries only", self.at(*at, "rev"))
        requirements = {}
        for key in ("requirements", "requirementsExtra"):
            if key in item:
                requirements[key] = tuple(_strings(item[key]))
                for text in requirements[key]:
                    self._requirement(text, key, self.at(*at, key))
        return ExtraSource(
            kind,
            location,
            self.at(*at, next(iter(item))),
            # `{path: .}` is the project itself, as `project: .` is.
            project=kind == "path" and Path(location) == base.resolve(),
            rev=str(item["rev"]) if "rev" in item else None,
            extras=tuple(_strings(item.get("extras", []))),
            requirements=requirements.get("requirements"),
            requirements_extra=requirements.get("requirementsExtra", ()),
        )

    def _extra_url(self, kind: str, url: str, where: Location) -> None:
        """An archive URL must be http(s); a git URL may also be ssh, git or a local path, but
        never start with '-' (git would read it as an option) or use git's ext:: transport."""
        if kind == "url" or url.startswith(("http://", "https://")):
            problem = url_problem(url)
        elif url.startswith("-") or "::" in url.split("/", 1)[0]:
            problem = "it is not a repository URL"
        else:
            problem = None
        if problem:
            raise InputError(f"packagesExtra: {kind} {redact_unparsed(url)!r}: {problem}", where)

    def _requirement(self, text: str, key: str, where: Location) -> None:
        from packaging.requirements import InvalidRequirement, Requirement

        try:
            Requirement(text)
        except InvalidRequirement as exc:
            reason = str(exc).splitlines()[0]
            raise InputError(
                f"packagesExtra: {key}: {text!r} is not a requirement ({reason})", where
            ) from None

    def overrides(self, node: CommentedMap) -> tuple[PackageOverride, ...]:
        from packaging.utils import canonicalize_name  # see providers(): check avoids it

        found: dict[str, PackageOverride] = {}
        for package, attributes in node.items():
            items = tuple(
                self.attribute_override(str(package), str(attribute), value)
                for attribute, value in attributes.items()
            )
            name = canonicalize_name(str(package))
            if name in found:
                raise InputError(
                    f"overrides: {package}: {name} is overridden twice",
                    self.at("overrides", package),
                )
            found[name] = PackageOverride(name, items, self.at("overrides", package))
        return tuple(found[name] for name in sorted(found))

    def attribute_override(self, package: str, attribute: str, value: object) -> AttributeOverride:
        where = self.at("overrides", package, attribute)
        if isinstance(value, CommentedMap):
            ((form, expression),) = value.items()
            return AttributeOverride(
                attribute,
                str(form),
                str(expression),
                self.at("overrides", package, attribute, form),
            )
        if isinstance(value, (bool, ScalarBoolean)):
            return AttributeOverride(attribute, "set", "true" if value else "false", where)
        return AttributeOverride(attribute, "set", str(value), where)

    def inputs(self, base: Path) -> tuple[RequirementInput, ...]:
        value = self.document["requirements"]
        listed = isinstance(value, list)
        found: list[RequirementInput] = []
        for index, item in enumerate(value if listed else [value]):
            if isinstance(item, str):
                found.append(RequirementInput(base / item))
                continue
            at: tuple[str | int, ...] = ("requirements", index) if listed else ("requirements",)
            selection = next((key for key in ("extras", "groups") if key in item), None)
            if selection and not str(item["path"]).endswith(".toml"):
                raise InputError(
                    f"requirements: {selection} select parts of a pyproject.toml;"
                    f" {str(item['path'])!r} is a requirements file",
                    self.at(*at, selection),
                )
            found.append(
                RequirementInput(
                    base / str(item["path"]),
                    tuple(_strings(item.get("extras", []))),
                    tuple(_strings(item.get("groups", []))),
                )
            )
        return tuple(found)

    def data(self, node: CommentedMap, base: Path) -> DataRevision:
        source = str(node.get("source", DataRevision.source))
        other = _DEPSDB_KEYS if source == "pypi" else _PYPI_KEYS
        for key in other:
            if key in node:
                raise InputError(
                    f"data: {key}: not a setting of source {source}"
                    f" (it takes {', '.join(_PYPI_KEYS if source == 'pypi' else _DEPSDB_KEYS)})",
                    self.at("data", key),
                )
        if source == "pypi-deps-db":
            return self.depsdb(node, base)
        index = str(node["index"]).rstrip("/") if "index" in node else None
        extra = tuple(_strings(node.get("extra-indexes", [])))
        urls = [("index", index)] if index else []
        urls += [("extra-indexes", url) for url in extra]
        for key, url in urls:
            problem = url_problem(url)
            if problem:
                shown = redact_unparsed(url)
                raise InputError(
                    f"data: index URL {shown!r} is not usable: {problem}", self.at("data", key)
                )
        snapshot = None
        if node.get("snapshot") is not None:
            snapshot = parse_snapshot(node["snapshot"], self.at("data", "snapshot"))
        return DataRevision(index=index, extra_indexes=extra, snapshot=snapshot)

    def depsdb(self, node: CommentedMap, base: Path) -> DataRevision:
        """rev and sha256 (mach-nix's pypiDataRev and pypiDataSha256), or a checkout."""
        repository = str(node.get("repository", DEFAULT_DEPSDB_REPOSITORY))
        if "path" in node:
            if "rev" in node or "sha256" in node:
                raise InputError(
                    "data: give either path (a checkout of the database) or rev and sha256,"
                    " not both",
                    self.at("data", "rev" if "rev" in node else "sha256"),
                )
            text = str(node["path"])
            char = control_character(text)
            if char is not None:
                raise InputError(
                    f"data: path: {text!r} contains the control character {char!r}",
                    self.at("data", "path"),
                )
            return DataRevision(source="pypi-deps-db", repository=repository, path=base / text)
        for key in ("rev", "sha256"):
            if key not in node:
                raise InputError(
                    f"data: source pypi-deps-db needs rev and sha256 (mach-nix's pypiDataRev"
                    f" and pypiDataSha256), or path; {key} is missing",
                    self.at("data", "source"),
                )
        sha256 = str(node["sha256"])
        try:
            parse_sha256(sha256)
        except InputError as exc:
            raise InputError(f"data: sha256: {exc.message}", self.at("data", "sha256")) from None
        return DataRevision(
            source="pypi-deps-db",
            repository=repository,
            rev=str(node["rev"]).lower(),
            sha256=sha256,
        )

    def providers(self, node: CommentedMap) -> Providers:
        default: tuple[str, ...] = DEFAULT_PROVIDERS
        per_package: dict[str, tuple[str, ...]] = {}
        for key, text in node.items():
            names = parse_providers(str(text), self.at("providers", key))
            if key == "_default":
                default = names
            else:
                # Imported here: packaging.utils pulls in packaging.tags, which `check` avoids.
                from packaging.utils import canonicalize_name

                per_package[canonicalize_name(str(key))] = names
        return Providers(default, per_package)


def _strings(value: object) -> list[str]:
    """A string or a list of strings (the schema's stringList), as a list."""
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _refuse_nul(document: object, path: Path) -> None:
    """No key or value holds a NUL (YAML's "\\0"): no file name, URL or Nix string can."""

    def walk(node: object, at: tuple[str | int, ...]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, str) and "\0" in key:
                    refuse(key, at, (*at, key))
                walk(value, (*at, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*at, index))
        elif isinstance(node, str) and "\0" in node:
            refuse(node, at, at)

    def refuse(text: str, at: tuple[str | int, ...], line_at: tuple[str | int, ...]) -> None:
        raise InputError(
            f"{label(at)}{text!r} contains a NUL character",
            Location.of(path, line_of(document, line_at)),
        )

    walk(document, ())


def load_config(path: Path) -> Config:
    """Load machci.yaml: parse it, check it against the schema, then build the Config."""
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
    if document is None:  # an empty file: every default
        document = CommentedMap()
    _refuse_nul(document, path)
    first = min(problems(document), key=lambda p: line_of(document, p.path) or 0, default=None)
    if first is not None:
        raise InputError(first.message, Location.of(path, line_of(document, first.path)))
    return _Loader(path, document).load()


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
