"""Lock assembly: a target's resolution (resolvelib's mapping) as the Lock's SystemLock."""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from machci.dists import BUILT_FROM_SOURCE, SOURCE_KINDS
from machci.inputs.targets import Target
from machci.lock.model import LockedFile, LockedPackage, LockedSource, Root, SystemLock
from machci.redaction import strip_credentials
from machci.resolve.resolution import Candidate, Req, Resolution


def system_lock(
    target: Target,
    provider: Resolution,
    mapping: Mapping[str, Candidate],
    roots: Sequence[Req],
    sources: Mapping[str, LockedSource],
    scripts: frozenset[str],
) -> SystemLock:
    """The lock of one target from resolvelib's answer: one package per name, the extras asked
    of it, and the dependency edges the provider recorded between the chosen packages."""
    by_name: dict[str, Candidate] = {}
    extras: dict[str, set[str]] = defaultdict(set)
    runtime: dict[str, set[str]] = defaultdict(set)
    build: dict[str, set[str]] = defaultdict(set)
    for candidate in mapping.values():
        if not candidate.extras:
            by_name[candidate.name] = candidate
        extras[candidate.name].update(candidate.extras)
        edges = provider.edges.get(candidate)
        if edges is not None:
            runtime[candidate.name].update(edges.runtime)
            build[candidate.name].update(edges.build)
    packages = []
    for name in sorted(by_name):
        candidate = by_name[name]
        file = candidate.file
        assert file.sha256 is not None
        nixpkgs = candidate.nixpkgs
        metadata = provider.finder.metadata(file)
        packages.append(
            LockedPackage(
                name=name,
                # A nixpkgs package keeps nixpkgs' spelling, which default.nix checks against.
                version=nixpkgs.version if nixpkgs else str(candidate.version),
                provider=candidate.provider,
                file=None
                if nixpkgs or candidate.provider in SOURCE_KINDS
                else LockedFile(
                    file.filename,
                    strip_credentials(file.url),
                    file.sha256,
                    file.size,
                    file.upload_time,
                ),
                source=sources.get(name),
                scripts=name in scripts,
                attr=nixpkgs.attr if nixpkgs else None,
                dependencies=tuple(sorted(runtime[name] & by_name.keys())),
                build_requires=tuple(sorted(build[name] & by_name.keys())),
                extras=tuple(sorted(extras[name])),
                build_needs=tuple(sorted(metadata.build_needs))
                if candidate.provider in BUILT_FROM_SOURCE
                else (),
                project_urls=metadata.project_urls,
            )
        )
    return SystemLock(target.system, target.python, tuple(packages), root_entries(roots))


def root_entries(roots: Iterable[Req]) -> tuple[Root, ...]:
    """The lock's roots: each requirement once, in the order of where it was written."""
    return tuple(
        sorted(
            {Root(r.name, r.text, r.source) for r in roots},
            key=operator.attrgetter("source", "name"),
        )
    )
