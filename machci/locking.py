"""Spec → Lock: open the data source once and resolve every target against it."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

from machci.advice import build_needs_warnings, unused_name_warnings
from machci.config import NixpkgsData
from machci.errors import ResolutionError
from machci.graph import check_build_cycles
from machci.lock import Lock, SystemLock
from machci.notices import warn
from machci.options import SourceOptions
from machci.requirements import RequirementLine
from machci.resolve import TargetResolution, target_label
from machci.sources.auth import Credentials
from machci.sources.cache import Cache, default_cache_dir
from machci.sources.http import Http, Progress, strip_credentials
from machci.sources.nixpkgs import NixpkgsIndex, evaluate_tree, load_index
from machci.sources.pages import WheelFilter
from machci.sources.prefetch import Prefetcher
from machci.sources.pypi import PyPISource
from machci.sources.trees import prepare as prepare_sources
from machci.spec import Spec


def lock(spec: Spec, options: SourceOptions, *, notices: bool = True) -> Lock:
    """Resolve every target; with `notices`, warn about what the lock cannot build unaided."""
    with _no_cycle_collection():
        return _lock(spec, options, notices=notices)


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


def _lock(spec: Spec, options: SourceOptions, *, notices: bool) -> Lock:
    cache = Cache(options.cache_dir or default_cache_dir())
    progress = Progress()
    http = Http(
        cache,
        credentials=Credentials(spec.indexes),
        offline=options.offline,
        timeout=options.timeout,
        progress=progress,
    )
    source = PyPISource(
        http,
        spec.indexes,
        spec.config.data.snapshot,
        timeout=options.timeout,
        build=spec.config.build,
        wheels=WheelFilter(str(tag) for target in spec.targets for tag in target.tags),
    )
    nixpkgs = nixpkgs_index(spec, options)
    if notices:
        _warn_without_nixpkgs(spec)
    systems: list[SystemLock] = []
    failures: dict[str, list[str]] = {}  # explanation -> targets, so equal failures print once
    try:
        extra = prepare_sources(
            spec.config.packages_extra,
            http,
            source.build_environments if spec.config.build else None,
            spec.config.output,
            options.timeout,
        )
        source.add_sources(extra)
        roots = [RequirementLine(e.root(), e.extra.where) for e in extra]
        resolutions = [
            TargetResolution(
                target,
                source,
                [*roots, *spec.root_lines],
                spec.requirements.constraints,
                spec.providers,
                spec.requirements.pre,
                spec.source_of,
                nixpkgs,
                {e.name: e.locked for e in extra},
                frozenset(e.name for e in extra if e.extra.project),
            )
            for target in spec.targets
        ]
        for resolution in resolutions:
            resolution.start(Prefetcher(source, resolution.provider).ahead)
        for resolution in resolutions:
            try:
                system = resolution.run()
                check_build_cycles(system)
                systems.append(system)
            except ResolutionError as exc:
                failures.setdefault(exc.message, []).append(target_label(resolution.target))
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
    result = Lock(
        systems=tuple(systems),
        index=strip_credentials(spec.indexes[0]),
        snapshot=spec.config.data.snapshot_text,
    )
    if notices:
        for message in (*build_needs_warnings(result), *unused_name_warnings(result, spec)):
            warn(message)
    return result


def nixpkgs_index(spec: Spec, options: SourceOptions) -> NixpkgsIndex:
    """The versions nixpkgs offers, when machci.yaml says where they come from."""
    data = spec.config.nixpkgs
    if data.index is not None:
        return load_index(data.index)
    if data.path is not None:
        return evaluate_tree(data.path, spec.config.python, options.cache_dir)
    return {}


def _warn_without_nixpkgs(spec: Spec) -> None:
    orders = (spec.providers.default, *spec.providers.per_package.values())
    if spec.config.nixpkgs == NixpkgsData() and any("nixpkgs" in o for o in orders):
        warn(
            "providers name nixpkgs, but machci.yaml has no `nixpkgs: {index: FILE}` or"
            " `nixpkgs: {path: DIR}`, so no package can come from nixpkgs"
        )
