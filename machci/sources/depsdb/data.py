"""pypi-deps-db's JSON read into machci's files and metadata (no I/O).

Three tables, each split into buckets `XX.json`, XX the first two hex digits of the sha256 of
the key `name.replace("_", "-").lower()` (dots are kept, unlike PEP 503 names):

- the URL index (nix-pypi-fetcher-2's `pypi/`): key → version → `{"sdist": [sha256, filename],
  "wheels": {filename: [sha256, python tag]}}`, sha256 in base64; URLs are built from these;
- `wheel/`: key → python tag → version → filename → `{requires_dist, provides_extras,
  requires_python}`, or the string "version@filename" of another entry of the same python tag;
- `sdist/`: key → version → pyver ("27", "310") → `{install_requires, setup_requires,
  extras_require, python_requires}` as setup.py gave them on that Python; a string names
  another pyver of the same version, and a whole version may be the string of another version.

Everything in them is data to check: entries of the wrong shape are left out, and metadata that
does not parse is InvalidMetadata, as for an index.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from machci.backends.sdist import DEFAULT_BUILD_REQUIRES
from machci.dists import (
    DistFile,
    DistMetadata,
    InvalidMetadata,
    classify,
    parse_requirement_strings,
    parse_requires_python,
)

FILES_URL = "https://files.pythonhosted.org/packages"
# A canonical name has lost the dots of names such as `zope.interface`; with this many dashes
# or fewer, every way of spelling them as dots is tried (2**4 keys at most).
_MAX_SPELLED_DASHES = 4
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]*")  # nothing a URL path must escape
_PYTHON_TAG = re.compile(r"[A-Za-z0-9._]+")
_EXTRA = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")

Entry = Mapping[str, object]


def table_key(name: str) -> str:
    return name.replace("_", "-").lower()


def bucket_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:2]


def keys_for(name: NormalizedName) -> list[str]:
    """The keys a project may be stored under, most likely first: the canonical name, then the
    same with dots for some of its dashes."""
    parts = name.split("-")
    if len(parts) - 1 > _MAX_SPELLED_DASHES:
        return [name, name.replace("-", ".")]
    spellings = itertools.product("-.", repeat=len(parts) - 1)
    return [
        parts[0] + "".join(sep + part for sep, part in zip(seps, parts[1:], strict=True))
        for seps in spellings
    ]


def python_key(python: str) -> str:
    """The tables' key of a CPython X.Y: "3.12" → "312"."""
    return python.replace(".", "")


def python_label(key: str) -> str:
    """ "310" → "3.10": a key's first digit is the major version."""
    return f"{key[:1]}.{key[1:]}"


@dataclass(frozen=True)
class Project:
    """One project as the tables hold it, for the files the resolver may ask about."""

    key: str
    files: tuple[DistFile, ...]
    wheels: Mapping[str, Entry]  # file name -> wheel entry (references followed)
    sdists: Mapping[Version, Entry]  # version -> pyver -> release or reference


def read_project(
    name: NormalizedName, key: str, urls: object, wheel: object, sdist: object
) -> Project:
    """The files of `urls` (the URL index's entry) that the dependency tables have data for."""
    wheels = wheel_entries(wheel)
    sdists = sdist_entries(sdist)
    files: list[DistFile] = []
    for version_text, release in _items(urls):
        if not isinstance(release, Mapping):
            continue
        sdist_pin = release.get("sdist")
        if isinstance(sdist_pin, list) and len(sdist_pin) == 2:
            file = _file(name, key, "source", sdist_pin[1], sdist_pin[0], version_text)
            if file is not None and file.version in sdists:
                files.append(file)
        for filename, pin in _items(release.get("wheels")):
            if filename in wheels and isinstance(pin, list) and len(pin) == 2:
                python_tag = pin[1]
                if isinstance(python_tag, str) and _PYTHON_TAG.fullmatch(python_tag):
                    file = _file(name, key, python_tag, filename, pin[0], version_text)
                    if file is not None:
                        python = _requires_python(wheels[filename])
                        files.append(dataclasses.replace(file, requires_python=python))
    return Project(key, tuple(files), wheels, sdists)


def _items(value: object) -> list[tuple[str, object]]:
    if not isinstance(value, Mapping):
        return []
    return [(k, v) for k, v in value.items() if isinstance(k, str)]


def _file(
    name: NormalizedName, key: str, folder: str, filename: object, sha256: object, version: str
) -> DistFile | None:
    """A file of the URL index, if its name, version and hash are usable."""
    if not isinstance(filename, str) or not _FILENAME.fullmatch(filename):
        return None
    parsed = classify(filename)
    digest = hex_sha256(sha256)
    if parsed is None or digest is None:
        return None
    file_name, file_version, kind, tags = parsed
    try:
        same_version = file_version == Version(version)
    except InvalidVersion:
        return None
    if file_name != name or not same_version or (kind == "sdist") != (folder == "source"):
        return None
    url = f"{FILES_URL}/{folder}/{key[0]}/{key}/{filename}"
    return DistFile(name, file_version, kind, filename, url, digest, tags)


def _requires_python(entry: Entry) -> SpecifierSet | None:
    value = entry.get("requires_python")
    return parse_requires_python(value.strip(",") if isinstance(value, str) else None)


def hex_sha256(value: object) -> str | None:
    """The URL index's sha256 (base64; hex is taken too) as the hex machci pins files by."""
    if not isinstance(value, str):
        return None
    if _HEX_SHA256.fullmatch(value):
        return value
    try:
        digest = base64.b64decode(value, validate=True)
    except binascii.Error:
        return None
    return digest.hex() if len(digest) == 32 else None


def wheel_entries(wheel: object) -> dict[str, Entry]:
    """File name → entry, with "version@filename" references followed (within their tag)."""
    found: dict[str, Entry] = {}
    for _tag, versions in _items(wheel):
        if not isinstance(versions, Mapping):
            continue
        for _version, files in _items(versions):
            for filename, entry in _items(files):
                if isinstance(entry, str):
                    version, _, target = entry.partition("@")
                    same_tag = versions.get(version)
                    entry = same_tag.get(target) if isinstance(same_tag, Mapping) else None
                if isinstance(entry, Mapping):
                    found[filename] = entry
    return found


def sdist_entries(sdist: object) -> dict[Version, Entry]:
    """Version → its pyver entries, with references to other versions followed."""
    found: dict[Version, Entry] = {}
    versions = sdist if isinstance(sdist, Mapping) else {}
    for version_text, pyvers in _items(versions):
        if isinstance(pyvers, str):
            pyvers = versions.get(pyvers)
        if not isinstance(pyvers, Mapping):
            continue
        try:
            found.setdefault(Version(version_text), pyvers)
        except InvalidVersion:
            continue
    return found


def sdist_release(pyvers: Entry, pyver: str) -> Entry | None:
    release = pyvers.get(pyver)
    if isinstance(release, str):
        release = pyvers.get(release)
    return release if isinstance(release, Mapping) else None


def wheel_metadata(file: DistFile, entry: Entry) -> DistMetadata:
    return DistMetadata(
        name=file.name,
        version=file.version,
        requires_dist=tuple(_strings(entry, "requires_dist")),
        requires_python=_requires_python(entry),
        provides_extra=frozenset(canonicalize_name(e) for e in _strings(entry, "provides_extras")),
    )


def sdist_metadata(file: DistFile, pyvers: Entry, pyver: str) -> DistMetadata:
    """What setup.py declared on the target's Python; InvalidMetadata when the table has no
    data for that Python (naming the ones it has)."""
    release = sdist_release(pyvers, pyver)
    if release is None:
        have = sorted((k for k in pyvers if sdist_release(pyvers, k) is not None), key=int_key)
        covered = ", ".join(python_label(k) for k in have) or "none"
        raise InvalidMetadata(
            f"pypi-deps-db has no sdist data of {file.name} for Python {python_label(pyver)}"
            f" (it has data for Python {covered})"
        )
    requires = _lines(release.get("install_requires"), "install_requires")
    extras: set[NormalizedName] = set()
    for key, value in _items(release.get("extras_require")):
        extra, _, marker = key.partition(":")
        extra = extra.strip()
        if extra and not _EXTRA.fullmatch(extra):
            raise InvalidMetadata(f"invalid extra name {extra!r}")
        if extra:
            extras.add(canonicalize_name(extra))
        condition = " and ".join(
            ([f"({marker.strip()})"] if marker.strip() else [])
            + ([f'extra == "{extra}"'] if extra else [])
        )
        requires += [_with_condition(line, condition) for line in _lines(value, key)]
    python_requires = _lines(release.get("python_requires"), "python_requires")
    python = ",".join(s.strip(",") for s in python_requires)
    setup = _lines(release.get("setup_requires"), "setup_requires")
    return DistMetadata(
        name=file.name,
        version=file.version,
        requires_dist=tuple(requires),
        requires_python=parse_requires_python(python),
        provides_extra=frozenset(extras),
        build_requires=parse_requirement_strings([*DEFAULT_BUILD_REQUIRES, *setup]),
    )


def int_key(pyver: str) -> int:
    return int(pyver) if pyver.isdigit() else -1


def _strings(entry: Entry, field: str) -> list[str]:
    value = entry.get(field)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidMetadata(f"pypi-deps-db's {field} is not a list of strings")
    return value


def _lines(value: object, field: str) -> list[str]:
    """A setup.py list of requirements: strings, each of which may hold several lines
    (setuptools accepts that), without blank lines and comments."""
    items = [value] if isinstance(value, str) else value
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise InvalidMetadata(f"pypi-deps-db's {field} is not a list of strings")
    lines = (line.strip() for item in items for line in item.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _with_condition(line: str, condition: str) -> str:
    """A requirement restricted further by a marker (an extra, or extras_require's
    ":marker" key), its own marker kept."""
    if not condition:
        return line
    try:
        requirement = Requirement(line)
    except InvalidRequirement as exc:
        raise InvalidMetadata(f"invalid requirement {line!r}") from exc
    own = requirement.marker
    requirement.marker = None
    return f"{requirement}; ({own}) and {condition}" if own else f"{requirement}; {condition}"
