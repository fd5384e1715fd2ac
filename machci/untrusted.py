"""Checks for strings from files, command lines and indexes, before anything relies on them.

A control character ends a line of default.nix's header (a Nix comment) or a URL, and a NUL
cannot be written into Nix at all, so such strings are refused where they are read, with the
file, line or URL they came from. Kept free of third-party imports: `machci check` uses it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# C0 and C1 controls (NUL, tab, LF, CR, …) and the Unicode line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_URL_BREAK = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
_QUOTED_TAIL = re.compile(r"\s*(?:as\s+)?['\"]")  # where urllib starts quoting part of a URL
# Plainly fine: http(s), a host of letters, digits, dots and dashes (no user or brackets, and a
# port of at most five digits, checked in range, so urlsplit has nothing to refuse), then a path
# free of spaces and controls. Index pages list tens of thousands of such URLs; they skip urlsplit.
_PLAIN_URL = re.compile(
    r"https?://[A-Za-z0-9][A-Za-z0-9.-]*(?::([0-9]{1,5}))?/[^\s\x00-\x1f\x7f-\x9f]*\Z"
)


def control_character(text: str) -> str | None:
    """The first control or line-breaking character in `text`, or None."""
    match = _CONTROL.search(text)
    return match.group() if match else None


def url_problem(url: str) -> str | None:
    """Why `url` is not a plain http(s) URL with a host, or None when it is one."""
    plain = _PLAIN_URL.match(url)
    if plain and int(plain.group(1) or 0) <= 65535:
        return None
    if match := _URL_BREAK.search(url):
        return f"it contains {match.group()!r}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number in range)
    except ValueError as exc:
        return _parse_problem(exc)
    if parts.scheme not in ("http", "https"):
        return "it must start with http:// or https://"
    if not parts.hostname:
        return "it names no host"
    return None


def _parse_problem(error: ValueError) -> str:
    """urllib's reason without the part of the URL it quotes: in `http://user:pa/ss@host` the
    "port" it cannot read is the start of a password."""
    text = str(error)
    if "NFKC" in text:
        return "its host part contains characters that NFKC normalization changes"
    return _QUOTED_TAIL.split(text, maxsplit=1)[0].strip() or "it does not parse as a URL"
