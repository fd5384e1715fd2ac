"""Reading back what a generated file records: each system's root names and locked packages.

`machci why` answers from default.nix when the file is in sync, without resolving again. Only
the two attribute sets render.py writes first, `files` and `systems`, are read, and only in the
shape it writes them: its keys, and string literals with escape.py's escapes and no others.
Anything else raises NotRecorded, so the caller resolves instead of guessing.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, replace

from machci.dists import SOURCE_KINDS
from machci.lock.model import LockedFile, LockedPackage


class NotRecorded(Exception):
    """The file does not have the shape machci writes."""


@dataclass(frozen=True)
class RecordedSystem:
    roots: tuple[str, ...]  # names only: the requirement lines are not in the file
    packages: tuple[LockedPackage, ...]  # without extras and build needs, which it does not hold


# One token: a string literal (escape.string's escapes only: `\$` just before `{`, and never a
# bare `${`), an identifier, or punctuation. Each alternative starts differently: linear time.
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\$\n\r\t]|\\["\\nrt]|\\\$(?=\{)|\$(?!\{))*")
        |(?P<name>[A-Za-z_][A-Za-z0-9_'-]*)
        |(?P<punct>[{}\[\];=.])
    )""",
    re.VERBOSE,
)
_ESCAPED = re.compile(r"\\(.)")
_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t", "$": "$"}
_PACKAGE_KEYS = frozenset(
    {
        "version",
        "provider",
        "attr",
        "drv-name",
        "file",
        "source",
        "binary",
        "dependencies",
        "build-system",
        "libraries-from",
        "inputs-from",
    }
)
_SRI_PREFIX = "sha256-"


class _Tokens:
    """The tokens from a position on, read only as far as the parser asks."""

    def __init__(self, text: str, position: int) -> None:
        self.text = text
        self.position = position

    def next(self) -> tuple[str, str]:
        """(kind, text): kind is "string" (its value), "name" or "punct"."""
        match = _TOKEN.match(self.text, self.position)
        if match is None or match.lastgroup is None:
            raise NotRecorded(f"unexpected text at offset {self.position}")
        self.position = match.end()
        text = match[match.lastgroup]
        if match.lastgroup == "string":
            text = _ESCAPED.sub(lambda escape: _UNESCAPE[escape[1]], text[1:-1])
        return match.lastgroup, text

    def expect(self, text: str) -> None:
        kind, found = self.next()
        if kind == "string" or found != text:
            raise NotRecorded(f"expected {text!r} before offset {self.position}")


def _attribute_set(tokens: _Tokens) -> dict[str, object]:
    """`{ key = value; … }`, its `{` already read; values are strings, booleans, lists of
    strings and attribute sets."""
    result: dict[str, object] = {}
    while (token := tokens.next()) != ("punct", "}"):
        kind, key = token
        if kind == "punct":
            raise NotRecorded(f"expected an attribute name before offset {tokens.position}")
        tokens.expect("=")
        if key in result:
            raise NotRecorded(f"attribute {key!r} is set twice")
        result[key] = _value(tokens)
        tokens.expect(";")
    return result


def _value(tokens: _Tokens) -> object:
    kind, text = tokens.next()
    if kind == "string":
        return text
    if kind == "name" and text in ("true", "false"):
        return text == "true"
    if (kind, text) == ("punct", "{"):
        return _attribute_set(tokens)
    if (kind, text) == ("punct", "["):
        items = []
        while (item := tokens.next()) != ("punct", "]"):
            if item[0] != "string":
                raise NotRecorded(f"expected a string in a list before offset {tokens.position}")
            items.append(item[1])
        return items
    raise NotRecorded(f"unexpected {text!r} before offset {tokens.position}")


def _binding(body: str, name: str) -> _Tokens:
    """The tokens of `  name = …` in the body's `let`, from its value on."""
    line = f"\n  {name} = "
    at = body.find(line + "{\n")
    if at < 0:
        raise NotRecorded(f"no {name} in the file")
    return _Tokens(body, at + len(line))


def _files(body: str) -> dict[str, LockedFile]:
    tokens = _binding(body, "files")
    tokens.expect("{")
    files: dict[str, LockedFile] = {}
    while (token := tokens.next()) != ("punct", "}"):
        kind, filename = token
        if kind != "string" or filename in files:
            raise NotRecorded(f"expected a new file name before offset {tokens.position}")
        for text in ("=", "pkgs", ".", "fetchurl", "{"):
            tokens.expect(text)
        fetch = _attribute_set(tokens)
        tokens.expect(";")
        if fetch.keys() != {"name", "url", "hash"} or not isinstance(fetch["name"], str):
            raise NotRecorded(f"{filename}: not a fetch of name, url and hash")
        files[filename] = LockedFile(filename, _string(fetch, "url"), _sha256(fetch["hash"]))
    tokens.expect(";")
    return files


def _sha256(sri: object) -> str:
    """The hex digest of an SRI `sha256-…` hash."""
    if not isinstance(sri, str) or not sri.startswith(_SRI_PREFIX):
        raise NotRecorded(f"not a sha256 hash: {sri!r}")
    try:
        raw = base64.b64decode(sri[len(_SRI_PREFIX) :], validate=True)
    except ValueError as exc:
        raise NotRecorded(f"not a sha256 hash: {sri!r}") from exc
    if len(raw) != 32:
        raise NotRecorded(f"not a sha256 hash: {sri!r}")
    return raw.hex()


def _string(fields: dict[str, object], key: str) -> str:
    value = fields.get(key)
    if not isinstance(value, str):
        raise NotRecorded(f"{key}: expected a string, got {value!r}")
    return value


def _names(fields: dict[str, object], key: str) -> tuple[str, ...]:
    value = fields.get(key, [])
    if not isinstance(value, list):
        raise NotRecorded(f"{key}: expected a list of strings, got {value!r}")
    return tuple(value)  # _value() lets only strings into a list


def _package(name: str, fields: object, files: dict[str, LockedFile]) -> LockedPackage:
    if (
        not isinstance(fields, dict)
        or not fields.keys() <= _PACKAGE_KEYS
        or not {"dependencies", "build-system"} <= fields.keys()
    ):
        raise NotRecorded(f"{name}: not a package's attributes")
    for key in ("libraries-from", "inputs-from"):  # derived from the rest: only checked
        _names(fields, key)
    package = LockedPackage(
        name,
        _string(fields, "version"),
        _string(fields, "provider"),
        None,
        _names(fields, "dependencies"),
        _names(fields, "build-system"),
    )
    if "source" in fields:  # from packagesExtra: `sources` says where from; why needs no more
        if fields.keys() & {"binary", "file", "attr"} or package.provider not in SOURCE_KINDS:
            raise NotRecorded(f"{name}: from a source, but with other attributes")
        _string(fields, "source")
        return package
    if "file" not in fields:  # from nixpkgs' package set
        if fields.keys() & {"binary", "drv-name"}:
            raise NotRecorded(f"{name}: from nixpkgs, but with a file's attributes")
        return replace(package, attr=_string(fields, "attr"))
    file = files.get(_string(fields, "file"))
    if (
        file is None
        or "attr" in fields
        or not isinstance(fields.get("binary"), bool)
        or not isinstance(fields.get("drv-name", ""), str)
    ):
        raise NotRecorded(f"{name}: its file is not among the files, or its attributes are amiss")
    return replace(package, file=file)


def read_recorded(body: str) -> dict[str, RecordedSystem]:
    """Per system, in the file's order: root names and packages (see RecordedSystem)."""
    files = _files(body)
    tokens = _binding(body, "systems")
    tokens.expect("{")
    systems = _attribute_set(tokens)
    tokens.expect(";")
    result: dict[str, RecordedSystem] = {}
    for system, value in systems.items():
        if not isinstance(value, dict) or value.keys() != {"roots", "packages"}:
            raise NotRecorded(f"{system}: not roots and packages")
        packages = value["packages"]
        if not isinstance(packages, dict):
            raise NotRecorded(f"{system}: packages is not an attribute set")
        result[system] = RecordedSystem(
            _names(value, "roots"),
            tuple(_package(name, fields, files) for name, fields in packages.items()),
        )
    return result
