"""Unpacking a GitHub tarball safely: its one top-level directory, and nothing outside it.

The tree unpacked is what `nix-prefetch-url --unpack` and `fetchTarball` hash (the contents of
the single top-level directory), so its NAR hash can be checked against a pin. The archive
arrives before that check can be made: member names that could lead outside the destination
(absolute, `..`, beneath a symbolic link), links pointing outside it, hard links, devices and
sparse files are refused, and the unpacked size and the number of entries are capped.
"""

from __future__ import annotations

import lzma
import os
import posixpath
import tarfile
import zlib
from pathlib import Path
from typing import BinaryIO

from machci.errors import SourceError
from machci.limits import Limit

MAX_ENTRIES = 1_000_000  # pypi-deps-db and its URL index hold a few hundred files each
_CHUNK = 1 << 20


class _Unpacker:
    def __init__(self, destination: Path, limit: Limit, where: str) -> None:
        self.destination = destination
        self.limit = limit
        self.where = where
        self.top: str | None = None
        self.seen: dict[str, str] = {}  # relative path -> "dir" | "file" | "link"
        self.size = 0

    def refuse(self, member: tarfile.TarInfo, problem: str) -> SourceError:
        return SourceError(f"{self.where}: refused to unpack {member.name!r}: {problem}")

    def relative(self, member: tarfile.TarInfo) -> str | None:
        """The member's path below the top-level directory; None for that directory itself."""
        parts = member.name.removeprefix("./").split("/")
        if member.name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise self.refuse(member, "not a plain relative path")
        if self.top is None:
            if len(parts) > 1 or not member.isdir():
                raise SourceError(f"{self.where}: expected one top-level directory first")
            self.top = parts[0]
            self.destination.mkdir(mode=0o755)
            return None
        if parts[0] != self.top:
            raise SourceError(
                f"{self.where}: more than one top-level entry ({self.top!r}, {parts[0]!r})"
            )
        if len(parts) == 1:
            raise self.refuse(member, "the top-level directory appears twice")
        relative = "/".join(parts[1:])
        if relative in self.seen and not (member.isdir() and self.seen[relative] == "dir"):
            raise self.refuse(member, "it appears twice")
        for end in range(2, len(parts)):
            parent = "/".join(parts[1:end])
            if self.seen.setdefault(parent, "dir") != "dir":  # implied directories count too
                raise self.refuse(member, f"{parent!r} is not a directory")
        return relative

    def add(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        relative = self.relative(member)
        if relative is None:
            return
        if len(self.seen) >= MAX_ENTRIES:
            raise SourceError(f"{self.where}: more than {MAX_ENTRIES} entries")
        path = self.destination / relative
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if member.isdir():
            path.mkdir(mode=0o755, exist_ok=True)
            self.seen[relative] = "dir"
        elif member.issym():
            target = member.linkname
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(relative), target))
            if not target or target.startswith("/") or resolved.split("/")[0] == "..":
                raise self.refuse(member, f"its link target {target!r} is outside the archive")
            path.symlink_to(target)
            self.seen[relative] = "link"
        elif member.isreg() and not member.issparse():
            self.size += member.size
            if self.size > self.limit.size:
                raise self.limit.refuse(self.where)
            self.write(archive, member, path)
            self.seen[relative] = "file"
        else:
            raise self.refuse(member, "only files, directories and symbolic links are unpacked")

    def write(self, archive: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> None:
        source = archive.extractfile(member)
        assert source is not None  # a regular file
        mode = 0o755 if member.mode & 0o100 else 0o644
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        with source, os.fdopen(os.open(path, flags, mode), "wb") as target:
            while chunk := source.read(_CHUNK):
                target.write(chunk)


def unpack_tarball(archive: BinaryIO, destination: Path, limit: Limit, where: str) -> None:
    """Unpack the contents of the archive's top-level directory into `destination`, which must
    not exist yet (its parent must). `where` names the archive in messages."""
    unpacker = _Unpacker(destination, limit, where)
    try:
        with tarfile.open(fileobj=archive, mode="r|*") as stream:
            for member in stream:
                unpacker.add(stream, member)
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise SourceError(f"{where}: not a readable tarball ({exc})") from exc
    except OSError as exc:  # bz2 reports a damaged stream so, as the file system reports
        raise SourceError(f"{where}: cannot unpack: {exc.strerror or exc}") from exc
    if unpacker.top is None:
        raise SourceError(f"{where}: the tarball is empty")
