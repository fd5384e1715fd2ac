"""The project a command works on, in layers: defaults, then machci.yaml, then the command
line's options; and the options that say how to reach the data."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from machci.config.defaults import CONFIG_NAME, parse_glibc, parse_macos, parse_python
from machci.config.model import (
    BuildConstraint,
    Config,
    DataRevision,
    Providers,
    RequirementInput,
    parse_providers,
    parse_snapshot,
    selects,
)
from machci.config.options import SourceOptions
from machci.errors import InputError, Location
from machci.redaction import redact_unparsed
from machci.untrusted import url_problem


def load_project(args: argparse.Namespace) -> tuple[Config, Path]:
    """Defaults, then machci.yaml, then command-line options; returns the config and its base."""
    from machci.config.model import (
        Config,
        RequirementInput,
    )

    path: Path | None = args.config
    # Anything under the name is read, so that a FIFO, a directory or a symlink loop there is
    # reported (by load_config) rather than taken for "no machci.yaml".
    if path is None and os.path.lexists(CONFIG_NAME) and not args.requirements:
        path = Path(CONFIG_NAME)
    if path is None:
        config = Config()
    else:
        # Imported only for a machci.yaml: its reader brings ruamel.yaml and the schema.
        from machci.config.load import load_config

        config = load_config(path)
    base = path.parent if path is not None else Path()
    changes: dict[str, object] = {}
    if args.requirements or args.extras or args.groups:
        inputs = tuple(
            RequirementInput(p, tuple(args.extras), tuple(args.groups))
            for p in args.requirements or ()
        ) or tuple(
            RequirementInput(r.path, (*r.extras, *args.extras), (*r.groups, *args.groups))
            for r in config.requirements
        )
        if args.extras or args.groups:
            _check_selections(inputs, args)
        changes["requirements"] = inputs
    if args.python is not None:
        changes["python"] = parse_python(args.python)
    if args.systems:
        changes["systems"] = tuple(dict.fromkeys(args.systems))
    # An empty value given on the command line is a mistake, never "the default".
    if args.index_url is not None or args.extra_index_urls or args.snapshot is not None:
        data = config.data
        if data.source != "pypi":
            raise InputError(
                "--index-url, --extra-index-url and --snapshot set the pypi source's pin;"
                f" machci.yaml's data source is {data.source}"
            )
        changes["data"] = DataRevision(
            index=(
                index_url("--index-url", args.index_url)
                if args.index_url is not None
                else data.index
            ),
            extra_indexes=(
                *data.extra_indexes,
                *(index_url("--extra-index-url", url) for url in args.extra_index_urls),
            ),
            snapshot=(
                parse_snapshot(args.snapshot) if args.snapshot is not None else data.snapshot
            ),
        )
    if args.providers:
        from packaging.utils import canonicalize_name

        default, per_package = config.providers.default, dict(config.providers.per_package)
        for item in args.providers:
            package, _, order = item.rpartition("=")
            if package:
                per_package[canonicalize_name(package)] = parse_providers(order)
            else:
                default = parse_providers(order)
        changes["providers"] = Providers(default, per_package)
    for key, parse in (("glibc", parse_glibc), ("macos", parse_macos)):
        if getattr(args, key) is not None:
            changes[key] = parse(getattr(args, key))
    if args.no_build:
        changes["build"] = False
    if args.build_constraints:
        named = Location.of("--build-constraint")
        added = (BuildConstraint(named, path=path) for path in args.build_constraints)
        changes["build_constraints"] = (*config.build_constraints, *added)
    if args.skip_metadata_failures:
        changes["metadata_failures"] = "skip"
    if changes and path is not None:
        changes["overridden"] = True
    return config.with_changes(**changes), base


def _check_selections(inputs: Sequence[RequirementInput], args: argparse.Namespace) -> None:
    """--extra and --group select parts of a pyproject.toml, a uv.lock or a poetry.lock:
    without one among the inputs they would select nothing, silently."""
    if not any(selects(entry.path) for entry in inputs):
        option = "--extra" if args.extras else "--group"
        names = ", ".join(entry.path.as_posix() for entry in inputs) or "none"
        raise InputError(
            f"{option} selects optional dependencies or groups of a pyproject.toml, a uv.lock"
            f" or a poetry.lock, and no input is one (inputs: {names})"
        )


def index_url(option: str, url: str) -> str:
    problem = url_problem(url)
    if problem:
        shown = redact_unparsed(url)
        raise InputError(f"{option} {shown!r} is not an index URL: {problem}")
    return url.rstrip("/")


def source_options(args: argparse.Namespace) -> SourceOptions:
    """--cache-dir, --offline, --timeout and --refresh: how to reach the data, never what is
    locked."""
    return SourceOptions(
        cache_dir=args.cache_dir, offline=args.offline, timeout=args.timeout, refresh=args.refresh
    )
