"""The pull request body of a bump: one function, used by the Action and `--format markdown`.

Every name, version, URL and advisory text in it came from the index, so each is escaped for
Markdown (and for mermaid inside the graph); only http(s) URLs become links. The body is a pure
function of the BumpResult, so the same result always gives the same bytes.
"""

from __future__ import annotations

import hashlib
import re

from machci.commands.bump_report import Advisory, BumpResult, change_table
from machci.untrusted import url_problem

MARKER = "<!-- machci-bump:"
MAX_NODES = 50  # of the mermaid graph: a large bump still gives a readable body
SECURITY = "[security] "

# Inline only (every escaped string follows a prefix on its line), so list and heading markers
# at a line start need no escape; `@` and `#` would ping users and link issues on GitHub.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#@|~&])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape(text: str) -> str:
    """Untrusted text shown as itself in Markdown: no links, HTML, tables or line breaks."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _CONTROL.sub(" ", text))


def link(text: str, url: str | None) -> str:
    """A Markdown link when `url` is plain http(s), else the escaped text alone."""
    if url is None or url_problem(url) is not None:
        return escape(text)
    target = url.replace("(", "%28").replace(")", "%29").replace(" ", "%20").replace("<", "%3C")
    target = target.replace(">", "%3E")
    return f"[{escape(text)}](<{target}>)"


def changes_digest(result: BumpResult) -> str:
    """Identifies the set of changes, so an identical re-run leaves the pull request alone."""
    text = "\n".join(f"{c.name} {c.old} {c.new} {','.join(c.systems)}" for c in result.changes)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def title(base: str, result: BumpResult) -> str:
    """The pull request title: `[security]` first when the bump fixes a known vulnerability."""
    return SECURITY + base if result.details.security and not base.startswith(SECURITY) else base


def markdown_body(result: BumpResult) -> str:
    """What the bump's pull request says, and what `machci bump --format markdown` prints."""
    details = result.details
    parts = [
        "machci moved the pinned dependency data forward and re-resolved the requirements.\n",
        f"**Data revision:** {escape(details.index)} snapshot {escape(result.old_revision)} →"
        f" {escape(result.new_revision)}\n",
        change_table(result.changes),
    ]
    if result.changes:
        parts.append(_release_notes(result))
        parts.append(_advisories(result))
        parts.append(_graph(result))
    parts.append(
        "Merge to take the new pins; the next scheduled run keeps this pull request current.\n"
    )
    parts.append(f"{MARKER} {changes_digest(result)} -->\n")
    return "\n".join(part for part in parts if part)


def _release_notes(result: BumpResult) -> str:
    lines = ["### Release notes\n"]
    for change in result.changes:
        note = result.details.notes.get(change.name)
        if note is None or note.link is None or change.new is None:
            continue
        entry = f"- {link(f'{change.name} {change.new}', note.link)}"
        if entry not in lines:
            lines.append(entry)
    return "\n".join(lines) + "\n" if len(lines) > 1 else ""


def _advisory(name: str, advisory: Advisory) -> str:
    summary = f": {escape(advisory.summary)}" if advisory.summary else ""
    return f"- {escape(name)}: {link(advisory.id, advisory.link)}{summary}"


def _advisories(result: BumpResult) -> str:
    details = result.details
    if details.advisories is not None:
        return f"Known vulnerabilities: {escape(details.advisories)}.\n"
    fixed = [_advisory(n, a) for n, note in sorted(details.notes.items()) for a in note.fixed]
    introduced = [
        _advisory(n, a) for n, note in sorted(details.notes.items()) for a in note.introduced
    ]
    if not fixed and not introduced:
        return "Known vulnerabilities: none fixed or introduced by this bump.\n"
    lines = []
    if fixed:
        lines += ["### Vulnerabilities fixed\n", *fixed, ""]
    if introduced:
        lines += ["### Vulnerabilities introduced\n", *introduced, ""]
    return "\n".join(lines)


def _node(name: str) -> str:
    """A mermaid node id and label: ids are plain, labels quoted with entities for the rest."""
    ident = "n_" + re.sub(r"[^A-Za-z0-9]", "_", name)
    label = re.sub(r"[^A-Za-z0-9._ -]", lambda m: f"#{ord(m.group())};", name)
    return f'{ident}["{label}"]'


def _graph(result: BumpResult) -> str:
    """The changed packages (highlighted) and the packages that depend on them."""
    changed = sorted({c.name for c in result.changes})
    nodes = list(changed)
    for dependent, _ in result.details.edges:
        if dependent not in nodes:
            nodes.append(dependent)
    shown = set(nodes[:MAX_NODES])
    lines = ["### Changed packages and their dependents\n", "```mermaid", "flowchart LR"]
    lines += [f"  {_node(name)}:::changed" for name in changed if name in shown]
    lines += [
        f"  {_node(dependent)} --> {_node(dependency)}"
        for dependent, dependency in result.details.edges
        if dependent in shown and dependency in shown
    ]
    lines += ["  classDef changed stroke-width:3px", "```"]
    if len(nodes) > MAX_NODES:
        lines.append(f"\nThe graph shows {MAX_NODES} of {len(nodes)} packages.")
    return "\n".join(lines) + "\n"
