"""Release notes links and known vulnerabilities for a bump's changes.

The link comes from the new version's core metadata (`Project-URL`, carried in the new Lock), or
else from the release document of the index's JSON API, or else is the project's index page.
PyPI serves `/pypi/<name>/<version>/json` with the release's `Project-URL`s and its
`vulnerabilities` (OSV entries). Everything in either is hostile text: it is parsed defensively
here and escaped where it is rendered (bump_body). Requests go through machci's Http (timeout,
size limit, page cache); when the API cannot be read the bump still succeeds and the body says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from machci.commands.bump_report import Advisory, Change, Details, ReleaseNotes
from machci.errors import MachciError
from machci.lock.model import Lock
from machci.redaction import strip_credentials
from machci.sources.http import Http
from machci.untrusted import url_problem

# Project-URL labels of release notes, normalised as PyPI does (lower case, no punctuation).
NOTES_LABELS = ("changelog", "changes", "releasenotes", "history", "whatsnew", "news")
MAX_ADVISORIES = 20  # per release: a hostile API cannot make the body unbounded
MAX_TEXT = 200  # characters of an advisory id or summary kept
PYPI_HOSTS = ("pypi.org", "test.pypi.org")
API_READERS = 8  # release documents read at once


def normalise_label(label: str) -> str:
    """PyPI's label normalisation: case-folded, without spaces and punctuation."""
    return re.sub(r"[^a-z0-9]", "", label.casefold())


def notes_link(project_urls: object) -> str | None:
    """The first http(s) Project-URL whose label names release notes, in NOTES_LABELS order.

    `project_urls`: the metadata's (label, url) pairs, or the JSON API's label → url mapping.
    """
    if isinstance(project_urls, dict):
        pairs = list(project_urls.items())
    elif isinstance(project_urls, tuple):
        pairs = list(project_urls)
    else:
        return None
    found: dict[str, str] = {}
    for label, url in sorted(pairs, key=lambda item: str(item[0])):
        if isinstance(label, str) and isinstance(url, str) and url_problem(url) is None:
            found.setdefault(normalise_label(label), url)
    return next((found[label] for label in NOTES_LABELS if label in found), None)


def project_page(index: str, name: str, version: str) -> str:
    """PyPI's release page, or for another index its simple page of the project."""
    parts = urlsplit(index)
    if parts.hostname in PYPI_HOSTS:
        host = parts.hostname
        return f"https://{host}/project/{quote(name)}/{quote(version)}/"
    return strip_credentials(index.rstrip("/") + f"/{quote(name)}/")


def api_url(index: str, name: str, version: str) -> str:
    """`/pypi/<name>/<version>/json` at the index's host (the simple index's sibling)."""
    parts = urlsplit(index)
    path = parts.path.rstrip("/")
    path = path.removesuffix("/simple")
    return urlunsplit(
        (parts.scheme, parts.netloc, f"{path}/pypi/{quote(name)}/{quote(version)}/json", "", "")
    )


def _advisories(doc: object) -> tuple[Advisory, ...]:
    entries = doc.get("vulnerabilities") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        return ()
    found = []
    for entry in entries[:MAX_ADVISORIES]:
        if not isinstance(entry, dict) or entry.get("withdrawn"):
            continue
        ident = entry.get("id")
        if not isinstance(ident, str) or not ident:
            continue
        summary = entry.get("summary") or entry.get("details") or ""
        link = entry.get("link")
        found.append(
            Advisory(
                ident[:MAX_TEXT],
                str(summary)[:MAX_TEXT] if isinstance(summary, str) else "",
                link if isinstance(link, str) and url_problem(link) is None else None,
            )
        )
    return tuple(sorted(set(found), key=lambda a: a.id))


class ReleaseApi:
    """Reads release documents; remembers the first failure so the body can say so once."""

    def __init__(self, http: Http, index: str) -> None:
        self.http = http
        self.index = index
        self.failed = False

    def release(self, name: str, version: str) -> dict[str, Any] | None:
        if self.failed:  # one unreachable API is not asked again for every package
            return None
        url = api_url(self.index, name, version)
        try:
            got = self.http.page(url, "application/json")
            if got is None:
                return None
            page, body = got
            doc = json.loads(self.http.page_text(url, "application/json", page, body))
        except (MachciError, ValueError, OSError):
            self.failed = True
            return None
        return doc if isinstance(doc, dict) else None

    def releases(
        self, wanted: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], dict[str, Any] | None]:
        """Several release documents, a few at a time: a bump of hundreds of packages should
        not wait for each round trip in turn."""
        wanted = list(wanted)
        with ThreadPoolExecutor(API_READERS, thread_name_prefix="machci-api") as pool:
            found = pool.map(lambda release: self.release(*release), wanted)
            return dict(zip(wanted, found, strict=True))


def _releases(changes: Iterable[Change]) -> list[tuple[str, str]]:
    """The (name, version) of each release a change starts or ends at, each once, in order."""
    wanted = [
        (change.name, version)
        for change in changes
        for version in (_plain(change.old), _plain(change.new))
        if version is not None
    ]
    return list(dict.fromkeys(wanted))


def _plain(version: str | None) -> str | None:
    """A version the API knows: not an archive's or git source's pinned spelling."""
    return version if version is not None and " " not in version else None


def collect(changes: Iterable[Change], new_lock: Lock, index: str, http: Http | None) -> Details:
    """Links and advisories for each change; `http` None: no advisories asked for."""
    changes = list(changes)
    api = ReleaseApi(http, index) if http is not None else None
    documents = api.releases(_releases(changes)) if api is not None else {}
    written = _metadata_urls(new_lock)
    notes: dict[str, ReleaseNotes] = {}
    for change in changes:
        if change.name in notes:
            continue
        old, new = _plain(change.old), _plain(change.new)
        old_doc = documents.get((change.name, old)) if old else None
        new_doc = documents.get((change.name, new)) if new else None
        link = notes_link(written.get((change.name, new))) if new else None
        if link is None and new_doc is not None:
            info = new_doc.get("info")
            link = notes_link(info.get("project_urls") if isinstance(info, dict) else None)
        if link is None and new is not None:
            link = project_page(index, change.name, new)
        before, after = set(_advisories(old_doc)), set(_advisories(new_doc))
        ids_after = {a.id for a in after}
        ids_before = {a.id for a in before}
        notes[change.name] = ReleaseNotes(
            link,
            tuple(sorted((a for a in before if a.id not in ids_after), key=lambda a: a.id)),
            tuple(sorted((a for a in after if a.id not in ids_before), key=lambda a: a.id)),
        )
    unavailable = None
    if http is None:
        unavailable = "not asked for (--no-advisories)"
    elif api is not None and api.failed:
        unavailable = "the index's JSON API could not be read"
    return Details(
        strip_credentials(index),
        notes,
        dependents(new_lock, set(notes)),
        unavailable,
    )


def _metadata_urls(lock: Lock) -> dict[tuple[str, str], tuple[tuple[str, str], ...]]:
    """Each locked (name, version)'s Project-URLs, from whichever system locked it."""
    return {
        (package.name, package.version): package.project_urls
        for system in lock.systems
        for package in system.packages
        if package.project_urls
    }


def dependents(lock: Lock, changed: set[str]) -> tuple[tuple[str, str], ...]:
    """(dependent, dependency) pairs, over all systems, of packages depending on a changed one."""
    edges = {
        (package.name, dependency)
        for system in lock.systems
        for package in system.packages
        for dependency in package.dependencies
        if dependency in changed
    }
    return tuple(sorted(edges))
