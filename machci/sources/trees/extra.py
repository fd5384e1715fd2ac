"""Packages from outside the index (packagesExtra, the project itself), prepared for resolving.

Each source is turned into one archive of its tree — a local directory packed as it is, an
archive URL downloaded, a git revision exported — and read like an sdist (sdist.py): static
metadata from pyproject.toml or setup.cfg when they state it, else the build backend, under the
same sandbox and `build: false` rule. What the lock records pins it: the archive's sha256, the
git commit, or the directory relative to the generated file (its files are the header's inputs).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from machci.backends.buildenv import BackendError, BuildEnvironments
from machci.backends.failures import printable
from machci.backends.sdist import sdist_info
from machci.config.model import ExtraSource
from machci.dists import (
    DistFile,
    DistMetadata,
    InvalidMetadata,
    parse_metadata,
    parse_requirement_strings,
)
from machci.errors import SourceError
from machci.lock.model import EXCLUDED, LockedSource
from machci.notices import warn
from machci.redaction import redact, strip_credentials
from machci.sources.http import Http

# The files of a tree that state its metadata: a local tree's header inputs.
METADATA_FILES = ("pyproject.toml", "setup.cfg", "setup.py", "PKG-INFO")
_COMMIT = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")  # SHA-1, or SHA-256 repositories
# Transports git may use for packagesExtra (no ext::, no fd::).
_GIT_PROTOCOLS = "file:git:http:https:ssh"


@dataclass(frozen=True)
class PreparedSource:
    """An extra source as the resolver and the lock see it."""

    extra: ExtraSource
    name: NormalizedName
    version: Version
    metadata: DistMetadata  # with the source's build requirements and build needs
    locked: LockedSource
    digest: str  # sha256 of the archive read (identifies it in this run)

    @property
    def file(self) -> DistFile:
        return DistFile(
            self.name,
            self.version,
            self.extra.kind,
            f"{self.name}-{self.version} ({self.extra.kind})",
            self.locked.location,
            self.digest,
        )

    def root(self) -> Requirement:
        return root_requirement(self.extra, self.name, str(self.version))


def root_requirement(extra: ExtraSource, name: str, version: str) -> Requirement:
    """The root a package of packagesExtra is: exactly its version, with its extras."""
    extras = f"[{','.join(sorted(extra.extras))}]" if extra.extras else ""
    return Requirement(f"{name}{extras}=={version}")


def request_of(extra: ExtraSource, output: Path) -> tuple[str, str, str | None]:
    """What the lock records an entry asked for (LockedSource.request): a tree by its path
    relative to the generated file, an archive or repository by its URL (and git's rev)."""
    if extra.kind == "path":
        return (
            "path",
            Path(os.path.relpath(extra.location, output.parent.resolve())).as_posix(),
            None,
        )
    return (extra.kind, strip_credentials(extra.location), extra.rev)


def metadata_inputs(extra: ExtraSource) -> list[Path]:
    """The files of a local tree whose edits can change what it resolves to."""
    if extra.kind != "path":
        return []
    return [
        Path(extra.location) / f for f in METADATA_FILES if (Path(extra.location) / f).is_file()
    ]


def prepare(
    extras: Sequence[ExtraSource],
    http: Http,
    environments: BuildEnvironments | None,
    output: Path,
    timeout: float,
    pins: Mapping[tuple[str, str, str | None], LockedSource],
) -> tuple[PreparedSource, ...]:
    """Every extra source read and pinned; a source that cannot be is one error naming it.

    `pins` are the archives' hashes and git commits of the previous lock, by request: an
    archive or ref asked for again keeps its pin, so the same inputs give the same file.
    """
    prepared = []
    for extra in extras:
        request = request_of(extra, output)
        try:
            found = _prepare(extra, http, environments, output, timeout, pins.get(request))
            prepared.append(found)
        except (SourceError, InvalidMetadata) as exc:
            text = exc.message if isinstance(exc, SourceError) else str(exc)
            if isinstance(exc, BackendError) and exc.tail:
                text += "\n  last lines of output:"
                text += "".join(f"\n    | {printable(line)}" for line in exc.tail)
            raise SourceError(f"packagesExtra: {_label(extra)}: {text}", extra.where) from exc
    names: dict[str, ExtraSource] = {}
    for source in prepared:
        if source.name in names:
            raise SourceError(
                f"packagesExtra: {_label(names[source.name])} and {_label(source.extra)} are"
                f" both {source.name}",
                source.extra.where,
            )
        names[source.name] = source.extra
    return tuple(prepared)


def _label(extra: ExtraSource) -> str:
    return extra.location if extra.kind == "path" else redact(extra.location)


def _prepare(
    extra: ExtraSource,
    http: Http,
    environments: BuildEnvironments | None,
    output: Path,
    timeout: float,
    pinned: LockedSource | None,
) -> PreparedSource:
    if extra.kind == "path":
        archive = pack_tree(Path(extra.location), http.limits.distribution.size)
        locked = LockedSource("path", request_of(extra, output)[1])
    elif extra.kind == "url":
        if pinned is not None and pinned.sha256 is not None:
            archive = http.file(extra.location, pinned.sha256)  # from the cache, or checked
        else:
            archive = http.unpinned(extra.location)
            http.cache.put_blob(hashlib.sha256(archive).hexdigest(), archive)
        sha256 = hashlib.sha256(archive).hexdigest()
        locked = LockedSource("url", strip_credentials(extra.location), sha256=sha256)
    else:
        if pinned is not None and pinned.rev is not None:
            commit, ref = pinned.rev, pinned.ref
        else:
            commit, ref = resolve_rev(extra.location, extra.rev, timeout)
        archive = export_commit(extra.location, commit, timeout)
        locked = LockedSource(
            "git", strip_credentials(extra.location), rev=commit, ref=ref, requested=extra.rev
        )
    filename = "source.zip" if archive[:2] == b"PK" else "source.tar.gz"
    if locked.kind == "url":
        locked = replace(locked, archive=filename)
    info = sdist_info(archive, filename, environments, tree=True)
    if info.requires_failure is not None:
        warn(
            f"packagesExtra: {_label(extra)}: {info.requires_failure}; locked with its static"
            " [build-system].requires instead"
        )
    metadata = parse_metadata(info.metadata)
    requires_dist = metadata.requires_dist
    if extra.requirements is not None:
        requires_dist = extra.requirements
    requires_dist = (*requires_dist, *extra.requirements_extra)
    metadata = replace(metadata, requires_dist=tuple(requires_dist)).with_build(
        parse_requirement_strings(list(info.build_requires)), info.build_needs
    )
    return PreparedSource(
        extra,
        canonicalize_name(metadata.name),
        metadata.version,
        metadata,
        locked,
        hashlib.sha256(archive).hexdigest(),
    )


def tree_files(root: Path) -> Iterator[Path]:
    """The regular files of a source tree, sorted, without EXCLUDED names or symbolic links."""
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in EXCLUDED and not d.endswith(".egg-info"))
        for name in sorted(files):
            path = Path(directory) / name
            if not path.is_symlink() and path.is_file():
                yield path


def pack_tree(root: Path, limit: int) -> bytes:
    """A directory as a deterministic tar.gz with one top-level directory, as an sdist."""
    if not root.is_dir():
        raise SourceError("not a directory")
    buffer = io.BytesIO()
    size = 0
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as archive:
        for path in tree_files(root):
            data = path.read_bytes()
            size += len(data)
            if size > limit:
                raise SourceError(f"the tree holds more than {limit} bytes")
            info = tarfile.TarInfo("source/" + path.relative_to(root).as_posix())
            info.size = len(data)
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _git(args: Sequence[str], timeout: float, cwd: Path | None = None) -> bytes:
    """Run git without a terminal, config from the user's files, or transports beyond the
    usual ones; a failure is its last line of output, with credentials hidden."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ALLOW_PROTOCOL": _GIT_PROTOCOLS,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise SourceError("git is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise SourceError(f"git {args[0]} timed out after {timeout:g} s (--timeout)") from exc
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"]
        raise SourceError(f"git {args[0]} failed: {redact(lines[-1])}")
    return done.stdout


def resolve_rev(url: str, rev: str | None, timeout: float) -> tuple[str, str | None]:
    """(commit, the ref it was found under): a full commit is taken as given, anything else
    (a branch, a tag, or nothing for the remote's HEAD) is looked up with ls-remote."""
    if rev is not None and _COMMIT.fullmatch(rev):
        return rev, None
    wanted = rev or "HEAD"
    listing = _git(["ls-remote", "--", url, wanted], timeout).decode("utf-8", "replace")
    refs: dict[str, str] = {}
    for line in listing.splitlines():
        commit, _, ref = line.partition("\t")
        refs[ref] = commit
    for ref in (wanted, f"refs/heads/{wanted}", f"refs/tags/{wanted}^{{}}", f"refs/tags/{wanted}"):
        if ref in refs:
            if not _COMMIT.fullmatch(refs[ref]):
                raise SourceError(f"the repository answered {refs[ref]!r} for {wanted!r}")
            return refs[ref], None if ref == "HEAD" else ref.removesuffix("^{}")
    raise SourceError(f"the repository has no branch or tag {wanted!r}")


def export_commit(url: str, commit: str, timeout: float) -> bytes:
    """The tree of one commit as a tar.gz (no history, no .git)."""
    with tempfile.TemporaryDirectory(prefix="machci-git-") as scratch:
        work = Path(scratch)
        _git(["init", "-q", "--bare", str(work)], timeout)
        _git(["fetch", "-q", "--depth", "1", "--", url, commit], timeout, cwd=work)
        return _git(["archive", "--format=tar.gz", "--prefix=source/", commit], timeout, cwd=work)
