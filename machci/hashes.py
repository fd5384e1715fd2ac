"""Nix's sha256 spellings and the NAR hash of a directory tree.

mach-nix pins pypi-deps-db by the hash `nix-prefetch-url --unpack` prints: sha256 over the NAR
serialisation of the unpacked tree, in Nix's base32. machci checks such pins itself, so the
serialisation and the encoding are reproduced here exactly (tests compare with `nix-hash`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
from pathlib import Path

from machci.errors import InputError

NIX32_ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz"  # no e, o, u, t: fewer rude words
SHA256_BYTES = 32
SHA256_NIX32_LENGTH = 52
_HEX = re.compile(r"[0-9a-fA-F]{64}")
_NIX32 = re.compile(f"[{NIX32_ALPHABET}]{{{SHA256_NIX32_LENGTH}}}")
_CHUNK = 1 << 20


def to_nix32(digest: bytes) -> str:
    """Nix's base32: the digest as a little-endian number, five bits a character, most
    significant character first."""
    length = (len(digest) * 8 - 1) // 5 + 1
    number = int.from_bytes(digest, "little")
    return "".join(NIX32_ALPHABET[(number >> (5 * n)) & 31] for n in range(length - 1, -1, -1))


def from_nix32(text: str, size: int = SHA256_BYTES) -> bytes:
    """The digest a Nix base32 string spells; ValueError if it is not one of `size` bytes."""
    if len(text) != (size * 8 - 1) // 5 + 1:
        raise ValueError(f"expected {(size * 8 - 1) // 5 + 1} characters, got {len(text)}")
    number = 0
    for char in text:
        position = NIX32_ALPHABET.find(char)
        if position < 0:
            raise ValueError(f"{char!r} is not a Nix base32 character")
        number = (number << 5) | position
    if number >> (size * 8):  # bits beyond the digest: Nix refuses these too
        raise ValueError("the value is larger than the digest")
    return number.to_bytes(size, "little")


def to_sri(digest: bytes) -> str:
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def parse_sha256(text: str) -> bytes:
    """A sha256 as Nix accepts it: 52 characters of Nix base32, 64 hex digits, SRI
    `sha256-<base64>`, or either of the first two after `sha256:`. InputError otherwise."""
    value = text.strip()
    if value.startswith("sha256-"):
        try:
            digest = base64.b64decode(value[len("sha256-") :], validate=True)
        except binascii.Error:
            digest = b""
        if len(digest) == SHA256_BYTES:
            return digest
    else:
        value = value.removeprefix("sha256:")
        if _HEX.fullmatch(value):
            return bytes.fromhex(value)
        if _NIX32.fullmatch(value):
            try:
                return from_nix32(value)
            except ValueError:
                pass
    raise InputError(
        f"{text!r} is not a sha256 hash: expected 52 characters of Nix base32 (as"
        " nix-prefetch-url prints it) or SRI 'sha256-<base64>'"
    )


def same_spelling(old: str, digest: bytes) -> str:
    """`digest` written the way `old` was (Nix base32, hex, SRI), so an edit keeps the style."""
    value = old.strip()
    if value.startswith("sha256-"):
        return to_sri(digest)
    prefix = "sha256:" if value.startswith("sha256:") else ""
    if _HEX.fullmatch(value.removeprefix("sha256:")):
        return prefix + digest.hex()
    return prefix + to_nix32(digest)


class _Nar:
    """sha256 over the NAR serialisation, fed as it is produced."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def string(self, data: bytes) -> None:
        self.hash.update(len(data).to_bytes(8, "little"))
        self.hash.update(data)
        self.hash.update(b"\0" * (-len(data) % 8))

    def strings(self, *items: bytes) -> None:
        for item in items:
            self.string(item)

    def node(self, path: Path) -> None:
        info = path.lstat()
        self.string(b"(")
        if stat.S_ISLNK(info.st_mode):
            # As stored: Path.readlink would normalise the target ("a//b", "./a").
            target = os.readlink(path)  # noqa: PTH115
            self.strings(b"type", b"symlink", b"target", os.fsencode(target))
        elif stat.S_ISREG(info.st_mode):
            self.strings(b"type", b"regular")
            if info.st_mode & stat.S_IXUSR:
                self.strings(b"executable", b"")
            self.contents(path, info.st_size)
        elif stat.S_ISDIR(info.st_mode):
            self.strings(b"type", b"directory")
            # Entries in byte order of their names, as Nix sorts them.
            for name in sorted(os.fsencode(entry.name) for entry in path.iterdir()):
                self.strings(b"entry", b"(", b"name", name, b"node")
                self.node(path / os.fsdecode(name))
                self.string(b")")
        else:
            raise OSError(f"{path}: neither a file, a directory nor a symbolic link")
        self.string(b")")

    def contents(self, path: Path, size: int) -> None:
        self.strings(b"contents")
        self.hash.update(size.to_bytes(8, "little"))
        with path.open("rb") as handle:
            read = 0
            while chunk := handle.read(_CHUNK):
                self.hash.update(chunk)
                read += len(chunk)
        if read != size:
            raise OSError(f"{path} changed while it was hashed")
        self.hash.update(b"\0" * (-size % 8))


def nar_sha256(path: Path) -> bytes:
    """The sha256 of `path`'s NAR serialisation (`nix-hash --type sha256 PATH`)."""
    nar = _Nar()
    nar.string(b"nix-archive-1")
    nar.node(path)
    return nar.hash.digest()
