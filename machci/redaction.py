"""Secrets in URLs: hidden in what machci says, dropped from what it writes.

Private indexes take a password as URL user-info (`https://user:token@host/simple`) or a token
as a query parameter (`?token=…`, a signed URL's `sig=`); either would leak through a lock,
default.nix, the cache, a log line or a pull request body. This is the one place that knows
what counts as a secret. Both functions work on a URL or on any text that contains URLs (an
error message, a requirement line).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

# A query parameter is secret when its name is one of these words, or ends in one after `_` or
# `-` (access_token, api_key, client_secret, X-Amz-Signature), in any case.
SECRET_WORDS = ("token", "key", "password", "secret", "sig", "signature")

_USERINFO = re.compile(r"(?<=://)[^\s/?#]*@")  # greedy: up to the authority's last `@`
# A query ends at whitespace, `#`, a quote or an angle bracket (linear: no lookahead).
_QUERY = re.compile(r"\?([^\s#'\"<>]*)")
# Punctuation at its end belongs to the sentence around the URL ("…?token=…: timed out").
_TRAILING = ":,.;)"


def is_secret_parameter(name: str) -> bool:
    lowered = unquote(name).lower()
    return any(lowered == w or lowered.endswith((f"_{w}", f"-{w}")) for w in SECRET_WORDS)


def _queries(text: str, *, keep_names: bool) -> str:
    """Every query in the text with its secret values hidden (`keep_names`) or its secret
    parameters removed (and the `?` too when nothing is left)."""

    def rewrite(match: re.Match[str]) -> str:
        query = match[1].rstrip(_TRAILING)
        tail = match[1][len(query) :]
        parts = query.split("&")
        kept = []
        for part in parts:
            name, equals, _value = part.partition("=")
            if not equals or not is_secret_parameter(name):
                kept.append(part)
            elif keep_names:
                kept.append(f"{name}=***")
        return (f"?{'&'.join(kept)}" if kept else "") + tail

    return _QUERY.sub(rewrite, text)


def redact(text: str) -> str:
    """The text with user-info and secret query values shown as `***`, for messages."""
    return _queries(_USERINFO.sub("***@", text), keep_names=True)


def strip_credentials(text: str) -> str:
    """The text with user-info and secret query parameters removed, for files written to disk
    (Nix and pip find credentials in netrc, not in the URL)."""
    return _queries(_USERINFO.sub("", text), keep_names=False)


def redact_unparsed(url: str) -> str:
    """A URL that did not parse, as a message may quote it. Where its user-info ends cannot be
    told (a password may hold `/`, `?`, `#`, `[` or a space), so everything between the scheme
    and the last `@` is hidden; without an `@`, a "port" that is no number is hidden too (a
    split line leaves `http://user:password`). Secret query values go as in `redact`."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    else:
        authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
        host, colon, port = authority.rpartition(":")
        if colon and not port.isdigit():
            rest = f"{host}:***{rest[len(authority) :]}"
    return redact(f"{scheme}{separator}{rest}")
