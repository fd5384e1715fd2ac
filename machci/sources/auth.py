"""HTTP Basic credentials for index hosts, found where pip finds them.

A URL's own user-info comes first, then the user-info of an index URL on the same host and
port, then the netrc file (`NETRC`, else `~/.netrc`) by host name. A file on another host gets
none of the index's credentials, and urllib3 drops the header when a redirect leaves the host.
Requests never carry user-info: it travels only in the Authorization header.
"""

from __future__ import annotations

import base64
import netrc
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from machci.errors import SourceError

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Login:
    user: str
    password: str

    def header(self) -> str:
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode("ascii")
        return f"Basic {token}"


def netrc_path() -> Path:
    """Where the netrc file is: `NETRC` when set, else `~/.netrc` (as pip and curl)."""
    override = os.environ.get("NETRC")
    return Path(override) if override else Path.home() / ".netrc"


def _read_netrc(path: Path) -> netrc.netrc | None:
    """The parsed file, None when there is none; a broken one is an error naming its line."""
    try:
        return netrc.netrc(str(path))
    except FileNotFoundError:
        return None
    except netrc.NetrcParseError as exc:
        problem = _netrc_problem(exc.msg)
        raise SourceError(f"{path}:{exc.lineno}: cannot read the netrc file: {problem}") from exc
    except (OSError, ValueError) as exc:  # a directory, no permission, undecodable bytes
        raise SourceError(f"{path}: cannot read the netrc file: {exc}") from exc


def _netrc_problem(message: str) -> str:
    """Python's reason without the word it quotes: that word is often a password (or the part
    after a space in one: `password two words` leaves `words` unexpected)."""
    if message.startswith(("bad toplevel token", "bad follower token")):
        return (
            "an unexpected word (not shown: it may be a password; a password with spaces"
            " must be in double quotes)"
        )
    if message.startswith("missing 'machine' name") or "'" not in message:
        return message
    return message.split("'", 1)[0].strip() or "it does not parse"


def _host_key(parts: SplitResult) -> tuple[str, int | None]:
    try:
        port = parts.port
    except ValueError:  # not a port number: the request fails on its own
        port = None
    return (parts.hostname or "", port or _DEFAULT_PORTS.get(parts.scheme))


def _own_login(parts: SplitResult) -> Login | None:
    if parts.username is None:
        return None
    return Login(unquote(parts.username), unquote(parts.password or ""))


class Credentials:
    """Who machci is to each host; built once per run from the index URLs and netrc."""

    def __init__(self, index_urls: Iterable[str]) -> None:
        self._by_host: dict[tuple[str, int | None], Login] = {}
        for url in index_urls:
            parts = urlsplit(url)
            login = _own_login(parts)
            if login is not None:
                self._by_host.setdefault(_host_key(parts), login)
        self._netrc = _read_netrc(netrc_path())

    def _from_netrc(self, host: str) -> Login | None:
        entry = self._netrc.authenticators(host) if self._netrc and host else None
        if entry is None:
            return None
        login, account, password = entry
        return Login(login or account or "", password or "")

    def prepare(self, url: str) -> tuple[str, dict[str, str]]:
        """The URL to request (without user-info) and the headers that authenticate it."""
        parts = urlsplit(url)
        own = _own_login(parts)
        if own is not None:
            url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        key = _host_key(parts)
        login = own or self._by_host.get(key) or self._from_netrc(key[0])
        return url, {"Authorization": login.header()} if login is not None else {}
