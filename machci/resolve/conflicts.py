"""Why a resolution failed: the clashing requirements with the chains that brought them in,
and why a package has no candidate at all (unknown, snapshot, version, files, Python)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from packaging.version import Version
from resolvelib.resolvers import RequirementInformation

from machci.resolve.resolution import Candidate, Req, Resolution


def explain_conflict(
    provider: Resolution,
    causes: Collection[RequirementInformation[Req, Candidate]],
    roots: Sequence[Req],
) -> str:
    """The clashing requirements, each with the chain of parents that brought it in."""
    names = sorted({c.requirement.name for c in causes})
    root_source: dict[str, str] = {r.name: r.source for r in roots}
    lines = []
    # Constraints (-c files, build constraints) only narrow the candidates: resolvelib never
    # names them as causes, so they are listed here.
    constraints = [c for name in names for c in provider.constraints.get(name, ())]
    if len(names) == 1:
        reqs = [c.requirement for c in causes] + constraints
        reason = explain_missing(provider, names[0], reqs)
        if reason:
            lines.append(f"  {reason}")
    for cause in causes:
        req = cause.requirement
        if cause.parent is None:
            lines.append(f"  {req.text} is required by {req.source}")
        else:
            chain = provider.chain(cause.parent.name, root_source)
            lines.append(
                f"  {req.text} is required by {cause.parent.name} {cause.parent.version}"
                + (f" ({chain})" if chain else "")
            )
    lines.extend(f"  {c.text} is a constraint from {c.source}" for c in constraints)
    if len(names) == 1 and len(causes) + len(constraints) > 1:
        lines.append(f"  these requirements on {names[0]} cannot all hold at once")
    return "\n".join(dict.fromkeys(lines))


def explain_missing(provider: Resolution, name: str, reqs: Sequence[Req]) -> str | None:
    """Why a package has no candidate at all: unknown, snapshot, version, files, Python."""
    project = provider.finder.every_file(name)
    if project.index is None:
        return f"no package named {name!r} exists on the index"
    if not project.files:
        if project.newer_than_snapshot:
            count = project.newer_than_snapshot
            return f"all {count} files of {name} were uploaded after the snapshot"
        if project.without_upload_time:
            return (
                f"the index gives no upload-time for {name}'s files, so the snapshot hides them all"
            )
        return f"{name} has no files on the index"
    offered = {Version(p.version) for p in provider.nixpkgs.get(name, ())}
    versions = sorted({f.version for f in project.files} | offered, reverse=True)
    matching = [v for v in versions if all(r.specifier.contains(v, prereleases=True) for r in reqs)]
    shown = ", ".join(str(v) for v in versions[:10]) + (" …" if len(versions) > 10 else "")
    if not matching:
        spec = " and ".join(sorted({str(r.specifier) or "(any)" for r in reqs}))
        return f"no version of {name} matches {spec} (available: {shown})"
    usable = {c.version for c in provider.choices_for(name)}
    if not usable.intersection(matching):
        newest = matching[0]
        files = sorted(f.filename for f in project.files if f.version == newest)
        allowed = ",".join(provider.providers.for_package(name))
        return (
            f"{name} {newest} has no file for this system and Python with providers"
            f" {allowed}; its files: {', '.join(files)}"
        )
    if provider.invalid.get(name):
        return f"{name}: " + "; ".join(provider.invalid[name][:3])
    return None
