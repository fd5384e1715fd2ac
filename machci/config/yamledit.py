"""Round-trip edits of YAML files: change what is asked, keep comments, order, quoting, layout."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString
from ruamel.yaml.util import load_yaml_guess_indent

from machci.errors import InputError, Location


class RoundTrip:
    """A YAML document loaded for editing, dumped back in the file's own indentation."""

    def __init__(self, text: str, where: Location) -> None:
        self.text = text
        indent, offset = 4, 2  # for new files: "  - item", the layout of pre-commit's docs
        self.yaml = YAML(typ="rt")
        self.yaml.preserve_quotes = True
        self.yaml.width = 4096  # never re-wrap long lines
        try:
            if text.strip():
                _guessed, guessed_indent, guessed_offset = load_yaml_guess_indent(text)
                indent, offset = guessed_indent or 2, guessed_offset or 0
            # ruamel's rule: a block sequence indented by `offset` needs a mapping indent of it.
            self.yaml.indent(mapping=offset or indent, sequence=indent, offset=offset)
            self.document: Any = self.yaml.load(text) if text.strip() else CommentedMap()
        except YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            location = Location(where.where, mark.line + 1 if mark is not None else None)
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise InputError(f"invalid YAML: {problem}", location) from exc
        if not isinstance(self.document, CommentedMap):
            raise InputError("expected a mapping at the top level", where)

    def dump(self) -> str:
        out = io.StringIO()
        self.yaml.dump(self.document, out)
        return out.getvalue()


def _styled(old: object, value: str) -> str:
    """The new value in the old value's quoting style (quoted when there was none)."""
    style = SingleQuotedScalarString if isinstance(old, SingleQuotedScalarString) else None
    quoted: str = (style or DoubleQuotedScalarString)(value)
    return quoted


def _data(edit: RoundTrip, where: Location) -> CommentedMap:
    data = edit.document.get("data")
    if data is None:
        edit.document["data"] = data = CommentedMap()
    if not isinstance(data, CommentedMap):
        raise InputError("data: expected a mapping", where)
    return data


def set_snapshot(text: str, snapshot: str, where: Location) -> str:
    """machci.yaml text with data.snapshot set to `snapshot`, everything else as it was."""
    edit = RoundTrip(text, where)
    data = _data(edit, where)
    data["snapshot"] = _styled(data.get("snapshot"), snapshot)
    return edit.dump()


def set_depsdb_pin(text: str, rev: str, sha256: str, where: Location) -> str:
    """machci.yaml text with data.rev and data.sha256 set, everything else as it was. Values
    keep their quoting; plain ones stay plain (ruamel quotes one that would read as a number)."""
    edit = RoundTrip(text, where)
    data = _data(edit, where)
    for key, value in (("rev", rev), ("sha256", sha256)):
        old = data.get(key)
        quoted = isinstance(old, SingleQuotedScalarString | DoubleQuotedScalarString)
        data[key] = _styled(old, value) if quoted else value
    return edit.dump()
