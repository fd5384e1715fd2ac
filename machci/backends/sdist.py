"""Metadata, build requirements and build needs of source distributions.

Every sdist's backend is asked for its dynamic build requirements (PEP 517
`get_requires_for_build_wheel`), because pypa/build checks those too when nixpkgs builds the
sdist. Metadata comes from a static PKG-INFO when it can be trusted, else from the backend's
`prepare_metadata_for_build_wheel`. Each hook runs in a child interpreter (`python -I`) in the
sandbox (sandbox.py), with only the build requirements on the path, installed by pip from the
same index, and the sdist extracted in the run's work area (workarea.py). Build needs are guessed
from the archive's files (native.py). The result is cached by the sdist's sha256 and the build
environment (sources/pypi/snapshot.py), so each sdist is asked once per cache.

When `get_requires_for_build_wheel` fails (it exits with an error, times out or answers nonsense),
the static `[build-system].requires` stand in for its answer, and the failure is reported
(`SdistInfo.requires_failure`): such a query often needs what only the Nix build provides (rpy2's
backend runs `R RHOME`), and nixpkgs' build asks the backend again where it has those inputs. When
the metadata itself cannot be prepared there is nothing to stand in: BackendError.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.requirements import InvalidRequirement, Requirement

from machci.backends.buildenv import BackendError, BuildEnvironments
from machci.backends.native import build_needs
from machci.backends.sandbox import AnswerFile, Sandbox
from machci.backends.treemeta import static_metadata
from machci.dists import InvalidMetadata, classify, why_not_static
from machci.errors import SourceError
from machci.limits import Limits

# PEP 517's fallback when pyproject.toml has no [build-system] (setuptools' legacy backend).
DEFAULT_BUILD_REQUIRES = ("setuptools>=40.8.0",)
DEFAULT_BACKEND = "setuptools.build_meta:__legacy__"

# Runs inside the child interpreter: imports the backend named in argv and calls one hook,
# "requires" (a JSON list; [] when the backend lacks the hook, as PEP 517 says) or "metadata".
_HOOK = r"""
import importlib, json, os, shutil, sys, tempfile, zipfile
hook, backend_name, out = sys.argv[1], sys.argv[2], sys.argv[3]
module, _, attr = backend_name.partition(":")
backend = importlib.import_module(module)
for part in filter(None, attr.split(".")):
    backend = getattr(backend, part)
if hook == "requires":
    get_requires = getattr(backend, "get_requires_for_build_wheel", None)
    requires = get_requires({}) if get_requires is not None else []
    listed = isinstance(requires, (list, tuple))
    data = json.dumps(list(requires) if listed else repr(requires)).encode()
else:
    work = tempfile.mkdtemp()
    if hasattr(backend, "prepare_metadata_for_build_wheel"):
        info = backend.prepare_metadata_for_build_wheel(work, {})
        path = os.path.join(work, info, "METADATA")
        data = open(path, "rb").read()
    else:
        wheel = backend.build_wheel(work, {})
        with zipfile.ZipFile(os.path.join(work, wheel)) as zf:
            name = next(n for n in zf.namelist()
                        if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
            data = zf.read(name)
open(out, "wb").write(data)
"""


@dataclass(frozen=True)
class SdistInfo:
    metadata: bytes  # a METADATA/PKG-INFO text with complete Requires-Dist
    build_requires: tuple[str, ...]
    build_needs: tuple[str, ...]  # what nixpkgs' plain builder lacks (see native.py)
    # Why the backend's own build requirements are missing (its query failed), else None.
    requires_failure: str | None = None
    # Whether that failure may not happen again (a time limit, pip): then it is not cached.
    transient: bool = False


class _Archive:
    """Read-only view of an sdist archive (tar or zip) with a single top-level directory."""

    # Far above any real sdist (thousands of files); each tar member costs about a kilobyte of
    # memory, and a few compressed bytes make one.
    MAX_MEMBERS = 100_000

    def __init__(self, data: bytes, filename: str) -> None:
        self.filename = filename
        self.data = data
        self.limit = Limits.from_environment().metadata
        try:
            if filename.endswith(".zip"):
                self.zip: zipfile.ZipFile | None = zipfile.ZipFile(io.BytesIO(data))
                self.tar: tarfile.TarFile | None = None
                names = self.zip.namelist()
            else:
                self.zip = None
                self.tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115
                names = self._tar_names(self.tar)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
            raise SourceError(f"{filename}: not a readable archive ({exc})") from exc
        paths = [PurePosixPath(n).parts for n in names]
        tops = {parts[0] for parts in paths if parts}
        if len(tops) != 1:
            raise SourceError(f"{filename}: expected one top-level directory in the sdist")
        self.top = tops.pop()
        # Member paths relative to the top directory, as `read` takes them.
        self.members = tuple("/".join(parts[1:]) for parts in paths if len(parts) > 1)

    def _tar_names(self, tar: tarfile.TarFile) -> list[str]:
        """The members' names, counted as they are read so that their number stays bounded."""
        names = []
        for member in tar:
            names.append(member.name)
            if len(names) > self.MAX_MEMBERS:
                raise SourceError(
                    f"{self.filename}: more than {self.MAX_MEMBERS} members; no sdist is that large"
                )
        return names

    def read(self, relative: str) -> bytes | None:
        """A member's bytes (None when it is missing or unreadable), read at most to the
        metadata limit: a few compressed bytes can inflate to gigabytes (a tar member's size
        is whatever its header says, and zipfile inflates until the stream ends)."""
        name = f"{self.top}/{relative}"
        where = f"{self.filename}: {relative}"
        try:
            if self.zip is not None:
                declared = self.zip.getinfo(name).file_size
                if declared > self.limit.size:
                    raise self.limit.refuse(where, declared)
                with self.zip.open(name) as handle:
                    data = handle.read(self.limit.size + 1)
            else:
                assert self.tar is not None
                info = self.tar.getmember(name)
                if info.isfile() and info.size > self.limit.size:
                    raise self.limit.refuse(where, info.size)
                member = self.tar.extractfile(info)
                if member is None:
                    return None
                with member:
                    data = member.read(self.limit.size + 1)
        except (KeyError, tarfile.TarError, zipfile.BadZipFile, EOFError, OSError):
            return None
        if len(data) > self.limit.size:
            raise self.limit.refuse(where)
        return data

    def extract(self, destination: Path) -> Path:
        if self.zip is not None:
            for name in self.zip.namelist():
                target = (destination / name).resolve()
                if not target.is_relative_to(destination.resolve()):
                    raise SourceError(f"{self.filename}: archive member {name!r} escapes the tree")
            self.zip.extractall(destination)  # noqa: S202 (members checked above)
        else:
            assert self.tar is not None
            # The "data" filter refuses links, devices and paths outside the destination.
            try:
                self.tar.extractall(destination, filter="data")
            except tarfile.FilterError as exc:
                member = exc.tarinfo.name
                raise SourceError(
                    f"{self.filename}: archive member {member!r} escapes the tree ({exc})"
                ) from exc
            except (tarfile.TarError, OSError) as exc:
                raise SourceError(f"{self.filename}: cannot unpack the archive ({exc})") from exc
        return destination / self.top


def _build_system(archive: _Archive) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
    """(requires, backend, backend-path) from pyproject.toml, with PEP 517's defaults."""
    raw = archive.read("pyproject.toml")
    if raw is None:
        return DEFAULT_BUILD_REQUIRES, DEFAULT_BACKEND, ()
    try:
        table = tomllib.loads(raw.decode("utf-8")).get("build-system")
    # RecursionError: tomllib recurses once per nested array or inline table.
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise SourceError(f"{archive.filename}: invalid pyproject.toml ({exc})") from exc
    if not isinstance(table, dict):
        return DEFAULT_BUILD_REQUIRES, DEFAULT_BACKEND, ()
    requires = table.get("requires", list(DEFAULT_BUILD_REQUIRES))
    backend = table.get("build-backend", DEFAULT_BACKEND)
    backend_path = table.get("backend-path", [])
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise SourceError(f"{archive.filename}: [build-system].requires must be a list of strings")
    return tuple(requires), str(backend), tuple(str(p) for p in backend_path)


@dataclass(frozen=True)
class _Backend:
    """An sdist's PEP 517 backend, extracted and ready to be called in the sandbox."""

    filename: str
    name: str
    work: Path  # this sdist's scratch directory
    source: Path  # the extracted tree, the hooks' working directory
    backend_path: tuple[str, ...]

    def call(self, hook: str, sites: Sequence[Path], sandbox: Sandbox, doing: str) -> bytes:
        """Run one hook of `_HOOK` with `sites` on the path; `doing` names it in errors. The
        answer is read from the file made for it, at most to the metadata limit."""
        paths = [str((self.source / p).resolve()) for p in self.backend_path]
        paths += [str(site) for site in sites]
        out = AnswerFile(self.work / f"{hook}.out")
        # -I ignores PYTHONPATH (which the sandbox does not pass anyway), so the path goes in
        # through a tiny bootstrap.
        bootstrap = (
            f"import sys; sys.path[:0] = {paths!r}; exec(compile({_HOOK!r}, 'hook', 'exec'))"
        )
        command = [sys.executable, "-I", "-c", bootstrap, hook, self.name, str(out.path)]
        outcome = sandbox.run(command, cwd=self.source, scratch=self.work, readable=sites)
        if outcome.returncode is None:
            raise BackendError(
                f"{self.filename}: {doing} timed out after {sandbox.timeout:g} s (--timeout)",
                outcome.tail,
                transient=True,
            )
        answer = b""
        if outcome.returncode == 0:
            where = f"{self.filename}: {doing}: its answer"
            try:
                answer = out.read(Limits.from_environment().metadata, where)
            except BackendError:
                raise
            except SourceError as exc:  # replaced, or too large: the backend's doing
                raise BackendError(exc.message, outcome.tail) from exc
        if not answer:
            reason = outcome.last_line or "no output"
            raise BackendError(f"{self.filename}: {doing} failed: {reason}", outcome.tail)
        if hook == "requires":  # JSON, checked here so that no garbage reaches its parser
            try:
                json.loads(answer)
            except (ValueError, RecursionError) as exc:
                raise BackendError(
                    f"{self.filename}: {doing}: its answer is not JSON ({exc})", outcome.tail
                ) from exc
        return answer


def _dynamic_requires(
    backend: _Backend, sites: Sequence[Path], sandbox: Sandbox
) -> tuple[str, ...]:
    """What `get_requires_for_build_wheel({})` answers, checked to be requirement strings."""
    raw = backend.call(
        "requires", sites, sandbox, "asking the build backend for its build requirements"
    )
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = raw[:200]
    if not isinstance(answer, list) or not all(isinstance(r, str) for r in answer):
        raise SourceError(
            f"{backend.filename}: get_requires_for_build_wheel answered {answer!r},"
            " not a list of strings"
        )
    for text in answer:
        try:
            Requirement(text)
        except InvalidRequirement as exc:
            raise SourceError(
                f"{backend.filename}: the build backend asks for an invalid build requirement"
                f" {text!r}"
            ) from exc
    return tuple(answer)


def _site(environments: BuildEnvironments, requires: tuple[str, ...], filename: str) -> Path:
    try:
        return environments.site(requires)
    except BackendError as exc:
        raise BackendError(f"{filename}: {exc.message}", exc.tail, transient=exc.transient) from exc


def sdist_info(
    data: bytes,
    filename: str,
    environments: BuildEnvironments | None,
    *,
    tree: bool = False,
) -> SdistInfo:
    """Complete metadata, build requirements (static, then the backend's own) and build needs
    of an sdist. Without `environments` (building is off) no backend runs: the metadata must be
    static, else InvalidMetadata, and the build requirements are the static ones alone.

    A `tree` (a source checkout packed as an archive, not an sdist) has no PKG-INFO to trust
    as a rule; its pyproject.toml or setup.cfg may state the metadata instead (treemeta.py).
    """
    archive = _Archive(data, filename)
    static, name, backend_path = _build_system(archive)
    pkg_info = archive.read("PKG-INFO")
    dynamic_because = "it has no PKG-INFO" if pkg_info is None else why_not_static(pkg_info)
    trusted = pkg_info if dynamic_because is None else None
    if tree and trusted is None:
        trusted = static_metadata(archive.read)
        if trusted is None:
            dynamic_because = "neither pyproject.toml nor setup.cfg states it all"
    failure: SourceError | None = None
    if environments is not None:
        try:
            metadata, requires, failure = _ask_backend(
                archive, static, name, backend_path, trusted, environments
            )
        except BackendError as exc:
            raise exc.building_with(static) from exc
    elif trusted is not None:
        metadata, requires = trusted, static
    else:
        parsed = classify(filename)
        label = f"{parsed[0]} {parsed[1]}" if parsed is not None else filename
        raise InvalidMetadata(
            f"{label}: its metadata is not static ({dynamic_because}), and building is off"
            " (build: false); allow a wheel (providers), pin a version with static metadata,"
            " or turn building on"
        )
    return SdistInfo(
        metadata,
        requires,
        build_needs(archive.read, archive.members, requires, name),
        failure.message.removeprefix(f"{filename}: ") if failure is not None else None,
        isinstance(failure, BackendError) and failure.transient,
    )


def _ask_backend(
    archive: _Archive,
    static: tuple[str, ...],
    name: str,
    backend_path: tuple[str, ...],
    trusted: bytes | None,
    environments: BuildEnvironments,
) -> tuple[bytes, tuple[str, ...], SourceError | None]:
    """(metadata, build requirements, why the backend's own are missing): `trusted` metadata or
    the backend's, and the static requirements followed by the backend's own, or the static ones
    alone when asking for those failed. BackendError when the metadata cannot be prepared."""
    filename = archive.filename
    work = environments.work.directory("sdist-")
    try:
        backend = _Backend(filename, name, work, archive.extract(work / "src"), backend_path)
        sandbox = environments.sandbox
        try:
            sites = [_site(environments, static, filename)]
        except BackendError as exc:
            if trusted is None:
                raise
            return trusted, static, exc
        dynamic: tuple[str, ...] = ()
        failure: SourceError | None = None
        try:
            dynamic = _dynamic_requires(backend, sites, sandbox)
        except SourceError as exc:  # it failed, or answered no list of requirements
            failure = exc
        metadata = trusted
        if metadata is None:
            # As pypa/build does: the backend's own requirements are installed before it builds.
            sites.insert(0, _site(environments, dynamic, filename))
            metadata = backend.call(
                "metadata", sites, sandbox, "preparing metadata with the build backend"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return metadata, tuple(dict.fromkeys((*static, *dynamic))), failure
