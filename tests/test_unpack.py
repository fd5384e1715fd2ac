"""Unpacking GitHub tarballs: the top-level directory's contents, and nothing that could write
outside the destination."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from machci.errors import SourceError
from machci.limits import Limit
from machci.sources.depsdb.unpack import unpack_tarball

LIMIT = Limit("unpacked data tarball", "MACHCI_MAX_UNPACKED_BYTES", 1 << 20)


@dataclass(frozen=True)
class Member:
    name: str
    kind: bytes = tarfile.REGTYPE
    data: bytes = b""
    mode: int | None = None
    link: str = ""


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **extra: Any) -> Member:
    return Member(name, kind, data, extra.get("mode"), extra.get("link", ""))


def tar(*entries: Member) -> bytes:
    """An uncompressed tarball of `entries`, in that order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for member in entries:
            info = tarfile.TarInfo(member.name)
            info.type = member.kind
            regular = member.kind == tarfile.REGTYPE
            info.mode = member.mode if member.mode is not None else 0o664 if regular else 0o775
            info.linkname = member.link
            info.size = len(member.data) if regular else 0
            archive.addfile(info, io.BytesIO(member.data) if regular else None)
    return buffer.getvalue()


def archive(*entries: Member) -> io.BytesIO:
    return io.BytesIO(gzip.compress(tar(*entries)))


def unpack(tmp_path: Path, *entries: Member, limit: Limit = LIMIT) -> Path:
    destination = tmp_path / "out"
    unpack_tarball(archive(*entries), destination, limit, "the test tarball")
    return destination


TOP = entry("owner-repo-abc1234", tarfile.DIRTYPE)


def test_unpacks_the_top_level_directory(tmp_path: Path) -> None:
    out = unpack(
        tmp_path,
        TOP,
        entry("owner-repo-abc1234/sdist", tarfile.DIRTYPE),
        entry("owner-repo-abc1234/sdist/00.json", data=b"{}"),
        entry("owner-repo-abc1234/implied/parent/file", data=b"x"),
        entry("owner-repo-abc1234/tool", data=b"#!/bin/sh\n", mode=0o775),
        entry("owner-repo-abc1234/latest", tarfile.SYMTYPE, link="sdist/00.json"),
    )
    assert (out / "sdist" / "00.json").read_bytes() == b"{}"
    assert (out / "implied" / "parent" / "file").read_bytes() == b"x"
    assert (out / "tool").stat().st_mode & 0o777 == 0o755
    assert (out / "sdist" / "00.json").stat().st_mode & 0o777 == 0o644
    assert (out / "latest").readlink() == Path("sdist/00.json")


def test_a_directory_entry_after_its_files_is_fine(tmp_path: Path) -> None:
    out = unpack(
        tmp_path,
        TOP,
        entry("owner-repo-abc1234/d/f", data=b"x"),
        entry("owner-repo-abc1234/d", tarfile.DIRTYPE),
    )
    assert (out / "d" / "f").is_file()


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([TOP, entry("owner-repo-abc1234/../evil", data=b"x")], "not a plain relative path"),
        ([TOP, entry("/etc/evil", data=b"x")], "not a plain relative path"),
        ([entry("file-first", data=b"x")], "expected one top-level directory first"),
        ([TOP, entry("another-top/file", data=b"x")], "more than one top-level entry"),
        (
            [TOP, entry("owner-repo-abc1234/out", tarfile.SYMTYPE, link="../../etc")],
            "outside the archive",
        ),
        (
            [TOP, entry("owner-repo-abc1234/abs", tarfile.SYMTYPE, link="/etc/passwd")],
            "outside the archive",
        ),
        (
            [
                TOP,
                entry("owner-repo-abc1234/dir", tarfile.SYMTYPE, link="."),
                entry("owner-repo-abc1234/dir/file", data=b"x"),
            ],
            "'dir' is not a directory",
        ),
        (
            [
                TOP,
                entry("owner-repo-abc1234/f", data=b"x"),
                entry("owner-repo-abc1234/f", data=b"y"),
            ],
            "it appears twice",
        ),
        (
            [
                TOP,
                entry("owner-repo-abc1234/f", data=b"x"),
                entry("owner-repo-abc1234/g", tarfile.LNKTYPE, link="owner-repo-abc1234/f"),
            ],
            "only files, directories and symbolic links",
        ),
        ([TOP, entry("owner-repo-abc1234/fifo", tarfile.FIFOTYPE)], "only files, directories"),
        ([TOP, entry("owner-repo-abc1234/dev", tarfile.CHRTYPE)], "only files, directories"),
    ],
)
def test_refuses_what_could_escape(tmp_path: Path, entries: list[Member], problem: str) -> None:
    with pytest.raises(SourceError, match=problem) as info:
        unpack(tmp_path, *entries)
    assert str(info.value).startswith("the test tarball: ")
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "etc").exists()


def test_refuses_more_than_the_limit(tmp_path: Path) -> None:
    small = Limit("unpacked data tarball", "MACHCI_MAX_UNPACKED_BYTES", 10)
    with pytest.raises(SourceError, match="larger than the limit of 10 bytes"):
        unpack(
            tmp_path,
            TOP,
            entry("owner-repo-abc1234/a", data=b"123456"),
            entry("owner-repo-abc1234/b", data=b"123456"),
            limit=small,
        )


def test_refuses_what_is_not_a_tarball(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a readable tarball"):
        unpack_tarball(io.BytesIO(b"<html>rate limited</html>"), tmp_path / "out", LIMIT, "x")
    cut = archive(TOP, entry("owner-repo-abc1234/a", data=b"1" * 5000)).getvalue()[:60]
    with pytest.raises(SourceError, match="not a readable tarball"):
        unpack_tarball(io.BytesIO(cut), tmp_path / "cut", LIMIT, "x")


def test_refuses_an_empty_tarball(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="the tarball is empty"):
        unpack(tmp_path)


@pytest.mark.parametrize("compress", [bz2.compress, lzma.compress, bytes])
def test_other_compressions(tmp_path: Path, compress: Callable[[bytes], bytes]) -> None:
    data = compress(tar(TOP, entry("owner-repo-abc1234/a", data=b"1")))
    unpack_tarball(io.BytesIO(data), tmp_path / "out", LIMIT, "x")
    assert (tmp_path / "out" / "a").read_bytes() == b"1"
