"""Metadata of source distributions: static PKG-INFO when it can be trusted, else PEP 517.

Preparing metadata runs the sdist's own build backend in a child interpreter (`python -I`) with
only its build requirements on the path, installed by pip from the same index; the result is
cached by the sdist's sha256, so each sdist is prepared once per cache.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from machci.dists import metadata_is_static
from machci.errors import SourceError

# PEP 517's fallback when pyproject.toml has no [build-system] (setuptools' legacy backend).
DEFAULT_BUILD_REQUIRES = ("setuptools>=40.8.0",)
DEFAULT_BACKEND = "setuptools.build_meta:__legacy__"
HOOK_TIMEOUT = 600

# Runs inside the child interpreter: imports the backend named in argv and writes METADATA.
_HOOK = r"""
import importlib, os, shutil, sys, tempfile, zipfile
backend_name, out = sys.argv[1], sys.argv[2]
module, _, attr = backend_name.partition(":")
backend = importlib.import_module(module)
for part in filter(None, attr.split(".")):
    backend = getattr(backend, part)
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


class _Archive:
    """Read-only view of an sdist archive (tar or zip) with a single top-level directory."""

    def __init__(self, data: bytes, filename: str) -> None:
        self.filename = filename
        self.data = data
        try:
            if filename.endswith(".zip"):
                self.zip: zipfile.ZipFile | None = zipfile.ZipFile(io.BytesIO(data))
                self.tar: tarfile.TarFile | None = None
                names = self.zip.namelist()
            else:
                self.zip = None
                self.tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115
                names = self.tar.getnames()
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
            raise SourceError(f"{filename}: not a readable archive ({exc})") from exc
        tops = {PurePosixPath(n).parts[0] for n in names if PurePosixPath(n).parts}
        if len(tops) != 1:
            raise SourceError(f"{filename}: expected one top-level directory in the sdist")
        self.top = tops.pop()

    def read(self, relative: str) -> bytes | None:
        name = f"{self.top}/{relative}"
        try:
            if self.zip is not None:
                return self.zip.read(name)
            assert self.tar is not None
            member = self.tar.extractfile(name)
            return member.read() if member is not None else None
        except (KeyError, tarfile.TarError, zipfile.BadZipFile, EOFError, OSError):
            return None

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
            self.tar.extractall(destination, filter="data")
        return destination / self.top


def _build_system(archive: _Archive) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
    """(requires, backend, backend-path) from pyproject.toml, with PEP 517's defaults."""
    raw = archive.read("pyproject.toml")
    if raw is None:
        return DEFAULT_BUILD_REQUIRES, DEFAULT_BACKEND, ()
    try:
        table = tomllib.loads(raw.decode("utf-8")).get("build-system")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SourceError(f"{archive.filename}: invalid pyproject.toml ({exc})") from exc
    if not isinstance(table, dict):
        return DEFAULT_BUILD_REQUIRES, DEFAULT_BACKEND, ()
    requires = table.get("requires", list(DEFAULT_BUILD_REQUIRES))
    backend = table.get("build-backend", DEFAULT_BACKEND)
    backend_path = table.get("backend-path", [])
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise SourceError(f"{archive.filename}: [build-system].requires must be a list of strings")
    return tuple(requires), str(backend), tuple(str(p) for p in backend_path)


def _install_build_requires(
    requires: Sequence[str], target: Path, index_urls: Sequence[str]
) -> None:
    if not requires:
        return
    command = [sys.executable, "-m", "pip", "--isolated", "install", "--quiet", "--no-input"]
    command += ["--target", str(target), "--only-binary", ":all:"]
    command += ["--index-url", index_urls[0]]
    for url in index_urls[1:]:
        command += ["--extra-index-url", url]
    result = subprocess.run(
        [*command, *requires], capture_output=True, text=True, timeout=HOOK_TIMEOUT, check=False
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["pip failed"]
        raise SourceError(f"cannot install build requirements {list(requires)}: {tail[0]}")


def sdist_info(data: bytes, filename: str, index_urls: Sequence[str]) -> SdistInfo:
    """Complete metadata and build requirements of an sdist."""
    archive = _Archive(data, filename)
    requires, backend, backend_path = _build_system(archive)
    pkg_info = archive.read("PKG-INFO")
    if pkg_info is not None and metadata_is_static(pkg_info):
        return SdistInfo(pkg_info, requires)
    with tempfile.TemporaryDirectory(prefix="machci-sdist-") as tmp:
        root = Path(tmp)
        source = archive.extract(root / "src")
        site = root / "site"
        _install_build_requires(requires, site, index_urls)
        paths = [str((source / p).resolve()) for p in backend_path] + [str(site)]
        out = root / "METADATA"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_"))}
        env["PYTHONPATH"] = os.pathsep.join(paths)
        # -I ignores PYTHONPATH, so the path goes in through a tiny bootstrap instead.
        bootstrap = (
            f"import sys; sys.path[:0] = {paths!r}; exec(compile({_HOOK!r}, 'hook', 'exec'))"
        )
        try:
            result = subprocess.run(
                [sys.executable, "-I", "-c", bootstrap, backend, str(out)],
                cwd=source,
                env=env,
                capture_output=True,
                text=True,
                timeout=HOOK_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise SourceError(f"{filename}: preparing metadata timed out") from exc
        if result.returncode != 0 or not out.exists():
            tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
            raise SourceError(
                f"{filename}: the build backend failed to prepare metadata: {tail[0]}"
            )
        return SdistInfo(out.read_bytes(), requires)
