"""The lock a generated file records, taken when the file is in sync: `machci why` then answers
without the resolver and without network.

default.nix records each system's packages and the names of its roots, not the requirement lines
the roots come from. Those are read again from the requirement files, which the header vouches
for, and each system keeps the lines whose markers apply to it, as resolving does; packagesExtra's
roots come from machci.yaml and the header's pin lines, which name the package each entry
became. When the names are not the ones the file records, the file is not used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from machci.commands.check import inspect, read_generated
from machci.commands.sync import recorded_sources
from machci.config.model import Config
from machci.errors import InputError
from machci.inputs.requirements import RequirementLine
from machci.inputs.spec import Spec
from machci.lock.model import Lock, LockedPackage, SystemLock
from machci.nix.recorded import NotRecorded, read_recorded
from machci.nix.settings import settings_digest
from machci.notices import warn
from machci.redaction import strip_credentials
from machci.resolve.assembly import root_entries
from machci.resolve.provider import root_requirements
from machci.sources.trees.extra import request_of, root_requirement


def _extra_lines(
    spec: Spec, names: Mapping[tuple[str, str, str | None], str], packages: Iterable[LockedPackage]
) -> list[RequirementLine] | None:
    """The roots packagesExtra adds, as resolving would write them; None when the file does not
    say which package an entry became."""
    versions = {p.name: p.version for p in packages}
    lines = []
    for extra in spec.packages_extra:
        name = names.get(request_of(extra, spec.output))
        if name is None or name not in versions:
            return None
        lines.append(RequirementLine(root_requirement(extra, name, versions[name]), extra.where))
    return lines


def synced_lock(spec: Spec, config: Config) -> Lock | None:
    """What the generated file records, or None when it cannot say: missing, out of sync (a
    warning says so when machci.yaml alone was to make it), not machci's or unreadable."""
    output = config.output
    try:
        parsed = read_generated(output)
    except InputError:  # not machci's file, or a newer machci's: resolving never needed it
        return None
    if parsed is None:
        return None
    if inspect(output, settings_digest(config, output), parsed).problems:
        if config.path is not None and not config.overridden:
            warn(
                f"{output} is out of sync, so this answer comes from resolving again"
                " (`machci check` says what changed)"
            )
        return None
    try:
        recorded = read_recorded(parsed[1])
    except NotRecorded:
        return None
    names = {s.request: n for s, n in recorded_sources(parsed[0].pins) if n is not None}
    systems = []
    for target in spec.targets:
        system = recorded.get(target.system)
        if system is None:
            return None
        extra = _extra_lines(spec, names, system.packages)
        if extra is None:
            return None
        lines = [*extra, *spec.root_lines]
        roots = root_entries(root_requirements(target, lines, spec.source_of))
        if sorted({root.name for root in roots}) != list(system.roots):
            return None
        systems.append(SystemLock(target.system, target.python, system.packages, roots))
    if len(systems) != len(recorded):
        return None
    return Lock(tuple(systems), strip_credentials(spec.indexes[0]), spec.data.snapshot_text)
