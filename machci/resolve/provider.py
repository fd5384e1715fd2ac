"""Resolution for one target with resolvelib.

The provider only asks a Finder (which files exist, what a file needs); all I/O lives behind it.
Ordering rule: provider order beats version order, as in mach-nix. For `wheel,sdist` every
matching wheel version (newest first) is tried before any sdist version; within one version and
provider the best-ranked file for the target is used. One exception: a wheel that would come
later is tried just before the sdist of its version when that sdist has build needs (a toolchain
or library nixpkgs' plain builder lacks), so `sdist,wheel` still gets the newest release without
a build nixpkgs cannot do unaided.
"""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version
from resolvelib import (
    AbstractProvider,
    BaseReporter,
    ResolutionImpossible,
    ResolutionTooDeep,
)
from resolvelib.resolvers import RequirementInformation
from resolvelib.structs import Matches

from machci.backends.failures import MAX_SKIPPED_VERSIONS, failure_message, too_many_message
from machci.config.model import Providers
from machci.dists import (
    BUILT_FROM_SOURCE,
    SOURCE_KINDS,
    DistFile,
    DistMetadata,
    InvalidMetadata,
    MetadataFailure,
    ProjectFiles,
    direct_file,
)
from machci.errors import InputError, ResolutionError, SourceError
from machci.inputs.requirements import RequirementLine
from machci.inputs.targets import Target
from machci.lock.model import LockedSource, SystemLock
from machci.resolve.assembly import system_lock
from machci.resolve.conflicts import explain_conflict
from machci.resolve.resolution import Candidate, Choice, Choices, Edges, Finder, Req
from machci.resolve.rounds import RoundsResolver
from machci.sources.nixpkgs.index import NixpkgsPackage
from machci.sources.pypi.prefetch import Wanted

MAX_ROUNDS = 20000
FIRST_BATCH = 4  # versions whose metadata is fetched ahead once the resolver passes one over


def _ignore(wanted: Iterable[object]) -> None:
    """The lookahead of a resolution nobody fetches ahead for."""


class Provider(AbstractProvider[Req, Candidate, str]):
    def __init__(
        self,
        target: Target,
        finder: Finder,
        providers: Providers,
        constraints: Mapping[str, Sequence[Req]],
        allow_prereleases: bool,
        nixpkgs: Mapping[str, Sequence[NixpkgsPackage]] | None = None,
        skip_failures: bool = False,
    ) -> None:
        """`skip_failures`: pass over versions whose metadata cannot be prepared (a bounded
        number per package) instead of stopping (see backends/failures.py)."""
        self.target = target
        self.finder = finder
        self.skip_failures = skip_failures
        self.failed: dict[str, list[str]] = defaultdict(list)  # versions passed over, by name
        self.providers = providers
        self.nixpkgs = nixpkgs or {}
        self.constraints = constraints
        self.allow_prereleases = allow_prereleases
        self.choices: dict[str, Choices] = {}
        self.edges: dict[Candidate, Edges] = {}
        self.invalid: dict[str, list[str]] = defaultdict(list)
        self.required_by: dict[str, Candidate] = {}  # first parent seen, for error messages
        self.lookahead: Callable[[Iterable[Wanted]], None] = _ignore  # what it will ask about
        self.lookahead_files: Callable[[Iterable[DistFile]], None] = _ignore  # whose metadata
        self.last_rejected: Candidate | None = None  # the Rejections reporter says
        self.lock = threading.Lock()
        # Per-file answers recur for every file and both kinds of question: asked once each.
        self._python_ok: dict[SpecifierSet, bool] = {}
        self._wheel_rank: dict[frozenset[Tag], int | None] = {}

    # Candidate lists ---------------------------------------------------------------------

    def _python_allows(self, requires_python: SpecifierSet) -> bool:
        allowed = self._python_ok.get(requires_python)
        if allowed is None:
            version = self.target.python_full_version
            allowed = self._python_ok[requires_python] = requires_python.contains(
                version, prereleases=True
            )
        return allowed

    def _rank_of(self, tags: frozenset[Tag]) -> int | None:
        if tags not in self._wheel_rank:
            self._wheel_rank[tags] = self.target.wheel_rank(tags)
        return self._wheel_rank[tags]

    def file_usable(self, file: DistFile) -> bool:
        if file.requires_python is not None and not self._python_allows(file.requires_python):
            return False
        return file.kind != "wheel" or self._rank_of(file.tags) is not None

    def _rank(self, file: DistFile) -> tuple[int, int, str]:
        if file.kind == "wheel":
            return (
                0 if file.yanked is None else 1,
                self._rank_of(file.tags) or 0,
                file.filename,
            )
        return (
            0 if file.yanked is None else 1,
            0 if file.filename.endswith(".tar.gz") else 1,
            file.filename,
        )

    def choices_for(self, name: str) -> Choices:
        return self._choices_of(self.finder.project(name))

    def _choices_of(self, project: ProjectFiles) -> Choices:
        cached = self.choices.get(project.name)
        if cached is not None:
            return cached
        with self.lock:  # made once: a nixpkgs list notes what it lacks as it is made
            if project.name not in self.choices:
                listed: list[Iterable[Choice]] = []
                for provider in self._providers_of(project.name, project):
                    if provider == "nixpkgs":
                        listed.append(self._nixpkgs_choices(project.name, project))
                    else:
                        listed.append(self._index_choices(provider, project))
                self.choices[project.name] = Choices(itertools.chain(*listed))
            return self.choices[project.name]

    def _providers_of(self, name: str, project: ProjectFiles) -> tuple[str, ...]:
        # A package of packagesExtra is what it is, whatever the providers say.
        local = next((kind for kind in project.releases if kind in SOURCE_KINDS), None)
        return (local,) if local else tuple(self.providers.for_package(name))

    def _index_choices(self, provider: str, project: ProjectFiles) -> Iterator[Choice]:
        """The project's versions of one kind, newest first, each with its usable files."""
        for release in project.releases.get(provider, ()):
            files = [f for f in release.files if self.file_usable(f)]
            if len(files) > 1:
                files.sort(key=self._rank)
            if files:
                yield Choice(provider, release.version, tuple(files))

    def _nixpkgs_choices(self, name: str, project: ProjectFiles) -> list[Choice]:
        """nixpkgs' attributes for `name` (newest first, ties by attribute), each with the index
        file whose metadata says what that version depends on (as in mach-nix)."""
        choices = []
        for package in self.nixpkgs.get(name, ()):
            version = Version(package.version)
            same = project.files_of(version)
            usable = [f for f in same if f.kind in ("wheel", "sdist") and self.file_usable(f)]
            ranked = sorted((f for f in usable if f.kind == "wheel"), key=self._rank)
            ranked += sorted((f for f in usable if f.kind == "sdist"), key=self._rank)
            ranked += sorted((f for f in same if f not in ranked), key=lambda f: f.filename)
            if not ranked:
                self.invalid[name].append(
                    f"nixpkgs' {package.attr} {package.version}: the index has no file of that"
                    " version to read its dependencies from"
                )
            choices.append(Choice("nixpkgs", version, tuple(ranked[:1]), package))
        return choices

    # What to fetch ahead (sources/pypi/prefetch.py asks; no I/O here) -------------------------

    def likely_file(self, project: ProjectFiles, specifier: SpecifierSet) -> DistFile | None:
        """The file the resolver will most likely ask the metadata of: the best-ranked file of
        the newest choice `specifier` and the constraints allow, a final release unless
        pre-releases are asked for (listing no further than that choice)."""
        specifiers = [specifier, *(c.specifier for c in self._constraints(project.name))]
        prerelease_ok = self.allow_prereleases or bool(specifier.prereleases)
        for _position, choice in self._choices_of(project).fitting(specifiers):
            if choice.files and (prerelease_ok or not choice.version.is_prerelease):
                return choice.files[0]
        return None

    def dependencies(self, metadata: DistMetadata) -> list[Wanted]:
        """What a candidate with this metadata would ask for on this target."""
        env = self.target.environment
        requirements = (*metadata.requirements(), *metadata.build_requires)
        return [
            (canonicalize_name(r.name), r.specifier)
            for r in requirements
            if _marker_matches(r.marker, env, [""])
        ]

    def chain(self, name: str, root_source: Mapping[str, str]) -> str:
        """How `name` entered the graph, e.g. "via a 1.0, b 2.0, from requirements.txt:3"."""
        via: list[str] = []
        seen = {name}
        while name not in root_source and name in self.required_by:
            parent = self.required_by[name]
            if parent.name in seen:
                break
            seen.add(parent.name)
            via.append(f"{parent.name} {parent.version}")
            name = parent.name
        parts = [f"via {', '.join(via)}"] if via else []
        if name in root_source:
            parts.append(f"from {root_source[name]}")
        return ", ".join(parts)

    # resolvelib protocol -----------------------------------------------------------------

    def identify(self, requirement_or_candidate: Req | Candidate) -> str:
        return requirement_or_candidate.identifier

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[RequirementInformation[Req, Candidate]]],
        backtrack_causes: Sequence[RequirementInformation[Req, Candidate]],
    ) -> tuple[bool, bool, bool, str]:
        # Called for every open identifier on every round: keep it to one pass.
        pinned = direct = False
        for info in information[identifier]:
            pinned = pinned or info.requirement.pinned
            direct = direct or info.parent is None
        name = identifier.partition("[")[0]
        in_backtrack = any(c.requirement.name == name for c in backtrack_causes)
        return (not pinned, not in_backtrack, not direct, identifier)

    def _allows_yanked(self, version: Version, requirements: Sequence[Req]) -> bool:
        for req in requirements:
            for spec in req.specifier:
                if (
                    spec.operator in ("==", "===")
                    and "*" not in spec.version
                    and spec.contains(version, prereleases=True)
                ):
                    return True
        return False

    def _constraints(self, name: str) -> list[Req]:
        return list(self.constraints.get(name, ()))

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Req]],
        incompatibilities: Mapping[str, Iterator[Candidate]],
    ) -> Matches[Candidate]:
        reqs = list(requirements[identifier])
        if not reqs:
            return []
        name = reqs[0].name
        extras = reqs[0].extras
        bad = set(incompatibilities[identifier])
        all_reqs = reqs + self._constraints(name)
        # A factory keeps the candidate list lazy: resolvelib materialises plain iterables, which
        # would fetch the metadata of every version up front.
        return lambda: self._matches(name, extras, all_reqs, bad)

    def _matches(
        self,
        name: NormalizedName,
        extras: frozenset[NormalizedName],
        reqs: list[Req],
        bad: set[Candidate],
    ) -> Iterator[Candidate]:
        urls = {r.url for r in reqs if r.url}
        if len(urls) > 1:
            return
        if urls:
            yield from self._direct_matches(name, extras, reqs, urls.pop(), bad)
            return
        prerelease_ok = self.allow_prereleases or any(r.names_prerelease for r in reqs)
        choices = self.choices_for(name)
        finals = False  # whether any final release fits: then pre-releases are not offered
        moved_up: set[Version] = set()  # wheels already offered just before their sdist
        rejected: set[Version] = set()  # versions whose dependencies clashed, in this attempt
        specifiers = [r.specifier for r in reqs]
        hashes = [r.hashes for r in reqs if r.hashes]
        walk = _WalkAhead(
            self._wheels_of(choices.fitting(specifiers), prerelease_ok, hashes),
            self.lookahead_files,
        )
        for position, choice in choices.fitting(specifiers):
            if not prerelease_ok and choice.version.is_prerelease:
                continue
            finals = True
            if choice.version in rejected:
                continue
            walk.offering(position)
            yield from self._noting_rejections(
                self._offer(name, extras, choices, position, reqs, bad, moved_up), rejected
            )
        if not prerelease_ok and not finals:
            for position, choice in choices.fitting(specifiers):
                if choice.version in rejected:
                    continue
                yield from self._noting_rejections(
                    self._offer(name, extras, choices, position, reqs, bad, moved_up), rejected
                )

    @staticmethod
    def _wheels_of(
        fitting: Iterator[tuple[int, Choice]], prerelease_ok: bool, hashes: list[frozenset[str]]
    ) -> Iterator[tuple[int, DistFile]]:
        """The file `_candidate` would take of each choice, where it is a wheel (an sdist's
        metadata may need its backend run: never for a version that may not be chosen)."""
        for position, choice in fitting:
            if not prerelease_ok and choice.version.is_prerelease:
                continue
            file = _file_of(choice, hashes)
            if file is not None and file.kind == "wheel":
                yield position, file

    def _noting_rejections(
        self, candidates: Iterator[Candidate], rejected: set[Version]
    ) -> Iterator[Candidate]:
        """The candidates, noting in `rejected` the versions resolvelib rejected for their
        dependencies. A later choice of such a version (its sdist after its wheel, say) is then
        not offered in this same attempt: a version's files declare the same dependencies (pip
        and uv treat a version as one candidate), so it would clash again, after a build that
        runs the project's own code and can take seconds. (The wheel offered just before its own
        sdist is the exception: that sdist was the choice, and stays one.)"""
        for candidate in candidates:
            yield candidate
            # Resumed: resolvelib went on to the next candidate, after reporting this one.
            if self.last_rejected is candidate:
                rejected.add(candidate.version)

    def _offer(
        self,
        name: NormalizedName,
        extras: frozenset[NormalizedName],
        choices: Choices,
        position: int,
        reqs: list[Req],
        bad: set[Candidate],
        moved_up: set[Version],
    ) -> Iterator[Candidate]:
        """The candidate of choices[position], preceded by the same version's wheel when that
        comes later but the sdist needs a build nixpkgs' plain builder cannot do."""
        choice = choices[position]
        if choice.provider == "wheel" and choice.version in moved_up:
            return
        candidate = self._candidate(name, extras, choice, reqs, bad)
        if candidate is None:
            return
        if candidate.provider == "sdist":
            later = (
                c
                for c in choices.after(position)
                if c.provider == "wheel" and c.version == choice.version
            )
            wheel_choice = next(later, None)
            if wheel_choice is not None and self._needs(candidate):
                wheel = self._candidate(name, extras, wheel_choice, reqs, bad)
                if wheel is not None:
                    moved_up.add(choice.version)
                    yield wheel
        yield candidate

    def _candidate(
        self,
        name: NormalizedName,
        extras: frozenset[NormalizedName],
        choice: Choice,
        reqs: list[Req],
        bad: set[Candidate],
    ) -> Candidate | None:
        """The candidate of one choice, or None if no file fits or its metadata is unusable."""
        file = _file_of(choice, [r.hashes for r in reqs if r.hashes])
        if file is None:
            return None
        if choice.nixpkgs is not None:
            candidate = Candidate(
                name, choice.version, extras, "nixpkgs", file, nixpkgs=choice.nixpkgs
            )
            return None if candidate in bad or not self._metadata_ok(candidate) else candidate
        if file.yanked is not None and not self._allows_yanked(choice.version, reqs):
            return None
        candidate = Candidate(name, choice.version, extras, choice.provider, file)
        if candidate in bad or not self._metadata_ok(candidate):
            return None
        return candidate

    def _needs(self, candidate: Candidate) -> bool:
        """Whether building the candidate needs more than nixpkgs' plain builder has."""
        return bool(self.finder.metadata(candidate.file).build_needs)

    def _direct_matches(
        self,
        name: NormalizedName,
        extras: frozenset[NormalizedName],
        reqs: list[Req],
        url: str,
        bad: set[Candidate],
    ) -> Iterator[Candidate]:
        hashes: frozenset[str] = frozenset().union(*(r.hashes for r in reqs))
        file = direct_file(Requirement(f"{name} @ {url}"), None)
        if file is None or not self.file_usable(file):
            return
        if file.sha256 is None:
            if not hashes:
                return
            file = replace(file, sha256=self.finder.direct_sha256(file.url, hashes))
        if not all(r.allows(file.version) for r in reqs):
            return
        candidate = Candidate(name, file.version, extras, file.kind, file, direct=True)
        if candidate not in bad and self._metadata_ok(candidate):
            yield candidate

    def _metadata_ok(self, candidate: Candidate) -> bool:
        """Whether the candidate's metadata can be used; a version whose metadata cannot be read
        is skipped with a warning, and resolution goes on with the next one. One whose metadata
        its backend cannot prepare stops the run, unless skipping those was asked for."""
        try:
            metadata = self.finder.metadata(candidate.file)
            metadata.requirements(candidate.extras)
        except MetadataFailure as exc:
            self._failed(candidate, exc)
            return False
        except InvalidMetadata as exc:
            self.invalid[candidate.name].append(f"{candidate.file.filename}: {exc}")
            self.finder.skipped(candidate.file, str(exc))
            return False
        python = metadata.requires_python
        if python is not None and not python.contains(
            self.target.python_full_version, prereleases=True
        ):
            self.invalid[candidate.name].append(
                f"{candidate.file.filename} requires Python {python}"
            )
            return False
        return True

    def _failed(self, candidate: Candidate, failure: MetadataFailure) -> None:
        """Stop with the failure, or (skipping) note the version and warn, up to the bound."""
        file = candidate.file
        if not self.skip_failures:
            raise SourceError(failure_message(file, failure))
        skipped = self.failed[candidate.name]
        if str(file.version) not in skipped:
            skipped.append(str(file.version))
        if len(skipped) > MAX_SKIPPED_VERSIONS:
            raise SourceError(too_many_message(file, failure, skipped))
        self.invalid[candidate.name].append(f"{file.filename}: {failure}")
        self.finder.skipped(file, str(failure))

    def is_satisfied_by(self, requirement: Req, candidate: Candidate) -> bool:
        if requirement.name != candidate.name:
            return False
        if requirement.url and requirement.url.split("#", 1)[0] != candidate.file.url:
            return False
        if requirement.hashes and candidate.file.sha256 not in requirement.hashes:
            return False
        return requirement.allows(candidate.version)

    def get_dependencies(self, candidate: Candidate) -> Iterable[Req]:
        metadata = self.finder.metadata(candidate.file)
        parent = f"{candidate.name} {candidate.version}"
        deps: list[Req] = []
        if candidate.extras:
            # The base package uses the extra's own file: the one a direct reference names, or
            # the index file its --hash values allowed (nixpkgs builds its own, so no hash).
            file = candidate.file
            assert file.sha256 is not None  # its metadata was read, so it has one
            pin = f"{file.url}#sha256={file.sha256}" if candidate.direct else None
            same_file = frozenset() if candidate.nixpkgs else frozenset({file.sha256})
            deps.append(
                Req(
                    candidate.name,
                    frozenset(),
                    SpecifierSet(f"=={candidate.version}"),
                    pin,
                    f"{candidate.name}=={candidate.version}",
                    parent,
                    same_file,
                )
            )
            wanted = [str(e) for e in candidate.extras]
        else:
            wanted = [""]
        for requirement in metadata.requirements(candidate.extras):
            if _marker_matches(requirement.marker, self.target.environment, wanted):
                deps.append(Req.of(requirement, parent))
        if candidate.provider in BUILT_FROM_SOURCE and not candidate.extras:
            for requirement in metadata.build_requires:
                if _marker_matches(requirement.marker, self.target.environment, [""]):
                    deps.append(Req.of(requirement, f"{parent} (build)", build=True))
        edges = self.edges.setdefault(candidate, Edges())
        for dep in deps:
            if dep.name != candidate.name:
                (edges.build if dep.build else edges.runtime).add(dep.name)
                self.required_by.setdefault(dep.name, candidate)
        self.lookahead((d.name, d.specifier) for d in deps)
        return deps


def _file_of(choice: Choice, hashes: list[frozenset[str]]) -> DistFile | None:
    """The file a choice's candidate stands on: its best-ranked one that every requirement's
    --hash values allow; none for a nixpkgs choice under --hash (nixpkgs builds its own file,
    which no hash can match)."""
    if choice.nixpkgs is not None:
        return None if hashes else next(iter(choice.files), None)
    return next((f for f in choice.files if all(f.sha256 in h for h in hashes)), None)


class _WalkAhead:
    """Fetching ahead down a project's versions as the resolver walks them.

    While the resolver takes the first version offered, the prefetcher has its metadata on the
    way. Once it passes over that one (its dependencies clash), each next version's metadata
    would be a request of its own, one after another: backtracking through thirty versions of
    one project was thirty round trips to the index. From the second version offered on, the
    metadata of the next wheels down is fetched ahead, FIRST_BATCH of them and twice as many
    each time the walk reaches the last one fetched (uv fetches ahead in batches likewise)."""

    def __init__(
        self, upcoming: Iterator[tuple[int, DistFile]], fetch: Callable[[Iterable[DistFile]], None]
    ) -> None:
        self.upcoming = upcoming
        self.fetch = fetch
        self.offered = 0
        self.fetched_to = -1  # the position of the last file fetched ahead
        self.batch = FIRST_BATCH

    def offering(self, position: int) -> None:
        """The choice at `position` is offered next."""
        self.offered += 1
        if self.offered < 2 or position < self.fetched_to:
            return
        files = []
        for ahead, file in self.upcoming:
            if ahead > position:
                files.append(file)
                self.fetched_to = ahead
                if len(files) == self.batch:
                    break
        self.batch *= 2
        if files:
            self.fetch(files)


def _marker_matches(
    marker: Marker | None, environment: dict[str, str], extras: Sequence[str]
) -> bool:
    if marker is None:
        return True
    return any(marker.evaluate({**environment, "extra": extra}) for extra in extras)


def root_requirements(
    target: Target, lines: Sequence[RequirementLine], source_of: _SourceFn
) -> list[Req]:
    reqs = []
    for line in lines:
        if not _marker_matches(line.requirement.marker, target.environment, [""]):
            continue
        req = Req.of(line.requirement, source_of(line), line.hashes)
        if req.url and not (req.hashes or "#sha256=" in req.url):
            raise InputError(
                f"direct reference {req.text!r} needs a hash: add #sha256=<hex> to the URL"
                " or --hash=sha256:<hex>",
                line.location,
            )
        reqs.append(req)
    return reqs


class Rejections(BaseReporter[Req, Candidate, str]):
    """Tells the provider which candidate resolvelib rejected last for its dependencies."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def rejecting_candidate(self, criterion: Any, candidate: Candidate) -> None:
        self.provider.last_rejected = candidate


class _SourceFn(Protocol):
    def __call__(self, line: RequirementLine) -> str: ...


class TargetResolution:
    """One target's resolution. `start` starts fetching; `run` resolves.

    Starting every target's resolution before running the first lets all targets' fetches
    overlap with the first resolution.
    """

    def __init__(
        self,
        target: Target,
        finder: Finder,
        requirements: Sequence[RequirementLine],
        constraints: Sequence[RequirementLine],
        providers: Providers,
        allow_prereleases: bool,
        source_of: _SourceFn,
        nixpkgs: Mapping[str, Sequence[NixpkgsPackage]] | None = None,
        sources: Mapping[str, LockedSource] | None = None,
        scripts: frozenset[str] = frozenset(),
        skip_failures: bool = False,
    ) -> None:
        """`sources`: where each package of packagesExtra comes from (the lock records it);
        `scripts`: the project itself, whose console scripts default.nix exposes;
        `skip_failures`: see Provider."""
        self.target = target
        self.sources = sources or {}
        self.scripts = scripts
        self.roots = root_requirements(target, requirements, source_of)
        constraint_reqs: dict[str, list[Req]] = defaultdict(list)
        for req in root_requirements(target, constraints, source_of):
            constraint_reqs[req.name].append(req)
        self.provider = Provider(
            target, finder, providers, constraint_reqs, allow_prereleases, nixpkgs, skip_failures
        )

    def start(
        self,
        lookahead: Callable[[Iterable[Wanted]], None],
        lookahead_files: Callable[[Iterable[DistFile]], None] = _ignore,
    ) -> None:
        """Tell the source, through `lookahead`, what this resolution will want: the roots now,
        each candidate's dependencies as the resolver meets them; through `lookahead_files`,
        the files whose metadata it is about to ask for."""
        self.provider.lookahead = lookahead
        self.provider.lookahead_files = lookahead_files
        lookahead((r.name, r.specifier) for r in self.roots)

    def run(self) -> SystemLock:
        resolver: RoundsResolver[Req, Candidate, str]
        resolver = RoundsResolver(self.provider, Rejections(self.provider))
        try:
            result = resolver.resolve(self.roots, max_rounds=MAX_ROUNDS)
        except ResolutionImpossible as exc:
            raise ResolutionError(explain_conflict(self.provider, exc.causes, self.roots)) from None
        except ResolutionTooDeep as exc:
            raise ResolutionError(f"  resolution gave up after {exc.args[0]} rounds") from None
        return system_lock(
            self.target, self.provider, result.mapping, self.roots, self.sources, self.scripts
        )


def target_label(target: Target) -> str:
    return f"{target.system} (Python {target.python})"
