"""Nix base32, the sha256 spellings Nix accepts, and NAR hashes of trees (checked against
`nix-hash` where it is installed, and against its recorded answers everywhere)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from machci.errors import InputError
from machci.hashes import (
    from_nix32,
    nar_sha256,
    parse_sha256,
    same_spelling,
    to_nix32,
    to_sri,
)

EMPTY = hashlib.sha256(b"").digest()
# `nix-hash --type sha256 --to-base32` of the sha256 of nothing (Nix 2.8).
EMPTY_NIX32 = "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
# `nix-hash --type sha256 --base32 DIR` of the tree `make_tree` writes (Nix 2.8).
TREE_NIX32 = "0lzmghgi8b8yvvnvrrv9lqd63m5v3p2hddd4ra2y1kkj17ndvha0"


def make_tree(root: Path) -> Path:
    """Every kind of NAR node: files (empty, executable, sizes around the 8-byte padding),
    a symbolic link, nested and empty directories, names whose byte order is not their
    alphabetical order."""
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "empty").write_bytes(b"")
    (root / "seven").write_bytes(b"1234567")
    (root / "eight").write_bytes(b"12345678")
    (root / "sub" / "deeper" / "data.json").write_text('{"a": 1}\n')
    (root / "Zeta").write_text("capital letters sort first\n")
    (root / "é").write_text("a name outside ASCII\n")
    tool = root / "sub" / "run.sh"
    tool.write_text("#!/bin/sh\necho hi\n")
    tool.chmod(0o755)
    (root / "link").symlink_to("sub/deeper/data.json")
    return root


def test_nix32_of_known_digests() -> None:
    assert to_nix32(EMPTY) == EMPTY_NIX32
    assert to_nix32(bytes(32)) == "0" * 52
    assert to_nix32(bytes.fromhex("ff" * 31 + "01")) == "00g" + "z" * 49
    assert len(to_nix32(hashlib.sha1(b"").digest())) == 32


def test_nix32_round_trips() -> None:
    for data in (b"", b"a", b"machci"):
        digest = hashlib.sha256(data).digest()
        assert from_nix32(to_nix32(digest)) == digest


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("0" * 51, "expected 52 characters"),
        ("e" + "0" * 51, "not a Nix base32 character"),
        ("z" + "0" * 51, "larger than the digest"),  # bits beyond 256
    ],
)
def test_from_nix32_refuses(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        from_nix32(text)


@pytest.mark.parametrize(
    "text",
    [
        EMPTY_NIX32,
        f"sha256:{EMPTY_NIX32}",
        EMPTY.hex(),
        f"sha256:{EMPTY.hex().upper()}",
        to_sri(EMPTY),
        f"  {to_sri(EMPTY)}\n",
    ],
)
def test_parse_sha256_spellings(text: str) -> None:
    assert parse_sha256(text) == EMPTY


@pytest.mark.parametrize(
    "text",
    [
        "",
        EMPTY_NIX32[:-1],
        f"sha256-{EMPTY_NIX32}",  # Nix rejects base32 in SRI form too
        "sha256-" + "A" * 43,  # base64 without its padding
        "sha512-" + to_sri(EMPTY).removeprefix("sha256-"),
        "md5:" + EMPTY.hex(),
    ],
)
def test_parse_sha256_refuses(text: str) -> None:
    with pytest.raises(InputError, match="is not a sha256 hash"):
        parse_sha256(text)


def test_same_spelling_keeps_the_form() -> None:
    new = hashlib.sha256(b"new").digest()
    assert same_spelling(EMPTY_NIX32, new) == to_nix32(new)
    assert same_spelling(f"sha256:{EMPTY_NIX32}", new) == f"sha256:{to_nix32(new)}"
    assert same_spelling(to_sri(EMPTY), new) == to_sri(new)
    assert same_spelling(EMPTY.hex(), new) == new.hex()


def test_nar_hash_of_a_tree(tmp_path: Path) -> None:
    assert to_nix32(nar_sha256(make_tree(tmp_path / "tree"))) == TREE_NIX32


def test_nar_hash_sees_the_executable_bit_and_link_targets(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    (tree / "sub" / "run.sh").chmod(0o644)
    assert to_nix32(nar_sha256(tree)) != TREE_NIX32
    (tree / "sub" / "run.sh").chmod(0o755)
    (tree / "link").unlink()
    (tree / "link").symlink_to("./sub/deeper/data.json")  # the same file, another target
    assert to_nix32(nar_sha256(tree)) != TREE_NIX32


def test_nar_hash_of_a_single_file(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_bytes(b"x" * 9)
    assert len(nar_sha256(file)) == 32


@pytest.mark.skipif(shutil.which("nix-hash") is None, reason="nix-hash is not installed")
@pytest.mark.parametrize("what", ["tree", "file", "empty-dir"])
def test_nar_hash_matches_nix_hash(tmp_path: Path, what: str) -> None:
    tree = make_tree(tmp_path / "tree")
    path = {"tree": tree, "file": tree / "sub" / "run.sh", "empty-dir": tree / "empty-dir"}[what]
    nix = subprocess.run(
        ["nix-hash", "--type", "sha256", "--base32", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert to_nix32(nar_sha256(path)) == nix
