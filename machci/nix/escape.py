"""Turning untrusted strings into Nix syntax.

Package names, versions, URLs and file names come from indexes and requirement files, so they are
treated as hostile: everything is emitted as an escaped string literal or a quoted attribute name,
never spliced in raw.
"""

from __future__ import annotations

import re

from machci.errors import InputError

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_'-]*\Z")
_KEYWORDS = frozenset({"assert", "else", "if", "in", "inherit", "let", "or", "rec", "then", "with"})
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class NixEscapeError(InputError):
    """A string Nix cannot represent (it holds a NUL byte); inputs are checked where they are
    read, so this names the value for whatever got past them."""


def string(value: str) -> str:
    """A double-quoted Nix string literal whose value is exactly `value`."""
    if "\0" in value:
        raise NixEscapeError(f"cannot write a NUL character into Nix: {value!r}")
    out = []
    for index, char in enumerate(value):
        if char == "$" and value[index + 1 : index + 2] == "{":
            out.append("\\$")  # "${" would start an interpolation
        else:
            out.append(_ESCAPES.get(char, char))
    return '"' + "".join(out) + '"'


def attr(name: str) -> str:
    """An attribute name: bare when it is a plain identifier, else a quoted string."""
    if _IDENTIFIER.match(name) and name not in _KEYWORDS:
        return name
    return string(name)


def relative_path(relative: str) -> str:
    """A path relative to the file it is written in, as a Nix path whatever its characters."""
    return f"(./. + {string('/' + relative)})"
