"""The resolver's vocabulary: requirements and candidates as resolvelib sees them, the Finder
they are found through, and what the lock's assembly and the conflict explanations read from a
resolution. It imports none of them, so provider.py, assembly.py and conflicts.py all import it
and not each other."""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from machci.config.model import Providers
from machci.dists import DistFile, DistMetadata, ProjectFiles
from machci.sources.nixpkgs.index import NixpkgsPackage


class Finder(Protocol):
    """What resolution asks its data source; fetching ahead is the source's business (it is
    told which names the resolver will want through `Provider.lookahead`)."""

    def project(self, name: str) -> ProjectFiles: ...
    def metadata(self, file: DistFile) -> DistMetadata: ...
    def every_file(self, name: str) -> ProjectFiles: ...
    def skipped(self, file: DistFile, reason: str) -> None: ...
    def direct_sha256(self, url: str, hashes: frozenset[str]) -> str: ...


def identifier_of(name: str, extras: frozenset[str]) -> str:
    return f"{name}[{','.join(sorted(extras))}]" if extras else name


@dataclass(frozen=True)
class Req:
    """A requirement as the resolver sees it, with where it came from."""

    name: NormalizedName
    extras: frozenset[NormalizedName]
    specifier: SpecifierSet
    url: str | None
    text: str
    source: str  # "requirements.txt:3", or "<parent> <version>" for dependencies
    hashes: frozenset[str] = frozenset()
    build: bool = False
    _allowed: dict[Version, bool] = field(default_factory=dict, compare=False, repr=False)

    @property
    def identifier(self) -> str:
        return identifier_of(self.name, self.extras)

    @functools.cached_property
    def pinned(self) -> bool:
        """Exactly one version fits (a URL, `==` without a wildcard, or `===`)."""
        return bool(self.url) or any(
            s.operator in ("==", "===") and "*" not in s.version for s in self.specifier
        )

    @functools.cached_property
    def names_prerelease(self) -> bool:
        """The specifier names a pre-release (`>=2.0b1`): then pre-releases are offered.
        Remembered: packaging works it out again from every specifier each time it is asked,
        and the resolver asks on every search for candidates."""
        return bool(self.specifier.prereleases)

    def allows(self, version: Version) -> bool:
        """Memoised `specifier.contains` (pre-releases allowed: they are filtered earlier).

        resolvelib re-checks every pin against every requirement each round, so the same pairs
        recur thousands of times and packaging's check would dominate the resolution.
        """
        allowed = self._allowed.get(version)
        if allowed is None:
            allowed = self._allowed[version] = self.specifier.contains(version, prereleases=True)
        return allowed

    @classmethod
    def of(
        cls,
        requirement: Requirement,
        source: str,
        hashes: frozenset[str] = frozenset(),
        build: bool = False,
    ) -> Req:
        return cls(
            canonicalize_name(requirement.name),
            frozenset(canonicalize_name(e) for e in requirement.extras),
            requirement.specifier,
            requirement.url,
            str(requirement),
            source,
            hashes,
            build,
        )


@dataclass(frozen=True)
class Candidate:
    name: NormalizedName
    version: Version
    extras: frozenset[NormalizedName]
    provider: str
    file: DistFile  # for "nixpkgs": the index's file whose metadata gives the dependencies
    direct: bool = False  # from a `name @ URL` requirement, not from the index
    nixpkgs: NixpkgsPackage | None = None  # the attribute, for "nixpkgs"

    @property
    def identifier(self) -> str:
        return identifier_of(self.name, self.extras)

    def __str__(self) -> str:
        return f"{self.identifier} {self.version}"


@dataclass(frozen=True, slots=True)
class Choice:
    """One (provider, version) with its usable files, best-ranked first."""

    provider: str
    version: Version
    files: tuple[DistFile, ...]
    nixpkgs: NixpkgsPackage | None = None


class Choices:
    """A project's choices in order, listed only as far as someone has looked.

    Pages list hundreds of versions, and most resolutions look at the newest one or two:
    checking every file of every version up front was a fifth of a large lock's time. Listing
    goes on under a lock, as the prefetch threads read the same choices as the resolver."""

    __slots__ = ("_allowed_from", "_listed", "_lock", "_rest")

    def __init__(self, choices: Iterable[Choice]) -> None:
        self._listed: list[Choice] = []
        self._rest: Iterator[Choice] | None = iter(choices)
        self._lock = threading.Lock()
        self._allowed_from: dict[SpecifierSet, dict[int, int | None]] = {}

    def _reaches(self, position: int) -> bool:
        """Whether there is a choice at `position`, listing up to it."""
        listed = self._listed
        while len(listed) <= position:
            with self._lock:
                if len(listed) > position:
                    break
                following = None if self._rest is None else next(self._rest, None)
                if following is None:
                    self._rest = None
                    return False
                listed.append(following)
        return True

    def __iter__(self) -> Iterator[Choice]:
        position = 0
        while self._reaches(position):
            yield self._listed[position]
            position += 1

    def __getitem__(self, position: int) -> Choice:
        if position < 0 or not self._reaches(position):
            raise IndexError(position)
        return self._listed[position]

    def after(self, position: int) -> Iterator[Choice]:
        return itertools.islice(self, position + 1, None)

    def fitting(self, specifiers: Sequence[SpecifierSet]) -> Iterator[tuple[int, Choice]]:
        """The choices whose version every specifier allows, with their positions, in order.

        The resolver asks again each time a requirement on the project is added, and a
        project's choices can start with hundreds of versions a requirement excludes: each
        specifier's next allowed position from a given one is worked out once.
        """
        position = 0
        while True:
            fits: int | None = position
            for specifier in specifiers:
                fits = self._allowed_from_position(specifier, position)
                if fits is None:
                    return
                if fits != position:
                    break
            else:  # every specifier allows it (or there is none: then it must exist)
                if not self._reaches(position):
                    return
                yield position, self._listed[position]
                fits = position + 1
            position = fits

    def _allowed_from_position(self, specifier: SpecifierSet, start: int) -> int | None:
        """The first position from `start` whose version `specifier` allows; None if none."""
        known = self._allowed_from.setdefault(specifier, {})
        if start in known:
            return known[start]
        found = None
        position = start
        while self._reaches(position):
            if specifier.contains(self._listed[position].version, prereleases=True):
                found = position
                break
            position += 1
        known[start] = found
        return found


@dataclass
class Edges:
    runtime: set[str] = field(default_factory=set)
    build: set[str] = field(default_factory=set)


class Resolution(Protocol):
    """What the lock's assembly and the conflict explanations read from a resolution (the
    resolvelib provider is one)."""

    @property
    def finder(self) -> Finder: ...
    @property
    def providers(self) -> Providers: ...
    @property
    def nixpkgs(self) -> Mapping[str, Sequence[NixpkgsPackage]]: ...
    @property
    def constraints(self) -> Mapping[str, Sequence[Req]]: ...
    @property
    def edges(self) -> Mapping[Candidate, Edges]: ...
    @property
    def invalid(self) -> Mapping[str, list[str]]: ...

    def chain(self, name: str, root_source: Mapping[str, str]) -> str: ...
    def choices_for(self, name: str) -> Iterable[Choice]: ...
