"""What a bump found: the package changes, and what the index says about the releases.

Kept apart from `bump` (which resolves and writes) and `bump_body` (which renders) so that the
Action's publishing step, which holds the token, reads the result without importing the resolver
into a cycle, and both renderings read the same data.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from packaging.version import InvalidVersion, Version

from machci.lock.model import Lock, LockedPackage


@dataclass(frozen=True)
class Advisory:
    """A known vulnerability as the index's JSON API lists it (untrusted text)."""

    id: str
    summary: str
    link: str | None


@dataclass(frozen=True)
class ReleaseNotes:
    """What the index says about one change: where to read about it, what it fixes or opens."""

    link: str | None = None
    fixed: tuple[Advisory, ...] = ()
    introduced: tuple[Advisory, ...] = ()


@dataclass(frozen=True)
class Details:
    """Everything the pull request body shows besides the change table.

    `notes` is keyed by package name; `edges` are (dependent, dependency) pairs of the new
    lock that end at a changed package; `advisories` says why advisories are missing, if they are.
    """

    index: str = "the index"
    notes: dict[str, ReleaseNotes] = field(default_factory=dict)
    edges: tuple[tuple[str, str], ...] = ()
    advisories: str | None = None

    @property
    def security(self) -> bool:
        """The bump fixes at least one known vulnerability."""
        return any(note.fixed for note in self.notes.values())


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
    """Each package's version, and for an archive or git source what pins it: a new commit of
    the same version is a change too."""
    locked = result.system(system)
    return {p.name: _pinned_version(p) for p in locked.packages} if locked else {}


def _pinned_version(package: LockedPackage) -> str:
    source = package.source
    if source is not None and source.rev is not None:
        return f"{package.version} ({source.rev[:12]})"
    if source is not None and source.sha256 is not None:
        return f"{package.version} (sha256 {source.sha256[:12]})"
    return package.version


_CELL = re.compile(r"([\\`|\[\]<>])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def cell(text: str) -> str:
    """A table cell of untrusted text: it cannot end the cell, the row, or start a link or tag."""
    return _CELL.sub(r"\\\1", _CONTROL.sub(" ", text))


def change_table(changes: list[Change]) -> str:
    """A Markdown table: package | system(s) | old → new | change."""
    lines = ["| package | system(s) | old → new | change |", "|---|---|---|---|"]
    for change in changes:
        lines.append(
            f"| {cell(change.name)} | {cell(', '.join(change.systems))} |"
            f" {cell(change.old or '—')} → {cell(change.new or '—')} | {change.kind} |"
        )
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class BumpResult:
    changes: list[Change]
    old_revision: str
    new_revision: str
    written: bool
    details: Details = field(default_factory=Details)

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def report(self) -> str:
        if not self.changes:
            return f"Data revision {self.old_revision} is current: nothing changes.\n"
        return f"Data revision: {self.old_revision} → {self.new_revision}\n\n" + change_table(
            self.changes
        )
