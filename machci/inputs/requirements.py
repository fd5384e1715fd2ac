"""Reading requirements: pip requirements files and pyproject.toml (PEP 621, PEP 735).

packaging parses each PEP 508 string; this module handles what pip layers on top of it (includes,
constraints, continuations, comments, options, hashes) because packaging has no parser for the
requirements-file format and pip's is not a public API.
"""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from machci.config.defaults import PYLOCK_NAME
from machci.dists import MAX_REQUIREMENTS_PER_PROJECT
from machci.errors import InputError, Location
from machci.files import read_text
from machci.redaction import redact_unparsed
from machci.untrusted import url_problem

_ENV_VAR = re.compile(r"\$\{([A-Z0-9_]+)\}")
_HASH = re.compile(r"^sha256:([0-9a-fA-F]{64})$")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_VCS_SCHEMES = ("git+", "hg+", "svn+", "bzr+")
_T = TypeVar("_T")
# -r/-c includes and [dependency-groups] include-group chains: real projects nest a few levels;
# the readers recurse once per level, and Python's stack would give out in the hundreds.
MAX_INCLUDE_DEPTH = 100
# Lock files of other tools: they are no requirements file, and reading one as such would find
# nothing or nonsense. (PEP 751's are pylock.toml and pylock.NAME.toml.)
_LOCK_FILE_NAMES = frozenset({"uv.lock", "poetry.lock", "pdm.lock", "Pipfile.lock"})
# Top-level keys of those lock files' TOML, to recognise one under another name.
_LOCK_FILE_KEYS = frozenset({"package", "packages", "lock-version"})
_TOML_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"|\'([^\'\n]*)\'')

# Options pip accepts that cannot change what machci locks, or that machci cannot honour. Each
# maps to the reason given when it appears, so nothing is silently ignored.
_UNSUPPORTED_OPTIONS = {
    "-e": "editable installs cannot be pinned; list the package by name or as name @ URL",
    "--editable": "editable installs cannot be pinned; list the package by name or as name @ URL",
    "-f": "--find-links is not supported; serve the files from an index",
    "--find-links": "--find-links is not supported; serve the files from an index",
    "--no-index": "--no-index is not supported: machci resolves against an index",
    "--no-binary": "--no-binary is not supported; use per-package providers ('pkg: sdist')",
    "--only-binary": "--only-binary is not supported; use per-package providers ('pkg: wheel')",
    "--prefer-binary": "--prefer-binary is not needed: providers already order wheels first",
    "--global-option": "--global-option is not supported",
    "--config-settings": "--config-settings is not supported",
    "--use-feature": "--use-feature is not supported",
}
# Options without a value; --require-hashes changes nothing here (hashes are always checked).
_FLAG_OPTIONS = {"--pre", "--require-hashes"}
# Options with a value; --trusted-host has no effect on what is locked.
_VALUE_OPTIONS = {
    "-r",
    "--requirement",
    "-c",
    "--constraint",
    "-i",
    "--index-url",
    "--extra-index-url",
    "--trusted-host",
}


@dataclass(frozen=True)
class RequirementLine:
    """One requirement with where it came from and the hashes it was pinned to (if any)."""

    requirement: Requirement
    location: Location
    hashes: frozenset[str] = frozenset()
    # The machci.yaml key that asked for it, for a requirement no requirements file states.
    origin: str | None = None

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)

    def __str__(self) -> str:
        return f"{self.requirement} (from {self.location})"


@dataclass(frozen=True)
class RequirementSet:
    """Everything read from the requirement inputs, in file order."""

    requirements: tuple[RequirementLine, ...] = ()
    constraints: tuple[RequirementLine, ...] = ()
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    pre: bool = False
    files: tuple[Path, ...] = ()

    def merged(self, other: RequirementSet) -> RequirementSet:
        if self.index_url and other.index_url and self.index_url != other.index_url:
            raise InputError(
                f"conflicting --index-url options: {self.index_url} and {other.index_url}"
            )
        return RequirementSet(
            requirements=self.requirements + other.requirements,
            constraints=self.constraints + other.constraints,
            index_url=self.index_url or other.index_url,
            extra_index_urls=_unique(self.extra_index_urls + other.extra_index_urls),
            pre=self.pre or other.pre,
            files=_unique(self.files + other.files),
        )


def _unique(items: Iterable[_T]) -> tuple[_T, ...]:
    return tuple(dict.fromkeys(items))


@dataclass
class _Builder:
    requirements: list[RequirementLine] = field(default_factory=list)
    constraints: list[RequirementLine] = field(default_factory=list)
    index_url: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    pre: bool = False
    files: list[Path] = field(default_factory=list)

    def freeze(self) -> RequirementSet:
        return RequirementSet(
            tuple(self.requirements),
            tuple(self.constraints),
            self.index_url,
            _unique(self.extra_index_urls),
            self.pre,
            _unique(self.files),
        )


def _strip_comment(line: str) -> str:
    """The line without its comment: from a `#` at its start or after whitespace, with that
    whitespace. A scan, not a regular expression: `\\s+#` backtracks quadratically over a long
    run of spaces."""
    at = line.find("#")
    while at > 0 and not line[at - 1].isspace():
        at = line.find("#", at + 1)
    return line if at < 0 else line[:at].rstrip()


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield (first line number, line): continuations joined, comments dropped."""
    start: int | None = None
    parts: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if start is None:
            start = number
        line = _strip_comment(raw)
        if line.endswith("\\") and not raw.lstrip().startswith("#"):
            parts.append(line[:-1])
            continue
        parts.append(line)
        joined = " ".join(p.strip() for p in parts).strip()
        if joined:
            yield start, joined
        start, parts = None, []
    if parts:
        joined = " ".join(p.strip() for p in parts).strip()
        if joined and start is not None:
            yield start, joined


def _expand_env(text: str) -> str:
    # pip expands ${VAR} (upper case, digits, underscore) in requirements files; unset stays as is.
    return _ENV_VAR.sub(lambda m: os.environ.get(m.group(1), m.group(0)), text)


def _split_options(line: str, where: Location) -> tuple[str, list[str]]:
    """Split a line into its requirement part and its trailing options (starting at ' -')."""
    if line.startswith("-"):
        return "", _shlex(line, where)
    match = re.search(r"\s--?[a-zA-Z]", line)
    if not match:
        return line, []
    return line[: match.start()].strip(), _shlex(line[match.start() :], where)


def _shlex(text: str, where: Location) -> list[str]:
    try:
        return shlex.split(text, comments=False)
    except ValueError as exc:
        raise InputError(f"cannot split options: {exc}", where) from exc


def _option_value(tokens: list[str], i: int, where: Location) -> tuple[str, str, int]:
    """Return (option, value, next index) for `--opt value`, `--opt=value` or `-ovalue`."""
    token = tokens[i]
    if token.startswith("--") and "=" in token:
        option, value = token.split("=", 1)
        return option, value, i + 1
    if not token.startswith("--") and len(token) > 2:
        return token[:2], token[2:].lstrip("="), i + 1
    if i + 1 >= len(tokens):
        raise InputError(f"option {token} needs a value", where)
    return token, tokens[i + 1], i + 2


def _parse_hashes(tokens: list[str], where: Location) -> frozenset[str]:
    hashes: set[str] = set()
    i = 0
    while i < len(tokens):
        option, value, i = _option_value(tokens, i, where)
        if option != "--hash":
            raise InputError(f"option {option} is not allowed after a requirement", where)
        match = _HASH.match(value)
        if not match:
            raise InputError(f"invalid --hash {value!r}: expected sha256:<64 hex digits>", where)
        hashes.add(match.group(1).lower())
    return frozenset(hashes)


def _parse_requirement(text: str, where: Location) -> Requirement:
    """Parse a PEP 508 line, or a bare wheel/sdist URL whose name comes from its file name."""
    if "://" in text and "@" not in text.split("://", 1)[0]:
        text = _named_url(text, where)
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        detail = str(exc).splitlines()[0]
        raise InputError(f"invalid requirement {text!r}: {detail}", where) from exc
    if requirement.url:
        _check_url(requirement.url, where)
    return requirement


def _named_url(text: str, where: Location) -> str:
    url, _, marker = text.partition(" ;")  # pip needs whitespace before a URL's marker
    url = url.strip()
    _check_url(url, where)
    filename = urlsplit(url).path.rsplit("/", 1)[-1]
    try:
        name = (
            parse_wheel_filename(filename)[0]
            if filename.endswith(".whl")
            else parse_sdist_filename(filename)[0]
        )
    except (InvalidWheelFilename, InvalidSdistFilename) as exc:
        raise InputError(
            f"cannot tell the package name of {url!r}; write it as name @ URL", where
        ) from exc
    return f"{name} @ {url}" + (f" ; {marker.strip()}" if marker else "")


def _check_url(url: str, where: Location) -> None:
    if url.startswith(_VCS_SCHEMES):
        raise InputError(
            f"VCS requirement {url!r} cannot be pinned by sha256;"
            " use name @ <archive URL>#sha256=…",
            where,
        )
    scheme, colon, _rest = url.partition(":")  # urlsplit would raise on a broken host
    if not colon or scheme.lower() not in ("http", "https"):
        shown = redact_unparsed(url)
        raise InputError(
            f"direct reference {shown!r} is not an http(s) URL; local paths cannot be pinned",
            where,
        )
    problem = url_problem(url)
    if problem:
        shown = redact_unparsed(url)
        raise InputError(f"direct reference {shown!r} is not a usable URL: {problem}", where)
    fragment = urlsplit(url).fragment
    if fragment.startswith("sha256=") and not _SHA256.fullmatch(fragment[len("sha256=") :]):
        raise InputError(
            f"direct reference {url!r}: expected #sha256=<64 hex digits> after the URL", where
        )


class _FileReader:
    """Reads one requirements file tree, following -r/-c includes and rejecting cycles."""

    def __init__(self) -> None:
        self.out = _Builder()
        self.stack: list[Path] = []

    def read(self, path: Path, *, constraint: bool, included_from: Location | None) -> None:
        try:
            resolved = path.resolve()
        except (RuntimeError, OSError):  # a symlink loop: reading it says so below
            resolved = path.absolute()
        if resolved in self.stack:
            cycle = " -> ".join(str(p) for p in [*self.stack[self.stack.index(resolved) :], path])
            raise InputError(f"include cycle: {cycle}", included_from)
        if len(self.stack) >= MAX_INCLUDE_DEPTH:
            raise InputError(
                f"-r/-c includes nested more than {MAX_INCLUDE_DEPTH} files deep", included_from
            )
        _refuse_lock_file(path, included_from)
        try:
            text = read_text(path).removeprefix("\ufeff")  # a byte order mark, as pip allows
        except FileNotFoundError as exc:
            raise InputError(f"requirements file {str(path)!r} not found", included_from) from exc
        if _looks_like_lock_file(text):
            _refuse_lock_file(path, included_from, by_name=False)
        self.out.files.append(path)
        self.stack.append(resolved)
        for number, line in _logical_lines(text):
            self._line(path, number, _expand_env(line), constraint=constraint)
        self.stack.pop()

    def _line(self, path: Path, number: int, line: str, *, constraint: bool) -> None:
        where = Location.of(path, number)
        text, tokens = _split_options(line, where)
        if text:
            requirement = _parse_requirement(text, where)
            entry = RequirementLine(requirement, where, _parse_hashes(tokens, where))
            (self.out.constraints if constraint else self.out.requirements).append(entry)
            return
        i = 0
        while i < len(tokens):
            token = tokens[i]
            name = token.split("=", 1)[0] if token.startswith("--") else token[:2]
            if name in _UNSUPPORTED_OPTIONS:
                raise InputError(_UNSUPPORTED_OPTIONS[name], where)
            if name in _FLAG_OPTIONS:
                self.out.pre = self.out.pre or name == "--pre"
                i += 1
                continue
            if name not in _VALUE_OPTIONS:
                raise InputError(f"unknown option {name}", where)
            option, value, i = _option_value(tokens, i, where)
            if option in ("-r", "--requirement", "-c", "--constraint"):
                nested_constraint = constraint or option in ("-c", "--constraint")
                self.read(path.parent / value, constraint=nested_constraint, included_from=where)
            elif option in ("-i", "--index-url"):
                if self.out.index_url and self.out.index_url != value:
                    raise InputError(f"a second --index-url {value!r}", where)
                self.out.index_url = _index_url(option, value, where)
            elif option == "--extra-index-url":
                self.out.extra_index_urls.append(_index_url(option, value, where))


def _index_url(option: str, value: str, where: Location) -> str:
    problem = url_problem(value)
    if problem:
        shown = redact_unparsed(value)
        raise InputError(f"{option} {shown!r} is not an index URL: {problem}", where)
    return value


def _refuse_lock_file(path: Path, included_from: Location | None, *, by_name: bool = True) -> None:
    """Refuse another tool's lock file (by its name, or with by_name=False unconditionally, when
    its content showed it to be one): it pins a whole environment in a format of its own."""
    if by_name and path.name not in _LOCK_FILE_NAMES and not PYLOCK_NAME.fullmatch(path.name):
        return
    subject = str(path) if included_from else "it"
    readable = path.name in ("uv.lock", "poetry.lock") or PYLOCK_NAME.fullmatch(path.name)
    if readable and included_from is not None:
        raise InputError(
            f"{subject} is a lock file; machci reads it as an input of its own (-r, or"
            " requirements: in machci.yaml), not included from a requirements file",
            included_from,
        )
    raise InputError(
        f"{subject} is a lock file; machci reads pylock.toml, pylock.NAME.toml, uv.lock and"
        " poetry.lock as inputs by those names, not other lock files or other names (give the"
        " lock under its own name, or the requirements it was made from)",
        included_from or Location.of(path),
    )


def _looks_like_lock_file(text: str) -> bool:
    """Whether a file read as a requirements file is TOML with a lock file's top-level keys.
    A requirements file fails to parse as TOML at its first requirement, so this is cheap."""
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError):
        return False
    return bool(_LOCK_FILE_KEYS & data.keys())


def read_requirements_file(path: Path) -> RequirementSet:
    reader = _FileReader()
    reader.read(path, constraint=False, included_from=None)
    return reader.out.freeze()


def _toml_lines(text: str) -> dict[str, int]:
    """Best-effort lines of the strings in a TOML file (tomllib keeps no positions): the first
    line each quoted string (as written, without escapes) appears on. Built in one pass, so
    locating every dependency of a long list costs linear time."""
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        for match in _TOML_STRING.finditer(line):
            lines.setdefault(
                match.group(1) if match.group(1) is not None else match.group(2), number
            )
    return lines


def load_toml(path: Path) -> tuple[str, dict[str, Any]]:
    """The text and the data of a TOML input, every failure an InputError naming the file."""
    try:
        text = read_text(path)
        return text, tomllib.loads(text)
    except FileNotFoundError as exc:
        raise InputError(f"{str(path)!r} not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"invalid TOML: {exc}", Location.of(path)) from exc
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise InputError(
            "invalid TOML: arrays or inline tables nested too deeply to read",
            Location.of(path, _deepest_line(text)),
        ) from None


def _deepest_line(text: str) -> int | None:
    """Best effort: the line where brackets outside quoted strings and comments nest deepest."""
    depth = deepest = 0
    where = None
    for number, line in enumerate(text.splitlines(), start=1):
        line = _TOML_STRING.sub("", line).partition("#")[0]
        for char in line:
            depth += char in "[{"
            depth -= char in "]}"
            if depth > deepest:
                deepest, where = depth, number
    return where


def read_pyproject(
    path: Path, extras: Sequence[str] = (), groups: Sequence[str] = ()
) -> RequirementSet:
    """[project].dependencies, the selected optional-dependencies and PEP 735 groups."""
    _refuse_lock_file(path, None)
    text, data = load_toml(path)
    positions = _toml_lines(text)

    def lines(strings: object, table: str) -> list[RequirementLine]:
        if not isinstance(strings, list) or not all(isinstance(s, str) for s in strings):
            raise InputError(f"{table} must be a list of strings", Location.of(path))
        out = []
        for value in strings:
            where = Location.of(path, positions.get(value))
            out.append(RequirementLine(_parse_requirement(value, where), where))
        return out

    if "project" not in data:
        if _LOCK_FILE_KEYS & data.keys():
            _refuse_lock_file(path, None, by_name=False)
        if not groups:  # PEP 735 groups need no [project]: a file of them alone is fine
            raise InputError(
                "no [project] table: machci reads a pyproject.toml's [project].dependencies"
                " (PEP 621) and [dependency-groups] (PEP 735, with --group)",
                Location.of(path),
            )
    project = data.get("project", {})
    if not isinstance(project, dict):
        raise InputError("[project] must be a table", Location.of(path))
    dynamic = project.get("dynamic", [])
    if isinstance(dynamic, list) and "dependencies" in dynamic:
        raise InputError(
            "[project].dependencies is dynamic (computed by the build backend); machci reads"
            " only static dependencies: list them, or give a requirements file",
            Location.of(path, positions.get("dependencies")),
        )
    found = lines(project.get("dependencies", []), "[project].dependencies")
    optional = project.get("optional-dependencies", {})
    if not isinstance(optional, dict):
        raise InputError("[project.optional-dependencies] must be a table", Location.of(path))
    available = {canonicalize_name(k): v for k, v in optional.items()}
    for extra in extras:
        key = canonicalize_name(extra)
        if key not in available:
            known = ", ".join(sorted(available)) or "none"
            raise InputError(
                f"no optional-dependencies group {extra!r} (available: {known})",
                Location.of(path),
            )
        found += lines(available[key], f"[project.optional-dependencies].{extra}")
    dependency_groups = data.get("dependency-groups", {})
    if not isinstance(dependency_groups, dict):
        raise InputError("[dependency-groups] must be a table", Location.of(path))
    for group in groups:
        found += _dependency_group(path, text, dependency_groups, group, [], lines)
    return RequirementSet(requirements=tuple(found), files=(path,))


def _dependency_group(
    path: Path,
    text: str,
    table: dict[str, object],
    group: str,
    seen: list[str],
    lines: Callable[[object, str], list[RequirementLine]],
) -> list[RequirementLine]:
    groups = {canonicalize_name(k): v for k, v in table.items()}
    key = canonicalize_name(group)
    if key in seen:
        cycle = " -> ".join([*seen[seen.index(key) :], key])
        raise InputError(f"[dependency-groups] include cycle: {cycle}", Location.of(path))
    if len(seen) >= MAX_INCLUDE_DEPTH:
        raise InputError(
            f"[dependency-groups] include-group nested more than {MAX_INCLUDE_DEPTH} groups deep",
            Location.of(path),
        )
    if key not in groups:
        known = ", ".join(sorted(groups)) or "none"
        raise InputError(f"no dependency group {group!r} (available: {known})", Location.of(path))
    entries = groups[key]
    if not isinstance(entries, list):
        raise InputError(f"[dependency-groups].{group} must be a list", Location.of(path))
    found: list[RequirementLine] = []
    for entry in entries:
        if isinstance(entry, dict) and set(entry) == {"include-group"}:
            included = str(entry["include-group"])
            found += _dependency_group(path, text, table, included, [*seen, key], lines)
        elif isinstance(entry, str):
            found += lines([entry], f"[dependency-groups].{group}")
        else:
            raise InputError(
                f"[dependency-groups].{group}: unsupported entry {entry!r}", Location.of(path)
            )
    return found


def check_build_constraint(text: str, where: Location, prefix: str = "") -> str:
    """A build constraint, normalised: a name with a version specifier (and a marker), as in
    pip's and uv's build constraints, which restrict versions and never add a package."""
    requirement = _parse_requirement(text, where)
    if requirement.url:
        raise InputError(
            f"{prefix}{text!r}: a build constraint restricts versions; it cannot name a URL",
            where,
        )
    if requirement.extras:
        raise InputError(
            f"{prefix}{text!r}: a build constraint restricts versions; it cannot name extras"
            f" (write {canonicalize_name(requirement.name)}{requirement.specifier})",
            where,
        )
    return str(requirement)


def read_build_constraints(path: Path, named_at: Location) -> RequirementSet:
    """A build constraints file: requirement lines (constraints all) and -c/-r includes,
    nothing that sets an index or hashes."""
    if not os.path.lexists(path):
        raise InputError(f"build constraints file {str(path)!r} not found", named_at)
    reader = _FileReader()
    try:
        reader.read(path, constraint=True, included_from=named_at)
    except RuntimeError as exc:  # pathlib's resolve() on a symbolic link loop
        raise InputError(f"cannot read a build constraints file: {exc}", named_at) from exc
    found = reader.out.freeze()
    if found.index_url or found.extra_index_urls or found.pre:
        raise InputError(
            "a build constraints file holds requirement lines only; index options and --pre"
            " belong in the requirements",
            Location.of(path),
        )
    for line in (*found.requirements, *found.constraints):
        if line.hashes:
            raise InputError(
                f"{line.requirement}: a build constraint restricts versions; --hash pins files",
                line.location,
            )
        check_build_constraint(str(line.requirement), line.location)
    return found


def check_counts(requirements: RequirementSet) -> None:
    """Refuse more than MAX_REQUIREMENTS_PER_PROJECT requirements (or constraints) on one
    project, naming the line of the first one too many."""
    for kind, lines in (
        ("requirements", requirements.requirements),
        ("constraints", requirements.constraints),
    ):
        counts: dict[str, int] = {}
        for line in lines:
            counts[line.name] = counts.get(line.name, 0) + 1
            if counts[line.name] > MAX_REQUIREMENTS_PER_PROJECT:
                raise InputError(
                    f"more than {MAX_REQUIREMENTS_PER_PROJECT:,} {kind} on {line.name}; the"
                    f" resolver checks each against every other, so machci refuses so many:"
                    " merge them",
                    line.location,
                )
