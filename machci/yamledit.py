"""Round-trip edits of machci.yaml: change one value, keep comments, order and quoting."""

from __future__ import annotations

import io

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString
from ruamel.yaml.util import load_yaml_guess_indent

from machci.errors import InputError


def _styled(old: object, value: str) -> str:
    """The new value in the old value's quoting style (quoted when there was none)."""
    style = SingleQuotedScalarString if isinstance(old, SingleQuotedScalarString) else None
    quoted: str = (style or DoubleQuotedScalarString)(value)
    return quoted


def set_snapshot(text: str, snapshot: str) -> str:
    """machci.yaml text with data.snapshot set to `snapshot`, everything else as it was."""
    _guessed, indent, offset = load_yaml_guess_indent(text)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines
    # ruamel's recipe: block sequences indented by `offset` need mapping indent == offset.
    yaml.indent(mapping=offset or indent or 2, sequence=indent or 2, offset=offset or 0)
    document = yaml.load(text)
    if not isinstance(document, CommentedMap):
        raise InputError("machci.yaml: expected a mapping of settings at the top level")
    data = document.get("data")
    if data is None:
        document["data"] = data = CommentedMap()
    if not isinstance(data, CommentedMap):
        raise InputError("machci.yaml: data: expected a mapping")
    data["snapshot"] = _styled(data.get("snapshot"), snapshot)
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()
