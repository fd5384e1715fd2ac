"""Another tool's lock as an input: pylock.toml (PEP 751), uv.lock and poetry.lock.

Each pins packages to a version and to the files it lists. They become requirement lines that
say exactly that (`name==version`, with the lock's sha256 of every file as hashes, so a file
machci picks is always one the lock lists) and the roots to start from: every package of a
pylock.toml, the project's dependencies (and the --extra and --group selected) of a uv.lock or
a poetry.lock. What the lock does not say, an sdist's build system, is resolved as always.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence, Set
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from machci.config.defaults import PYLOCK_NAME
from machci.errors import InputError, Location
from machci.inputs.requirements import RequirementLine, RequirementSet, load_toml

UV_LOCK = "uv.lock"
POETRY_LOCK = "poetry.lock"
UV_LOCK_VERSIONS = (1,)  # uv.lock's `version`; `revision` only adds fields
POETRY_LOCK_VERSIONS = ("1.1", "2.0", "2.1")  # [metadata] lock-version
_HASH = re.compile(r"sha256:([0-9a-fA-F]{64})")

if TYPE_CHECKING:  # imported where a lock is read: most runs read none, and both cost time
    from packaging.pylock import PackageSdist, PackageWheel


def is_lock_input(path: Path) -> bool:
    """Whether an input is a lock machci reads, by its name (as uv and pip decide)."""
    return path.name in (UV_LOCK, POETRY_LOCK) or PYLOCK_NAME.fullmatch(path.name) is not None


def read_lock(path: Path, extras: Sequence[str] = (), groups: Sequence[str] = ()) -> RequirementSet:
    if path.name == UV_LOCK:
        return _UvLock(path).read(extras, groups)
    if path.name == POETRY_LOCK:
        return _PoetryLock(path).read(extras, groups)
    return _read_pylock(path, extras, groups)


# The parts of uv.lock, poetry.lock and a Poetry pyproject.toml that machci reads, and their
# types: checked with jsonschema before anything is read, so a hostile or broken file is one
# error at its entry, never a traceback.
_DEPENDENCIES = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "marker": {"type": "string"},
            "extra": {"type": "array", "items": {"type": "string"}},
        },
    },
}
_UV_LOCK_SCHEMA = {
    "type": "object",
    "properties": {
        "package": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "version": {"type": "string"},
                    "source": {"type": "object"},
                    "dependencies": _DEPENDENCIES,
                    "optional-dependencies": {
                        "type": "object",
                        "additionalProperties": _DEPENDENCIES,
                    },
                    "dev-dependencies": {"type": "object", "additionalProperties": _DEPENDENCIES},
                    "sdist": {"type": "object"},
                    "wheels": {"type": "array", "items": {"type": "object"}},
                    "resolution-markers": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}
_POETRY_LOCK_SCHEMA = {
    "type": "object",
    "properties": {
        "metadata": {"type": "object"},
        "package": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "version": {"type": "string"},
                    "files": {"type": "array", "items": {"type": "object"}},
                    "source": {"type": "object"},
                    "markers": {"type": "string"},
                },
            },
        },
    },
}
_POETRY_DEPENDENCIES = {
    "type": "object",
    "additionalProperties": {
        "anyOf": [
            {"type": ["string", "array"]},
            {
                "type": "object",
                "properties": {
                    "extras": {"type": "array", "items": {"type": "string"}},
                    "markers": {"type": "string"},
                    "optional": {"type": "boolean"},
                },
            },
        ]
    },
}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_POETRY_PYPROJECT_SCHEMA = {
    "type": "object",
    "properties": {
        "project": {
            "type": "object",
            "properties": {
                "dependencies": _STRINGS,
                "optional-dependencies": {"type": "object", "additionalProperties": _STRINGS},
            },
        },
        "tool": {
            "type": "object",
            "properties": {
                "poetry": {
                    "type": "object",
                    "properties": {
                        "dependencies": _POETRY_DEPENDENCIES,
                        "extras": {"type": "object", "additionalProperties": _STRINGS},
                        "group": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "properties": {"dependencies": _POETRY_DEPENDENCIES},
                            },
                        },
                    },
                }
            },
        },
    },
}


def _check_shape(
    data: Mapping[str, Any], schema: Mapping[str, Any], path: Path, entries: _Entries | None
) -> None:
    """The file's error, at the entry it is in (`package[3]…`), when `data` breaks `schema`."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(schema).iter_errors(data))
    if error is None:
        return
    where = list(error.absolute_path)
    line = (
        entries.line(where[1]) if entries and len(where) > 1 and isinstance(where[1], int) else None
    )
    shown = ".".join(str(part) for part in where) or "the file"
    raise InputError(
        f"not a {path.name} machci can read: {shown}: {error.message}", Location.of(path, line)
    )


class _Entries:
    """The lines of a lock's `[[package]]` (or `[[packages]]`) tables, to name an entry's line:
    tomllib keeps no positions, and the tables come in file order."""

    def __init__(self, text: str, table: str) -> None:
        header = re.compile(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]\s*(#.*)?$")
        self.lines = [n for n, line in enumerate(text.splitlines(), 1) if header.match(line)]

    def line(self, index: int) -> int | None:
        return self.lines[index] if index < len(self.lines) else None


def _pin(
    path: Path,
    where: Location,
    name: str,
    version: object,
    hashes: Iterable[str],
    marker: str | None = None,
) -> RequirementLine:
    if not isinstance(version, str) or not version:
        raise InputError(f"{name}: the lock gives no version", where)
    text = f"{name}=={version}" + (f" ; {marker}" if marker else "")
    try:
        requirement = Requirement(text)
    except ValueError as exc:
        raise InputError(f"{name} {version}: not a pin machci can read ({exc})", where) from None
    found = frozenset(hashes)
    if not found:
        raise InputError(f"{name} {version}: the lock lists no file with a sha256 hash", where)
    return RequirementLine(requirement, where, found, origin=path.name)


def _requirement(text: object, where: Location) -> Requirement:
    """A root as the lock or pyproject.toml states it; anything else is the file's error."""
    if not isinstance(text, str):
        raise InputError(f"not a requirement: {text!r}", where)
    try:
        return Requirement(text)
    except ValueError as exc:
        raise InputError(f"{text!r} is not a requirement ({exc})", where) from None


# pylock.toml ---------------------------------------------------------------------------------


def _read_pylock(path: Path, extras: Sequence[str], groups: Sequence[str]) -> RequirementSet:
    text, data = load_toml(path)
    if extras or groups:
        raise InputError(
            "--extra and --group select parts of a pyproject.toml or a uv.lock; a pylock.toml"
            " is read whole",
            Location.of(path),
        )
    entries = _Entries(text, "packages")
    from packaging.pylock import Pylock, PylockUnsupportedVersionError, PylockValidationError

    try:
        document = Pylock.from_dict(data)
    except PylockUnsupportedVersionError as exc:
        raise InputError(f"unsupported lock-version: {exc}", Location.of(path)) from None
    except PylockValidationError as exc:
        # packaging names the entry (`in 'packages[3]'`): point at its table.
        named = re.search(r"'packages\[(\d+)\]", str(exc))
        line = entries.line(int(named.group(1))) if named else None
        raise InputError(f"not a valid pylock.toml: {exc}", Location.of(path, line)) from None
    pins = []
    for index, package in enumerate(document.packages):
        where = Location.of(path, entries.line(index))
        name = str(package.name)
        if package.vcs or package.directory or package.archive:
            raise InputError(
                f"{name}: machci takes a lock's packages from the index; give a package from"
                " a directory, an archive or version control under packagesExtra",
                where,
            )
        marker = str(package.marker) if package.marker is not None else None
        if marker and re.search(r"\b(extras|dependency_groups)\b", marker):
            raise InputError(
                f"{name}: its marker depends on the lock's extras or dependency groups, which"
                " machci does not select from a pylock.toml",
                where,
            )
        files: list[PackageWheel | PackageSdist] = [*(package.wheels or ())]
        if package.sdist is not None:
            files.append(package.sdist)
        hashes = []
        for file in files:
            sha256 = file.hashes.get("sha256")
            if sha256 is None:
                raise InputError(
                    f"{name} {package.version}: {file.name or file.url} has no sha256 hash", where
                )
            hashes.append(sha256.lower())
        pins.append(_pin(path, where, name, str(package.version or ""), hashes, marker))
    return RequirementSet(requirements=tuple(pins), files=(path,))


# uv.lock -------------------------------------------------------------------------------------


def _hashes(package: Mapping[str, Any], files: Iterable[object], where: Location) -> list[str]:
    """The sha256 of each file table (uv.lock's and poetry.lock's `hash = "sha256:…"`)."""
    found = []
    for file in files:
        value = file.get("hash") if isinstance(file, dict) else None
        match = _HASH.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise InputError(
                f"{package['name']} {package.get('version')}: a file without a sha256 hash", where
            )
        found.append(match.group(1).lower())
    return found


class _UvLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.text, self.data = load_toml(path)
        self.entries = _Entries(self.text, "package")

    def read(self, extras: Sequence[str], groups: Sequence[str]) -> RequirementSet:
        _check_shape(self.data, _UV_LOCK_SCHEMA, self.path, self.entries)
        version = self.data.get("version")
        if version not in UV_LOCK_VERSIONS:
            raise InputError(
                f"unsupported uv.lock version {version!r} (machci reads version"
                f" {', '.join(map(str, UV_LOCK_VERSIONS))})",
                Location.of(self.path),
            )
        packages = self.data.get("package", [])
        if not isinstance(packages, list):
            raise InputError("`package` must be a list of tables", Location.of(self.path))
        root: tuple[int, Mapping[str, Any]] | None = None
        constraints = []
        for index, package in enumerate(packages):
            where = Location.of(self.path, self.entries.line(index))
            if not isinstance(package, dict) or not isinstance(package.get("name"), str):
                raise InputError("a [[package]] table without a name", where)
            source = package.get("source", {})
            local = (
                source.get("editable", source.get("virtual")) if isinstance(source, dict) else None
            )
            if local == ".":
                root = (index, package)
                continue
            if not isinstance(source, dict) or "registry" not in source:
                raise InputError(
                    f"{package['name']}: machci takes a lock's packages from the index; give a"
                    " package from a directory, an archive or version control under"
                    " packagesExtra",
                    where,
                )
            constraints.append(self._pin(package, where))
        if root is None:
            raise InputError(
                'no root project in the lock (a package whose source is `editable = "."` or'
                ' `virtual = "."`)',
                Location.of(self.path),
            )
        roots = self._roots(root, extras, groups)
        return RequirementSet(
            requirements=tuple(roots), constraints=tuple(constraints), files=(self.path,)
        )

    def _pin(self, package: Mapping[str, Any], where: Location) -> RequirementLine:
        files = [package.get("sdist")] if package.get("sdist") else []
        hashes = _hashes(package, [*files, *package.get("wheels", [])], where)
        forks = package.get("resolution-markers", [])
        marker = " or ".join(f"({m})" for m in forks) if forks else None
        return _pin(self.path, where, package["name"], package.get("version"), hashes, marker)

    def _roots(
        self, root: tuple[int, Mapping[str, Any]], extras: Sequence[str], groups: Sequence[str]
    ) -> list[RequirementLine]:
        index, package = root
        where = Location.of(self.path, self.entries.line(index))
        entries = list(package.get("dependencies", []))
        for key, selected, label in (
            ("optional-dependencies", extras, "extra"),
            ("dev-dependencies", groups, "group"),
        ):
            table = {canonicalize_name(k): v for k, v in package.get(key, {}).items()}
            for name in selected:
                if canonicalize_name(name) not in table:
                    known = ", ".join(sorted(table)) or "none"
                    raise InputError(
                        f"no {label} {name!r} in the lock's root project (available: {known})",
                        where,
                    )
                entries += table[canonicalize_name(name)]
        roots = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise InputError(
                    f"a dependency of the root project is not a table: {entry!r}", where
                )
            named = entry["name"] + (f"[{','.join(entry['extra'])}]" if entry.get("extra") else "")
            text = named + (f" ; {entry['marker']}" if entry.get("marker") else "")
            roots.append(RequirementLine(_requirement(text, where), where, origin=self.path.name))
        return roots


# poetry.lock ---------------------------------------------------------------------------------


class _PoetryLock:
    """Pins from poetry.lock; roots from the pyproject.toml beside it ([project] dependencies,
    else [tool.poetry.dependencies]; groups from [tool.poetry.group.NAME.dependencies])."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.text, self.data = load_toml(path)
        self.entries = _Entries(self.text, "package")

    def read(self, extras: Sequence[str], groups: Sequence[str]) -> RequirementSet:
        _check_shape(self.data, _POETRY_LOCK_SCHEMA, self.path, self.entries)
        metadata = self.data.get("metadata", {})
        version = metadata.get("lock-version") if isinstance(metadata, dict) else None
        if version not in POETRY_LOCK_VERSIONS:
            raise InputError(
                f"unsupported poetry.lock lock-version {version!r} (machci reads"
                f" {', '.join(POETRY_LOCK_VERSIONS)})",
                Location.of(self.path),
            )
        constraints = []
        for index, package in enumerate(self.data.get("package", [])):
            where = Location.of(self.path, self.entries.line(index))
            if not isinstance(package, dict) or not isinstance(package.get("name"), str):
                raise InputError("a [[package]] table without a name", where)
            if package.get("source", {}).get("type") not in (None, "legacy"):
                raise InputError(
                    f"{package['name']}: machci takes a lock's packages from the index; give"
                    " a package from a directory, an archive or version control under"
                    " packagesExtra",
                    where,
                )
            hashes = _hashes(package, package.get("files", []), where)
            marker = package.get("markers") if isinstance(package.get("markers"), str) else None
            constraints.append(
                _pin(self.path, where, package["name"], package.get("version"), hashes, marker)
            )
        roots = self._roots(extras, groups)
        return RequirementSet(
            requirements=tuple(roots),
            constraints=tuple(constraints),
            files=(self.path, self.path.with_name("pyproject.toml")),
        )

    def _roots(self, extras: Sequence[str], groups: Sequence[str]) -> list[RequirementLine]:
        pyproject = self.path.with_name("pyproject.toml")
        _text, data = load_toml(pyproject)
        _check_shape(data, _POETRY_PYPROJECT_SCHEMA, pyproject, None)
        where = Location.of(pyproject)
        poetry = data.get("tool", {}).get("poetry", {})
        project = data.get("project", {})
        poetry_extras = {
            canonicalize_name(k): {canonicalize_name(n) for n in v}
            for k, v in poetry.get("extras", {}).items()
        }
        # The optional dependencies the selected extras turn on ([tool.poetry.extras]).
        enabled = set().union(*(poetry_extras.get(canonicalize_name(e), set()) for e in extras))
        lines: list[RequirementLine] = []
        if "dependencies" in project:
            for text in project["dependencies"]:
                lines.append(RequirementLine(_requirement(text, where), where, origin=POETRY_LOCK))
        else:
            lines += self._table(poetry.get("dependencies", {}), where, enabled)
        optional = {
            canonicalize_name(k): v for k, v in project.get("optional-dependencies", {}).items()
        }
        for extra in extras:
            key = canonicalize_name(extra)
            if key in optional:
                lines += [
                    RequirementLine(_requirement(t, where), where, origin=POETRY_LOCK)
                    for t in optional[key]
                ]
            elif key not in poetry_extras:
                known = ", ".join(sorted({*optional, *poetry_extras})) or "none"
                raise InputError(f"no extra {extra!r} (available: {known})", where)
        available = {canonicalize_name(k): v for k, v in poetry.get("group", {}).items()}
        for group in groups:
            key = canonicalize_name(group)
            if key not in available:
                known = ", ".join(sorted(available)) or "none"
                raise InputError(f"no Poetry group {group!r} (available: {known})", where)
            lines += self._table(available[key].get("dependencies", {}), where, enabled)
        return lines

    def _table(
        self, table: Mapping[str, Any], where: Location, enabled: Set[str]
    ) -> list[RequirementLine]:
        """[tool.poetry.dependencies]-style entries as roots: their names, extras and markers
        (the lock's pins say the versions). Optional ones only when a selected extra turned
        them on (`enabled`, canonical names)."""
        lines = []
        for name, spec in table.items():
            if canonicalize_name(name) == "python":
                continue
            options = spec if isinstance(spec, dict) else {}
            if options.get("optional") and canonicalize_name(name) not in enabled:
                continue
            text = name + (f"[{','.join(options['extras'])}]" if options.get("extras") else "")
            if options.get("markers"):
                text += f" ; {options['markers']}"
            lines.append(RequirementLine(_requirement(text, where), where, origin=POETRY_LOCK))
        return lines
