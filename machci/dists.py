"""Distribution files and their core metadata, as plain values (no I/O).

File names, tags and metadata fields are parsed with packaging; the index-specific parts live in
sources/pypi/snapshot.py.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload
from urllib.parse import urldefrag, urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, parse_tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from machci.errors import SourceError

# The resolver checks each requirement on a project against every other one on it, each time
# one is added, so many of them on one project cost quadratic time. No real metadata or
# requirements file comes near this (identical Requires-Dist entries count once).
MAX_REQUIREMENTS_PER_PROJECT = 1000
# Kinds of DistFile that are not index files: packagesExtra's sources (sources/trees/extra.py).
SOURCE_KINDS = frozenset({"path", "url", "git"})
# What is built from source, so its build requirements are resolved too.
BUILT_FROM_SOURCE = SOURCE_KINDS | {"sdist"}


class InvalidMetadata(ValueError):
    """Metadata that cannot be used; the candidate is skipped, as pip and uv do."""


class MetadataFailure(InvalidMetadata):
    """An sdist whose metadata its build backend could not prepare (the hook failed or timed
    out, or its build requirements could not be installed). Unlike a broken file, this is an
    error unless skipping such versions was asked for (resolve/provider.py): passing over them
    quietly walks back to ever older releases. `tail`: the last lines of the backend's output;
    `build_requires`: the sdist's static build requirements."""

    def __init__(
        self, reason: str, tail: tuple[str, ...] = (), build_requires: tuple[str, ...] = ()
    ) -> None:
        super().__init__(reason)
        self.tail = tail
        self.build_requires = build_requires


_Owner = TypeVar("_Owner")
_Value = TypeVar("_Value")


@dataclass(frozen=True, slots=True)
class DistFile:
    """One file an index offers for a project."""

    name: NormalizedName
    version: Version
    kind: str  # "wheel" | "sdist"
    filename: str
    url: str
    sha256: str | None
    # Both follow from the fields compared: leaving them out of hashing keeps candidates cheap
    # to put in sets and dicts, which the resolver does all the time.
    tags: frozenset[Tag] = dataclasses.field(default=frozenset(), compare=False)
    requires_python: SpecifierSet | None = dataclasses.field(default=None, compare=False)
    yanked: str | None = None  # None = not yanked; otherwise the reason ("" if none given)
    metadata_sha256: str | None = None  # PEP 658/714 .metadata next to the file
    has_metadata_file: bool = False
    # What the index says of the file (PEP 700), for lock files that record it.
    size: int | None = dataclasses.field(default=None, compare=False)
    upload_time: str | None = dataclasses.field(default=None, compare=False)  # RFC 3339, UTC


class computed_once(Generic[_Owner, _Value]):
    """functools.cached_property without its lock.

    On Python 3.11 cached_property holds one lock per attribute for every instance of the class,
    so threads reading different pages' or metadata's values wait on each other. Computing a
    value twice in a race is harmless here (the same answer), so no lock is taken.
    """

    def __init__(self, compute: Callable[[_Owner], _Value]) -> None:
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__

    @overload
    def __get__(self, instance: None, owner: type[_Owner]) -> computed_once[_Owner, _Value]: ...
    @overload
    def __get__(self, instance: _Owner, owner: type[_Owner]) -> _Value: ...
    def __get__(
        self, instance: _Owner | None, owner: type[_Owner]
    ) -> _Value | computed_once[_Owner, _Value]:
        if instance is None:
            return self
        cache = instance.__dict__
        try:
            return cache[self.name]  # type: ignore[no-any-return]
        except KeyError:
            value = cache[self.name] = self.compute(instance)
            return value


class Release:
    """One version's files of one kind.

    From a cached listing, a release is its line of text (sources/pypi/pages.py): the version,
    a tab, and its files' index entries, which `read` checks and turns into files. The version
    is parsed and the files built only when asked: a resolution looks at the newest few
    versions of each project, whose pages list hundreds (an airflow-sized lock keeps some
    57,000 files, and reads about a thousand of them). Computing either twice in a race gives
    the same answer, so no lock is taken.
    """

    __slots__ = ("_files", "_line", "_read", "_version")

    def __init__(self, line: str, read: Callable[[str], tuple[DistFile, ...]]) -> None:
        self._line = line
        self._read = read
        self._version: Version | None = None
        self._files: tuple[DistFile, ...] | None = None

    @classmethod
    def of(cls, version: Version, files: tuple[DistFile, ...]) -> Release:
        release = cls("", _no_entries)
        release._version = version
        release._files = files
        return release

    @property
    def version(self) -> Version:
        if self._version is None:
            text, tab, _files = self._line.partition("\t")
            try:
                self._version = parse_version(text)
            except InvalidVersion:
                raise damaged_listing() from None
            if not tab:
                raise damaged_listing()
        return self._version

    @property
    def files(self) -> tuple[DistFile, ...]:
        if self._files is None:
            self._files = self._read(self._line.partition("\t")[2])
        return self._files


class ListedReleases(Sequence[Release]):
    """One kind's releases of a cached listing, newest first, each made when first reached and
    then shared by every target: a listing holds a line for each of hundreds of versions per
    page (55,000 on an airflow lock), and resolutions reach about 1,600 of them."""

    __slots__ = ("_lines", "_made", "_read")

    def __init__(self, lines: Sequence[str], read: Callable[[str], tuple[DistFile, ...]]) -> None:
        self._lines = lines
        self._read = read
        self._made: list[Release | None] = [None] * len(lines)

    def __len__(self) -> int:
        return len(self._lines)

    @overload
    def __getitem__(self, index: int) -> Release: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Release, ...]: ...
    def __getitem__(self, index: int | slice) -> Release | tuple[Release, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        release = self._made[index]
        if release is None:  # made twice in a race: the same release either way
            release = self._made[index] = Release(self._lines[index], self._read)
        return release

    def __iter__(self) -> Iterator[Release]:
        for index in range(len(self._lines)):
            yield self[index]


def _no_entries(_text: str) -> tuple[DistFile, ...]:
    return ()


def damaged_listing() -> SourceError:
    return SourceError(
        "a cached index listing is damaged; run again with a fresh cache (--cache-dir)"
    )


def releases_of(files: Iterable[DistFile]) -> dict[str, tuple[Release, ...]]:
    """Per kind, each version's files, newest version first."""
    grouped: dict[tuple[str, Version], list[DistFile]] = {}
    for file in files:
        grouped.setdefault((file.kind, file.version), []).append(file)
    by_kind: dict[str, list[Release]] = {}
    for (kind, version), found in grouped.items():
        by_kind.setdefault(kind, []).append(Release.of(version, tuple(found)))
    return {
        kind: tuple(sorted(found, key=lambda release: release.version, reverse=True))
        for kind, found in by_kind.items()
    }


@dataclass(frozen=True, eq=False)
class ProjectFiles:
    """A project's files as of the snapshot, plus what the snapshot hid (for diagnostics)."""

    name: NormalizedName
    index: str | None  # None: no index knows the project
    # Per kind, each version's files, newest version first: grouped and ordered once per page
    # (when its listing is made), not once per target or run.
    releases: Mapping[str, Sequence[Release]]
    newer_than_snapshot: int = 0
    without_upload_time: int = 0

    @classmethod
    def of(
        cls,
        name: NormalizedName,
        index: str | None,
        files: Iterable[DistFile],
        newer_than_snapshot: int = 0,
        without_upload_time: int = 0,
    ) -> ProjectFiles:
        return cls(name, index, releases_of(files), newer_than_snapshot, without_upload_time)

    @computed_once
    def files(self) -> tuple[DistFile, ...]:
        """Every file, building those of versions no resolution looked at: for diagnostics."""
        return tuple(self._files_where(lambda _version: True))

    def files_of(self, version: Version) -> list[DistFile]:
        """The files of one version, of every kind."""
        return list(self._files_where(version.__eq__))

    def _files_where(self, wanted: Callable[[Version], bool]) -> Iterator[DistFile]:
        for releases in self.releases.values():
            for release in releases:
                if wanted(release.version):
                    yield from release.files


def classify(filename: str) -> tuple[NormalizedName, Version, str, frozenset[Tag]] | None:
    """Name, version, kind and tags from a file name; None for files machci cannot use."""
    try:
        if filename.endswith(".whl"):
            return _wheel(filename)
        if filename.endswith((".tar.gz", ".zip")):  # the sdist formats packaging accepts
            name, version = parse_sdist_filename(filename)
            return name, version, "sdist", frozenset()
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return None


def _wheel(filename: str) -> tuple[NormalizedName, Version, str, frozenset[Tag]]:
    """packaging's reading of a wheel file name, its tags read once per triple: a page's
    wheels share a few triples, and reading each file's again was a sixth of reducing a page.
    The name, version and build are read from the name with a fixed triple instead."""
    head, *triple = filename[:-4].rsplit("-", 3)
    if len(triple) != 3:
        raise InvalidWheelFilename(f"wrong number of parts: {filename!r}")
    name, version, _build, _any = parse_wheel_filename(f"{head}-py3-none-any.whl")
    try:
        tags = _tags("-".join(triple))
    except ValueError as exc:  # packaging's InvalidTag, as parse_wheel_filename turns it
        raise InvalidWheelFilename(f"invalid tag component: {filename!r}") from exc
    return name, version, "wheel", tags


@functools.lru_cache(maxsize=4096)
def parse_requires_python(text: str | None) -> SpecifierSet | None:
    # Memoised: a page repeats a handful of values over thousands of files.
    if not text or not text.strip():
        return None
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return None  # an unparseable Requires-Python excludes nothing, as in pip


@functools.lru_cache(maxsize=8192)
def parse_version(text: str) -> Version:
    """A Version, memoised: a page and a lock repeat each version across files."""
    return Version(text)


_NO_TAGS: frozenset[Tag] = frozenset()  # each frozenset() is a new object of 216 bytes


@functools.lru_cache(maxsize=8192)
def _tags(triple: str) -> frozenset[Tag]:
    return parse_tag(triple)


def dist_file(
    name: str,
    version: str,
    kind: str,
    filename: str,
    url: str,
    sha256: str | None,
    tag_triple: str,
    requires_python: str | None,
    yanked: str | None,
    metadata_sha256: str | None,
    has_metadata_file: bool,
    size: int | None = None,
    upload_time: str | None = None,
) -> DistFile:
    """A DistFile from parts already checked and split (see sources/pypi/pages.py). Versions, tags
    and Requires-Python recur across a page's files: each is parsed once. The project's name and
    the kind recur too: JSON reading makes a string of each for every file (tens of thousands on
    a large lock), so they are interned, as an sdist's empty tags are shared."""
    return DistFile(
        NormalizedName(sys.intern(name)),
        parse_version(version),
        sys.intern(kind),
        filename,
        url,
        sha256,
        _tags(tag_triple) if tag_triple else _NO_TAGS,
        parse_requires_python(requires_python),
        yanked,
        metadata_sha256,
        has_metadata_file,
        size,
        upload_time,
    )


def _only_for_extras(text: str) -> frozenset[NormalizedName] | None:
    """The extras a Requires-Dist entry can apply for, when it applies only for some: None if it
    may apply to the package without extras.

    Such entries (test and docs dependencies, one per extra of packages with dozens of extras)
    are most of many packages' lists; they are left unparsed until one of their extras is
    requested. That is when the marker is a conjunction (no `or`) with a term
    `extra == "name"`, which no package without that extra satisfies; anything else
    (`extra != "test"` holds for the base package) is always parsed. The names are read from
    the marker as written: a name also quoted elsewhere in it only keeps an entry more often.
    """
    marker = text.partition(";")[2]
    masked = _QUOTED.sub(_placeholder, marker)  # words in strings do not count
    if _OR.search(masked) is not None or _EXTRA_IS.search(masked) is None:
        return None
    return frozenset(canonicalize_name("".join(q)) for q in _EXTRA_NAME.findall(marker))


def _placeholder(quoted: re.Match[str]) -> str:
    return '""' if len(quoted.group()) == 2 else '"x"'


_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
_EXTRA_IS = re.compile(r'\bextra\s*==\s*"x"|"x"\s*==\s*extra\b')
_OR = re.compile(r"\bor\b")
_EXTRA_NAME = re.compile(
    r"""\bextra\s*==\s*(?:"([^"]*)"|'([^']*)')|(?:"([^"]*)"|'([^']*)')\s*==\s*extra\b"""
)


@dataclass(frozen=True)
class DistMetadata:
    """What resolution needs from a distribution's core metadata."""

    name: NormalizedName
    version: Version
    requires_dist: tuple[str, ...]  # as written; parsed on demand by `requirements`
    requires_python: SpecifierSet | None
    provides_extra: frozenset[NormalizedName]
    dynamic: frozenset[str] = frozenset()
    build_requires: tuple[Requirement, ...] = ()
    build_needs: tuple[str, ...] = ()  # of an sdist: what nixpkgs' plain builder lacks, sorted
    # (label, url) pairs as written: a bump links each change's release notes from them.
    project_urls: tuple[tuple[str, str], ...] = ()

    @computed_once
    def _for_extras(self) -> tuple[frozenset[NormalizedName] | None, ...]:
        return tuple(map(_only_for_extras, self.requires_dist))

    @computed_once
    def _base_requirements(self) -> tuple[Requirement, ...]:
        return self._parsed(frozenset())

    def requirements(self, extras: Collection[str] = ()) -> tuple[Requirement, ...]:
        """Parsed Requires-Dist: the entries that may apply to the package with `extras`
        (normalized names; none: the package itself).

        Raises InvalidMetadata for such an entry that does not parse.
        """
        if not extras:
            return self._base_requirements
        key = frozenset(extras)
        found = self._with_extras.get(key)
        if found is None:
            found = self._with_extras[key] = self._parsed(key)
        return found

    @computed_once
    def _with_extras(self) -> dict[frozenset[str], tuple[Requirement, ...]]:
        return {}

    def _parsed(self, extras: frozenset[str]) -> tuple[Requirement, ...]:
        return parse_requirement_strings(
            [
                text
                for text, only in zip(self.requires_dist, self._for_extras, strict=True)
                if only is None or not only.isdisjoint(extras)
            ]
        )

    def with_build(self, requires: tuple[Requirement, ...], needs: tuple[str, ...]) -> DistMetadata:
        return dataclasses.replace(self, build_requires=requires, build_needs=needs)


def _headers(data: bytes | str) -> bytes | str:
    """The header block of a metadata file, without the long description that may follow.

    The body can be tens of kilobytes of README; the email parser would walk all of it.
    """
    if isinstance(data, bytes):
        data = data.replace(b"\r\n", b"\n")
        return data.split(b"\n\n", 1)[0] + b"\n"
    data = data.replace("\r\n", "\n")
    return data.split("\n\n", 1)[0] + "\n"


_FIELDS = {
    "metadata-version": "metadata_version",
    "name": "name",
    "version": "version",
    "requires-dist": "requires_dist",
    "requires-python": "requires_python",
    "provides-extra": "provides_extra",
    "dynamic": "dynamic",
    "project-url": "project_urls",
}
_MULTIPLE = {"requires_dist", "provides_extra", "dynamic", "project_urls"}


def _simple_headers(data: bytes | str) -> dict[str, Any] | None:
    """The few fields resolution reads, when they are plain `Key: value` lines.

    packaging's parse_email runs the stdlib email parser over every header, which dominated a
    cold resolution's CPU time. Almost every METADATA file is this simple; anything that is not
    (folded or encoded values, undecodable bytes) returns None and goes through parse_email.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        return None
    raw: dict[str, Any] = {}
    wanted = False
    for line in text.split("\n"):
        if not line:
            continue
        if line[0] in " \t":
            if wanted:  # a folded value of a field we read
                return None
            continue
        key, sep, value = line.partition(":")
        if not sep:
            return None
        field = _FIELDS.get(key.strip().lower())
        wanted = field is not None
        if field is None:
            continue
        value = value.strip()
        if "=?" in value:  # an RFC 2047 encoded word
            return None
        if field in _MULTIPLE:
            raw.setdefault(field, []).append(value)
        else:
            raw.setdefault(field, value)
    return raw


def _raw_metadata(data: bytes | str) -> dict[str, Any]:
    headers = _headers(data)
    simple = _simple_headers(headers)
    if simple is not None:
        return simple
    # Imported for the unusual file only: packaging.metadata brings the email package, a
    # tenth of a warm lock's start-up.
    from packaging.metadata import parse_email

    raw, unparsed = parse_email(headers)
    found: dict[str, Any] = dict(raw)
    if "project-url" in unparsed:  # a repeated label: packaging gives up on the whole field
        found["project_urls"] = [" ".join(str(line).split()) for line in unparsed["project-url"]]
    return found


def _project_urls(value: object) -> tuple[tuple[str, str], ...]:
    """`Label, URL` lines (or parse_email's label → URL mapping), the first of each label kept."""
    if isinstance(value, dict):
        pairs = [(str(label), str(url)) for label, url in value.items()]
    else:
        pairs = []
        for line in value if isinstance(value, list) else []:
            label, _, url = (part.strip() for part in str(line).partition(","))
            pairs.append((label, url))
    first: dict[str, str] = {}
    for label, url in pairs:
        first.setdefault(label, url)
    return tuple(first.items())


def parse_metadata(data: bytes | str) -> DistMetadata:
    """Parse a METADATA / PKG-INFO file; raise InvalidMetadata naming the bad field."""
    raw = _raw_metadata(data)
    try:
        name = canonicalize_name(raw["name"])
        version = Version(raw["version"])
    except KeyError as exc:
        raise InvalidMetadata(f"metadata has no {exc.args[0]!r} field") from exc
    except InvalidVersion as exc:
        raise InvalidMetadata(f"invalid version {raw['version']!r}") from exc
    return DistMetadata(
        name=name,
        version=version,
        requires_dist=tuple(raw.get("requires_dist", [])),
        requires_python=parse_requires_python(raw.get("requires_python")),
        provides_extra=frozenset(canonicalize_name(e) for e in raw.get("provides_extra", [])),
        dynamic=frozenset(d.lower() for d in raw.get("dynamic", [])),
        project_urls=_project_urls(raw.get("project_urls")),
    )


@functools.lru_cache(maxsize=4096)
def _requirement(text: str) -> Requirement:
    # The same strings recur across versions, files and targets; parsing them is not cheap.
    return Requirement(text)


def parse_requirement_strings(strings: list[str]) -> tuple[Requirement, ...]:
    """Each distinct string parsed once, in order: a repeated entry changes nothing, and would
    cost the resolver a comparison with every other requirement on its project. More than
    MAX_REQUIREMENTS_PER_PROJECT distinct ones on a project are InvalidMetadata."""
    requirements = []
    per_project: dict[str, int] = {}
    for text in dict.fromkeys(strings):
        try:
            requirement = _requirement(text)
        except InvalidRequirement as exc:
            raise InvalidMetadata(f"invalid requirement {text!r}") from exc
        name = canonicalize_name(requirement.name)
        per_project[name] = per_project.get(name, 0) + 1
        if per_project[name] > MAX_REQUIREMENTS_PER_PROJECT:
            raise InvalidMetadata(
                f"its metadata has more than {MAX_REQUIREMENTS_PER_PROJECT:,} different"
                f" Requires-Dist entries on {name}"
            )
        requirements.append(requirement)
    return tuple(requirements)


def why_not_static(pkg_info: bytes) -> str | None:
    """Why a PKG-INFO cannot be trusted for the dependencies (None: it can). Only Metadata 2.2
    on (PEP 643) says which fields the build may still change; those must not be among them."""
    raw = _raw_metadata(pkg_info)
    version = raw.get("metadata_version", "1.0")
    try:
        if Version(version) < Version("2.2"):
            return f"PKG-INFO is Metadata-Version {version}, older than 2.2"
    except InvalidVersion:
        return f"PKG-INFO has an invalid Metadata-Version {version!r}"
    dynamic = {d.lower() for d in raw.get("dynamic", [])}
    for field in ("Requires-Dist", "Requires-Python"):
        if field.lower() in dynamic:
            return f"PKG-INFO lists {field} as Dynamic"
    return None


def direct_file(requirement: Requirement, sha256: str | None) -> DistFile | None:
    """A DistFile for a `name @ URL` requirement whose file name can be classified."""
    assert requirement.url is not None
    url, fragment = urldefrag(requirement.url)
    if fragment.startswith("sha256="):
        sha256 = fragment[len("sha256=") :].lower()
    filename = urlsplit(url).path.rsplit("/", 1)[-1]  # a signed URL's query is not part of it
    parsed = classify(filename)
    if parsed is None:
        return None
    name, version, kind, wheel_tags = parsed
    return DistFile(name, version, kind, filename, url, sha256, wheel_tags)
