"""`machci bump`: move the data pin forward and report what changed, per system.

The change table comes from resolving with the old and the new pin (two Locks compared), never
from reading generated Nix. When nothing would change, nothing is written: no churn pull requests.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from machci.atomic import atomic_write
from machci.commands.bump_body import markdown_body
from machci.commands.bump_notes import collect
from machci.commands.bump_report import BumpResult, Change, change_table, diff_locks
from machci.commands.sync import input_digests, previous_pins, render_files
from machci.config.layers import load_project, source_options
from machci.config.model import DEFAULT_INDEX, Config, format_snapshot, parse_snapshot
from machci.config.options import SourceOptions
from machci.config.yamledit import set_depsdb_pin, set_snapshot
from machci.errors import InputError, Location
from machci.hashes import same_spelling
from machci.inputs.spec import build_spec
from machci.resolve.locking import connect, lock
from machci.sources.depsdb.github import newest_commit
from machci.sources.depsdb.tarballs import new_tree


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class _Move:
    """A new pin: the config that has it, and the edit that writes it into machci.yaml."""

    config: Config
    edit: Callable[[str], str]


def bump(
    config: Config,
    base: Path,
    options: SourceOptions,
    *,
    to: datetime | None = None,
    dry_run: bool = False,
    details: bool = False,
    advisories: bool = True,
) -> BumpResult:
    """`details`: also read release notes links and (with `advisories`) known vulnerabilities
    from the index, for the pull request body."""
    if config.path is None:
        raise InputError("machci bump needs a machci.yaml to move the pin in (see machci init)")
    where = Location.of(config.path)
    if config.data.source == "pypi-deps-db":
        move = _depsdb_move(config, options, to, where)
    else:
        move = _snapshot_move(config, to or now(), where)
    # packagesExtra's archives and git refs are looked up again even at the same data pin.
    if move is None and any(e.kind != "path" for e in config.packages_extra):
        move = _Move(config, lambda text: text)
    if move is None:  # already pinned there
        return BumpResult([], _revision(config), _revision(config), written=False)
    spec = build_spec(config, base)
    # The old lock keeps packagesExtra's pins; the new one looks archives and git refs up again.
    pins = previous_pins(config.output)
    old_lock = lock(spec, options, notices=False, pins=pins)  # only the new one's problems are news
    new_lock = lock(replace(spec, data=move.config.data), options)
    result = BumpResult(
        diff_locks(old_lock, new_lock),
        _revision(config),
        _revision(move.config),
        written=False,
    )
    if details and result.changed:
        index = spec.indexes[0] if spec.indexes else DEFAULT_INDEX
        http = connect(options, spec.indexes) if advisories else None
        result = replace(result, details=collect(result.changes, new_lock, index, http))
    if dry_run or not result.changed:
        return result
    yaml_bytes = move.edit(config.path.read_text(encoding="utf-8")).encode("utf-8")
    inputs = input_digests(move.config, spec, {config.path: yaml_bytes})
    files = render_files(move.config, new_lock, inputs)
    atomic_write(config.path, yaml_bytes)
    for path, text in files.items():
        atomic_write(path, text.encode())
    return replace(result, written=True)


def _snapshot_move(config: Config, target: datetime, where: Location) -> _Move | None:
    old_snapshot = config.data.snapshot
    if old_snapshot is not None and target < old_snapshot:
        raise InputError(
            f"the new snapshot {format_snapshot(target)} is before the current one"
            f" {format_snapshot(old_snapshot)}"
        )
    if old_snapshot == target:
        return None
    new_config = replace(config, data=replace(config.data, snapshot=target))
    return _Move(new_config, lambda text: set_snapshot(text, format_snapshot(target), where))


def _depsdb_move(
    config: Config, options: SourceOptions, to: datetime | None, where: Location
) -> _Move | None:
    """The newest commit of the database's default branch, with the NAR hash of its tarball."""
    data = config.data
    if to is not None:
        raise InputError(
            "--to is a snapshot time of the pypi source; a pypi-deps-db pin moves to the"
            f" newest commit of {data.repository}"
        )
    if data.path is not None or data.rev is None or data.sha256 is None:
        raise InputError(
            "data: path: a checkout of pypi-deps-db has no pin to move; update the checkout"
        )
    rev = newest_commit(data.repository, options.timeout)
    if rev == data.rev:
        return None
    _tree, nar = new_tree(connect(options, ()), data.repository, rev)
    sha256 = same_spelling(data.sha256, nar)
    new_config = replace(config, data=replace(data, rev=rev, sha256=sha256))
    return _Move(new_config, lambda text: set_depsdb_pin(text, rev, sha256, where))


def _revision(config: Config) -> str:
    if config.data.source == "pypi-deps-db":
        return config.data.rev or "checkout"
    return config.data.snapshot_text or "latest"


def run(args: argparse.Namespace) -> int:
    config, base = load_project(args)
    to = parse_snapshot(args.to) if args.to is not None else None
    markdown = args.format == "markdown"
    result = bump(
        config,
        base,
        source_options(args),
        to=to,
        dry_run=args.dry_run,
        details=markdown,
        advisories=args.advisories,
    )
    sys.stdout.write(markdown_body(result) if markdown else result.report())
    if result.written:
        *rest, last = [str(path) for path in (config.path, *config.written)]
        sys.stderr.write(f"machci: wrote {', '.join(rest)} and {last}\n")
    return 0


__all__ = ["BumpResult", "Change", "bump", "change_table", "diff_locks", "run"]
