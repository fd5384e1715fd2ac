"""The bump's result as its resolving step hands it to the publishing step (a step output).

The two steps are separate processes so that the one that resolves, and may run sdist build
backends, never holds the token (see action.yml); this JSON is all that passes between them,
besides the files the first step wrote.
"""

from __future__ import annotations

import json
from typing import Any

from machci.commands.bump_report import Advisory, BumpResult, Change, Details, ReleaseNotes
from machci.errors import InputError


def encode(result: BumpResult) -> str:
    return json.dumps(
        {
            "old": result.old_revision,
            "new": result.new_revision,
            "written": result.written,
            "changes": [[c.name, c.old, c.new, list(c.systems)] for c in result.changes],
            "details": _encode_details(result.details),
        },
        sort_keys=True,
    )


def decode(text: str) -> BumpResult:
    """The result `encode` wrote; anything else is refused with one message."""
    try:
        data: Any = json.loads(text)
        changes = [
            Change(_text(name), _optional(old), _optional(new), tuple(_text(s) for s in systems))
            for name, old, new, systems in data["changes"]
        ]
        written = data["written"]
        if not isinstance(written, bool):
            raise TypeError(written)
        details = _decode_details(data["details"])
        return BumpResult(changes, _text(data["old"]), _text(data["new"]), written, details)
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(
            "the bump step left no readable result; publish runs only after `command: bump`"
            " in the same action"
        ) from exc


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _optional(value: object) -> str | None:
    return None if value is None else _text(value)


def _encode_details(details: Details) -> dict[str, Any]:
    def advisories(found: tuple[Advisory, ...]) -> list[list[str | None]]:
        return [[a.id, a.summary, a.link] for a in found]

    return {
        "index": details.index,
        "notes": {
            name: [note.link, advisories(note.fixed), advisories(note.introduced)]
            for name, note in details.notes.items()
        },
        "edges": [list(edge) for edge in details.edges],
        "advisories": details.advisories,
    }


def _decode_details(data: Any) -> Details:
    def advisories(found: Any) -> tuple[Advisory, ...]:
        return tuple(Advisory(_text(i), _text(s), _optional(u)) for i, s, u in found)

    notes = {
        _text(name): ReleaseNotes(_optional(url), advisories(fixed), advisories(introduced))
        for name, (url, fixed, introduced) in data["notes"].items()
    }
    edges = tuple((_text(a), _text(b)) for a, b in data["edges"])
    return Details(_text(data["index"]), notes, edges, _optional(data["advisories"]))
