"""Loading machci.yaml: parse it with ruamel.yaml within bounds, check it against the schema,
then build the Config with the checks a schema cannot make, each error on its line."""

from __future__ import annotations

import re
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from machci.config.defaults import (
    FLAKE_NAME,
    PYLOCK_NAME,
    parse_glibc,
    parse_macos,
    parse_python,
)
from machci.config.model import (
    DEFAULT_DEPSDB_REPOSITORY,
    DEFAULT_FLAKE_NIXPKGS,
    DEFAULT_PROVIDERS,
    AttributeOverride,
    BuildConstraint,
    Config,
    DataRevision,
    ExtraSource,
    Flake,
    Image,
    NixpkgsData,
    PackageOverride,
    Providers,
    RequirementInput,
    RPackages,
    parse_providers,
    parse_snapshot,
    selects,
)
from machci.config.schema import label, line_of, problems
from machci.errors import InputError, Location
from machci.files import read_text
from machci.hashes import parse_sha256
from machci.redaction import redact_unparsed
from machci.untrusted import control_character, url_problem

# Attribute names an override may set (Nix identifiers, as buildPythonPackage's arguments are).
_NIX_ATTRIBUTE = re.compile(r"[A-Za-z_][A-Za-z0-9_'-]*")
# Which data keys belong to which source: a rule across keys, kept here rather than in the schema.
_PYPI_KEYS = ("index", "extra-indexes", "snapshot")
_DEPSDB_KEYS = ("repository", "rev", "sha256", "path")
_EXTRA_KINDS = ("path", "url", "git")
# machci.yaml needs a few levels of nesting; the YAML composer recurses once per level, and a
# file nested thousands deep would exhaust Python's stack (and scanning it costs quadratic time).
MAX_YAML_DEPTH = 50
# Aliases let a short file stand for an exponentially large document ("billion laughs"): the
# nodes that aliases stand for, counted as if written out, are bounded.
MAX_YAML_ALIAS_NODES = 10_000


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
        output, lock_outputs = self.outputs(base, config.output)
        changes["output"] = output
        changes["lock_outputs"] = lock_outputs
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

    def outputs(self, base: Path, default: Path) -> tuple[Path, tuple[Path, ...]]:
        """The Nix file, and the pylock.toml files beside it: `output` names one file or a
        list of them."""
        value = self.document.get("output", str(default))
        listed = isinstance(value, list)
        nix: list[Path] = []
        locks: list[Path] = []
        for index, name in enumerate(_strings(value)):
            path = base / name
            if not PYLOCK_NAME.fullmatch(path.name):
                nix.append(path)
            elif path in locks:
                at = self.at("output", index) if listed else self.at("output")
                raise InputError(f"output: {name!r} is named twice", at)
            else:
                locks.append(path)
        if len(nix) > 1:
            raise InputError(
                "output: name one Nix file (and any pylock.toml or pylock.NAME.toml files to"
                f" write beside it), not {len(nix)}",
                self.at("output"),
            )
        output = nix[0] if nix else base / default
        for path in locks:
            if path.parent != output.parent:
                raise InputError(
                    f"output: {path.name} goes beside {output.name}, in the same directory",
                    self.at("output"),
                )
        return output, tuple(locks)

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
        """Requirement lines and {path: FILE} entries, as written: both are read as requirements
        with the other inputs (inputs.spec), and errors name these lines."""
        node = self.document["buildConstraints"]
        listed = isinstance(node, list)
        found = []
        for index, item in enumerate(node if listed else [node]):
            at: tuple[str | int, ...] = (
                ("buildConstraints", index) if listed else ("buildConstraints",)
            )
            if isinstance(item, str):
                found.append(BuildConstraint(self.at(*at), line=item))
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
            if selection and not selects(Path(str(item["path"]))):
                raise InputError(
                    f"requirements: {selection} select parts of a pyproject.toml, a uv.lock or a"
                    f" poetry.lock; {str(item['path'])!r} is a requirements file",
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
