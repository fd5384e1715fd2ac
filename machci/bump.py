"""`machci bump`: move the data pin forward and report what changed, per system.

The change table comes from resolving with the old and the new pin (two Locks compared), never
from reading generated Nix. When nothing would change, nothing is written: no churn pull requests.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from packaging.version import InvalidVersion, Version

from machci.atomic import atomic_write
from machci.config import Config, format_snapshot
from machci.errors import InputError, Location
from machci.lock import Lock
from machci.locking import lock
from machci.options import SourceOptions
from machci.spec import build_spec
from machci.sync import input_digests, render_files
from machci.yamledit import set_snapshot


@dataclass(frozen=True, order=True)
class Change:
    """One package whose pin differs, on the systems where it differs in the same way."""

    name: str
    old: str | None  # None: added
    new: str | None  # None: removed
    systems: tuple[str, ...]

    @property
    def kind(self) -> str:
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        try:
            return "upgraded" if Version(self.new) > Version(self.old) else "downgraded"
        except InvalidVersion:
            return "changed"


def diff_locks(old: Lock, new: Lock) -> list[Change]:
    """Package-level differences, grouping the systems that changed identically."""
    grouped: dict[tuple[str, str | None, str | None], list[str]] = defaultdict(list)
    systems = sorted({s.system for s in (*old.systems, *new.systems)})
    for system in systems:
        before, after = _versions(old, system), _versions(new, system)
        for name in sorted(before.keys() | after.keys()):
            if before.get(name) != after.get(name):
                grouped[(name, before.get(name), after.get(name))].append(system)
    return sorted(Change(n, o, v, tuple(s)) for (n, o, v), s in grouped.items())


def _versions(result: Lock, system: str) -> dict[str, str]:
    locked = result.system(system)
    return {p.name: p.version for p in locked.packages} if locked else {}


def change_table(changes: list[Change]) -> str:
    """A Markdown table: package | system(s) | old → new | change."""
    lines = ["| package | system(s) | old → new | change |", "|---|---|---|---|"]
    for change in changes:
        lines.append(
            f"| {change.name} | {', '.join(change.systems)} |"
            f" {change.old or '—'} → {change.new or '—'} | {change.kind} |"
        )
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class BumpResult:
    changes: list[Change]
    old_revision: str
    new_revision: str
    written: bool

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def report(self) -> str:
        if not self.changes:
            return f"Data revision {self.old_revision} is current: nothing changes.\n"
        return f"Data revision: {self.old_revision} → {self.new_revision}\n\n" + change_table(
            self.changes
        )


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def bump(
    config: Config,
    base: Path,
    options: SourceOptions,
    *,
    to: datetime | None = None,
    dry_run: bool = False,
) -> BumpResult:
    if config.path is None:
        raise InputError("machci bump needs a machci.yaml to move the pin in (see machci init)")
    target = to or now()
    old_snapshot = config.data.snapshot
    if old_snapshot is not None and target < old_snapshot:
        raise InputError(
            f"the new snapshot {format_snapshot(target)} is before the current one"
            f" {format_snapshot(old_snapshot)}"
        )
    if old_snapshot == target:  # already pinned to that instant
        return BumpResult([], _revision(config), _revision(config), written=False)
    new_config = replace(config, data=replace(config.data, snapshot=target))
    spec = build_spec(config, base)
    old_lock = lock(spec, options, notices=False)  # only the new lock's problems are news
    new_lock = lock(replace(spec, config=new_config), options)
    result = BumpResult(
        diff_locks(old_lock, new_lock),
        _revision(config),
        _revision(new_config),
        written=False,
    )
    if dry_run or not result.changed:
        return result
    yaml_text = set_snapshot(
        config.path.read_text(encoding="utf-8"), format_snapshot(target), Location.of(config.path)
    )
    yaml_bytes = yaml_text.encode("utf-8")
    inputs = input_digests(new_config, spec, {config.path: yaml_bytes})
    files = render_files(new_config, new_lock, inputs)
    atomic_write(config.path, yaml_bytes)
    for path, text in files.items():
        atomic_write(path, text.encode())
    return replace(result, written=True)


def _revision(config: Config) -> str:
    return config.data.snapshot_text or "latest"
