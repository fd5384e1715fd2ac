"""Pinned GitHub tarballs, unpacked into the cache and checked against their NAR hash.

A pin is a repository, a commit and the NAR sha256 of the unpacked tree, the way mach-nix pins
pypi-deps-db. A tree is moved into the cache, under its NAR hash, only once the hash is known
(and matched the pin): later runs, and other pins to the same content, read it without a
download.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from machci.errors import SourceError
from machci.hashes import nar_sha256, to_nix32, to_sri
from machci.sources.depsdb.unpack import unpack_tarball
from machci.sources.http import Http, redact

GITHUB = "https://github.com"
# Where tarballs are downloaded from: a GitHub Enterprise server or a mirror with GitHub's
# /OWNER/REPO/tarball/REV layout (and the test suite's loopback server).
URL_VARIABLE = "MACHCI_GITHUB_URL"


def tarball_url(repository: str, rev: str) -> str:
    base = os.environ.get(URL_VARIABLE) or GITHUB
    return f"{base.rstrip('/')}/{repository}/tarball/{rev}"


def pinned_tree(http: Http, repository: str, rev: str, nar: bytes, pinned_by: str) -> Path:
    """The tree of `repository` at `rev`, from the cache or downloaded; SourceError when its
    NAR hash is not `nar` (nothing is kept then). `pinned_by` says where the pin is written."""
    cache = http.cache
    kept = cache.tree(to_nix32(nar))
    if kept.is_dir():
        return kept
    with cache.tree_lock(to_nix32(nar)):
        if kept.is_dir():
            return kept
        url = tarball_url(repository, rev)
        with _unpacked(http, url) as (tree, actual):
            if actual != nar:
                raise SourceError(
                    f"{repository} at {rev}: the tarball's NAR hash is {to_nix32(actual)}"
                    f" ({to_sri(actual)}), but {pinned_by} pins {to_nix32(nar)}"
                    f" ({to_sri(nar)}); nothing was changed"
                )
            _keep(tree, kept)
    return kept


def new_tree(http: Http, repository: str, rev: str) -> tuple[Path, bytes]:
    """The tree of `repository` at `rev` and its NAR hash, for a pin that is being made."""
    with _unpacked(http, tarball_url(repository, rev)) as (tree, nar):
        kept = http.cache.tree(to_nix32(nar))
        with http.cache.tree_lock(to_nix32(nar)):
            if not kept.is_dir():
                _keep(tree, kept)
    return kept, nar


@contextmanager
def _unpacked(http: Http, url: str) -> Iterator[tuple[Path, bytes]]:
    """The tarball at `url` unpacked in a scratch directory, with its NAR hash; the scratch
    directory is removed afterwards, whatever was not moved out of it included."""
    scratch = Path(tempfile.mkdtemp(prefix="tarball-", dir=http.cache.temporary()))
    try:
        tree = scratch / "tree"
        with tempfile.TemporaryFile(dir=scratch) as archive:
            http.download(url, archive, http.limits.archive)
            archive.seek(0)
            unpack_tarball(archive, tree, http.limits.unpacked, redact(url))
        try:
            nar = nar_sha256(tree)
        except OSError as exc:
            raise SourceError(f"{redact(url)}: cannot hash the unpacked tree: {exc}") from exc
        yield tree, nar
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _keep(tree: Path, kept: Path) -> None:
    kept.parent.mkdir(parents=True, exist_ok=True)
    tree.rename(kept)  # atomic: a tree in the cache is always complete
