"""Spec → Lock: open the data source once and resolve every target against it."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from machci.backends.failures import printable
from machci.config.model import NixpkgsData
from machci.config.options import SourceOptions
from machci.errors import InputError, ResolutionError
from machci.files import relative_input
from machci.inputs.requirements import RequirementLine
from machci.inputs.spec import Spec
from machci.lock.graph import check_build_cycles
from machci.lock.model import Lock, LockedSource, SystemLock
from machci.notices import warn
from machci.resolve.advice import build_needs_warnings, unused_name_warnings
from machci.resolve.lockpins import check_lock_closure, check_lock_pins, explain_lock_failure
from machci.resolve.provider import TargetResolution, target_label
from machci.sources.auth import Credentials
from machci.sources.cache import Cache, default_cache_dir
from machci.sources.http import Http, Progress, strip_credentials
from machci.sources.nixpkgs.index import NixpkgsIndex, evaluate_tree, load_index
from machci.sources.pypi.pages import WheelFilter
from machci.sources.pypi.prefetch import Prefetcher
from machci.sources.pypi.snapshot import PyPISource
from machci.sources.trees.extra import PreparedSource
from machci.sources.trees.extra import prepare as prepare_sources

if TYPE_CHECKING:
    from machci.sources.depsdb.source import DepsDbSource


def lock(
    spec: Spec,
    options: SourceOptions,
    *,
    notices: bool = True,
    pins: Sequence[LockedSource] = (),
) -> Lock:
    """Resolve every target; with `notices`, warn about what the lock cannot build unaided.
    `pins`: packagesExtra's archives and git commits to keep (see sources/trees/extra.py)."""
    with _no_cycle_collection():
        return _lock(spec, options, notices=notices, pins={p.request: p for p in pins})


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Resolution allocates tens of thousands of long-lived objects (files, versions, choices)
    and little cyclic garbage; the cycle collector would rescan them over and over for nothing
    (a fifth of a warm lock's time). Reference counting still frees everything else."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def connect(
    options: SourceOptions, indexes: Sequence[str], progress: Progress | None = None
) -> Http:
    """HTTP through the cache, with the credentials of `indexes` and netrc."""
    return Http(
        Cache(options.cache_dir or default_cache_dir()),
        credentials=Credentials(indexes),
        offline=options.offline,
        timeout=options.timeout,
        progress=progress,
        refresh=options.refresh,
    )


def _lock(
    spec: Spec,
    options: SourceOptions,
    *,
    notices: bool,
    pins: Mapping[tuple[str, str, str | None], LockedSource],
) -> Lock:
    progress = Progress()
    http = connect(options, spec.indexes, progress)
    source = open_source(spec, http, options)
    nixpkgs = nixpkgs_index(spec, options)
    if notices:
        _warn_without_nixpkgs(spec)
    systems: list[SystemLock] = []
    failures: dict[str, list[str]] = {}  # explanation -> targets, so equal failures print once
    try:
        check_lock_pins(
            spec.root_lines, spec.requirements.constraints, spec.targets, spec.providers, source
        )
        extra = _extra_sources(spec, source, http, options, pins)
        roots = [RequirementLine(e.root(), e.extra.where) for e in extra]
        resolutions = [
            TargetResolution(
                target,
                source,
                [*roots, *spec.root_lines],
                # A build tool is the same package as a runtime dependency of that name (one
                # version of each per system), so build constraints hold wherever it appears.
                [*spec.requirements.constraints, *spec.build_constraints],
                spec.providers,
                spec.requirements.pre,
                spec.source_of,
                nixpkgs,
                {e.name: e.locked for e in extra},
                frozenset(e.name for e in extra if e.extra.project),
                skip_failures=spec.metadata_failures == "skip",
            )
            for target in spec.targets
        ]
        pending = [(r, Prefetcher(source, r.provider)) for r in resolutions]
        del resolutions
        for resolution, prefetcher in pending:
            resolution.start(prefetcher.ahead, prefetcher.files)
        # Each target's resolution is let go of once done: a three-system lock holds one
        # target's candidates and choices at a time, not all three.
        while pending:
            resolution, prefetcher = pending.pop(0)
            try:
                system = resolution.run()
                check_lock_closure(system, [*spec.root_lines, *spec.requirements.constraints])
                check_build_cycles(system)
                systems.append(system)
            except ResolutionError as exc:
                explain_lock_failure(
                    exc.message,
                    spec.requirements.constraints,
                    resolution.target,
                    spec.providers,
                    source,
                )
                failures.setdefault(exc.message, []).append(target_label(resolution.target))
            finally:
                prefetcher.stop()
            del resolution, prefetcher
    finally:
        source.close()
        progress.close()
    if failures:
        raise ResolutionError(
            "\n".join(
                f"cannot resolve for {' and '.join(labels)}:\n{detail}"
                for detail, labels in failures.items()
            )
        )
    result = Lock(tuple(systems), *_pin(spec))
    if notices:
        fallbacks = source.requires_failures if isinstance(source, PyPISource) else {}
        for message in (
            *requires_fallback_warnings(result, fallbacks),
            *build_needs_warnings(result),
            *unused_name_warnings(result, spec),
        ):
            warn(message)
    return result


def requires_fallback_warnings(result: Lock, failures: Mapping[str, str]) -> list[str]:
    """One warning per locked sdist whose backend could not say its build requirements
    (`failures`, by sha256): the lock has its static ones only."""
    seen: dict[str, str] = {}
    for system in result.systems:
        for package in system.packages:
            file = package.file
            if file is not None and file.sha256 in failures and file.sha256 not in seen:
                seen[file.sha256] = (
                    f"{package.name} {package.version} ({file.filename}):"
                    f" {printable(failures[file.sha256])}; locked with its static"
                    " [build-system].requires instead (nixpkgs' build asks the backend again,"
                    " with default.nix's inputs)"
                )
    return list(seen.values())


def open_source(spec: Spec, http: Http, options: SourceOptions) -> PyPISource | DepsDbSource:
    """The data source machci.yaml's `data:` names."""
    data = spec.data
    if data.source == "pypi-deps-db":
        # Imported here: its tarball reader is a tenth of a warm PyPI lock's start-up.
        from machci.sources.depsdb.source import DepsDbSource

        return DepsDbSource.open(http, data, spec.python)
    return PyPISource(
        http,
        spec.indexes,
        data.snapshot,
        timeout=options.timeout,
        build=spec.build,
        wheels=WheelFilter(str(tag) for target in spec.targets for tag in target.tags),
        build_constraints=spec.build_constraint_lines,
    )


def _extra_sources(
    spec: Spec,
    source: PyPISource | DepsDbSource,
    http: Http,
    options: SourceOptions,
    pins: Mapping[tuple[str, str, str | None], LockedSource],
) -> tuple[PreparedSource, ...]:
    """packagesExtra, read and pinned, and made known to the source."""
    extras = spec.packages_extra
    if not extras:
        return ()
    if not isinstance(source, PyPISource):
        raise InputError(
            "packagesExtra and project need the pypi data source (their build requirements"
            " come from an index)",
            extras[0].where,
        )
    prepared = prepare_sources(
        extras,
        http,
        source.build_environments if spec.build else None,
        spec.output,
        options.timeout,
        pins,
    )
    source.add_sources(prepared)
    return prepared


def _pin(spec: Spec) -> tuple[str, str | None, str]:
    """Where the data is, its pin and its source, as the Lock records them."""
    data = spec.data
    if data.source != "pypi-deps-db":
        return strip_credentials(spec.indexes[0]), data.snapshot_text, data.source
    if data.path is not None:  # the header names it relative to the file, like its inputs
        return relative_input(data.path, spec.output), None, data.source
    return data.repository, data.rev, data.source


def nixpkgs_index(spec: Spec, options: SourceOptions) -> NixpkgsIndex:
    """The versions nixpkgs offers, when machci.yaml says where they come from."""
    data = spec.nixpkgs
    if data.index is not None:
        return load_index(data.index)
    if data.path is not None:
        return evaluate_tree(data.path, spec.python, options.cache_dir)
    return {}


def _warn_without_nixpkgs(spec: Spec) -> None:
    orders = (spec.providers.default, *spec.providers.per_package.values())
    if spec.nixpkgs == NixpkgsData() and any("nixpkgs" in o for o in orders):
        warn(
            "providers name nixpkgs, but machci.yaml has no `nixpkgs: {index: FILE}` or"
            " `nixpkgs: {path: DIR}`, so no package can come from nixpkgs"
        )
