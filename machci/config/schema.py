"""machci.yaml's JSON Schema: validating a parsed file against it, and saying what is wrong in
machci's words, on the line ruamel.yaml read it from.

The schema (machci.schema.json, draft 2020-12) is the one list of keys, types, defaults and
allowed values; editors with the YAML language server use the same file. Its messages use that
server's extension keywords: `errorMessage` is what a schema says when a value fails it as a
whole (a wrong type, a value outside its enum, none of its alternatives, a wrong number of keys)
and `patternErrorMessage` when a string does not match its pattern. jsonschema finds the errors;
this module only chooses the first in the file and words it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Sequence
from datetime import date
from functools import cache
from typing import TYPE_CHECKING, Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarbool import ScalarBoolean

from machci.config.properties import SCHEMA
from machci.redaction import redact_unparsed

if TYPE_CHECKING:
    from jsonschema import ValidationError

# A shown value is cut here: a message quotes what was written, not a whole hostile document.
_SHOWN_MAX = 80
_JSON_TYPES = {
    "string": "a string",
    "boolean": "true or false",
    "integer": "an integer",
    "number": "a number",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def _is_string(checker: object, instance: object) -> bool:
    """ruamel.yaml reads an unquoted time (`snapshot: 2026-11-01T00:00:00Z`) as a datetime,
    where YAML 1.2 and the editors' YAML server read a string; the loader takes both."""
    return isinstance(instance, (str, date))


def _is_boolean(checker: object, instance: object) -> bool:
    """An anchored `true` (`&flag true`) comes back from ruamel.yaml as a ScalarBoolean, an int."""
    return isinstance(instance, (bool, ScalarBoolean))


def _pattern(
    validator: object, pattern: str, instance: object, schema: object
) -> Iterator[ValidationError]:
    """`pattern` as ECMA-262 reads it: there `$` ends the string, where Python's `$` also
    matches before a final newline (`"latest\n"` would pass `^...$`)."""
    if isinstance(instance, str):
        match = re.search(pattern, instance)
        if match is None or (pattern.endswith("$") and match.end() != len(instance)):
            from jsonschema import ValidationError

            yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def _validator() -> Any:
    """The validator, built when a machci.yaml is first checked: jsonschema takes a tenth of a
    second to import, which `machci lock -r` and `machci check` need not pay."""
    from jsonschema import Draft202012Validator
    from jsonschema.validators import extend

    validator = extend(  # type: ignore[no-untyped-call]  # jsonschema leaves it untyped
        Draft202012Validator,
        validators={"pattern": _pattern},
        type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many(
            {"string": _is_string, "boolean": _is_boolean}
        ),
    )
    return validator(SCHEMA)


class Problem:
    """One schema error in machci's words: the message, and the path (keys and list indexes)
    of the value it is about, which gives its line."""

    def __init__(self, message: str, path: Sequence[str | int]) -> None:
        self.message = message
        self.path = tuple(path)


def problems(document: object) -> Iterator[Problem]:
    """Every schema error of a parsed machci.yaml, each worded as machci words it."""
    for error in _validator().iter_errors(document):
        yield _explain(error, None)


def label(path: Sequence[str | int]) -> str:
    """`data: index: ` for data.index; list positions are left out (`packagesExtra: path: `)."""
    return "".join(f"{key}: " for key in path if not isinstance(key, int))


def shown(value: object) -> str:
    """A value as a message quotes it: repr, credentials in URLs hidden, cut short."""
    text = repr(value)
    if "@" in text:
        text = redact_unparsed(text)
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 3] + "..."


def did_you_mean(value: object, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(value), known, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _explain(error: ValidationError, holder: ValidationError | None) -> Problem:
    """Word one error. `holder` is the innermost alternative (anyOf/oneOf) with a message that
    this error was found inside: a wrong type deep inside `[3]` is worded as the list's."""
    path = list(error.absolute_path)
    keyword = error.validator
    expected: Any = error.validator_value  # the keyword's value in the schema
    schema = error.schema if isinstance(error.schema, dict) else {}
    message = schema.get("errorMessage")
    where = label(path)
    if keyword in ("anyOf", "oneOf"):
        fitting = _fitting_branch(error)
        if keyword == "anyOf" and fitting is not None:
            inner = holder if message is None else error
            return _explain(fitting, inner)
        if message is None and holder is not None:
            return _type_problem(holder)
        if keyword == "oneOf" and message:
            return Problem(f"{where}{message}", path)
        return _type_problem(error)
    if keyword == "type" or (keyword == "enum" and _is_type_mismatch(error, error)):
        # An item of the wrong type (`rPackages: [3]`) is worded as the list's alternatives are.
        item = bool(path) and isinstance(path[-1], int)
        if holder is not None and item and path[:-1] == list(holder.absolute_path):
            return _type_problem(holder, at=path)
    if keyword == "type":
        return _type_problem(error)
    if keyword == "additionalProperties" and isinstance(error.instance, dict):
        known = [str(key) for key in schema.get("properties", {})]
        extra = next(str(key) for key in error.instance if key not in known)
        return Problem(
            f"unknown key {where}{extra!r}{did_you_mean(extra, known)} (known: {', '.join(known)})",
            [*path, extra],
        )
    if keyword == "enum":
        allowed = [str(value) for value in expected]
        if message:
            return Problem(
                f"{where}{message} {shown(error.instance)}{did_you_mean(error.instance, allowed)}"
                f" (known: {', '.join(allowed)})",
                path,
            )
        return Problem(f"{where}expected {' or '.join(allowed)}, got {shown(error.instance)}", path)
    if keyword in ("pattern", "maxLength") and "patternErrorMessage" in schema:
        text = schema["patternErrorMessage"]
        if "propertyNames" in error.schema_path:  # the key itself, on its own line
            return Problem(f"{where}{error.instance!r} {text}", [*path, str(error.instance)])
        return Problem(f"{where}{error.instance!r} {text}", path)
    if keyword == "required":
        given: Any = error.instance
        missing = next(key for key in expected if key not in given)
        return Problem(f"{where}entry needs a {missing!r}", path)
    if keyword == "minItems":
        return Problem(f"{where}the list is empty", path)
    if message:
        return Problem(f"{where}{message}", path)
    return Problem(f"{where}{error.message}", path)


def _fitting_branch(error: ValidationError) -> ValidationError | None:
    """The first error of the first alternative that takes the value's type (`[3]` fits a
    list of strings, not a string), or None when none does."""
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context or ():
        branches.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
    for index in sorted(branches):
        found = branches[index]
        if not any(_is_type_mismatch(sub, error) for sub in found):
            return found[0]
    return None


def _is_type_mismatch(sub: ValidationError, parent: ValidationError) -> bool:
    """Whether `sub` says the alternative does not take the value's type at all (at the value
    itself, not inside it)."""
    if list(sub.absolute_path) != list(parent.absolute_path):
        return False
    if sub.validator == "type":
        return True
    if sub.validator == "enum":  # an enum of strings does not take a list
        allowed: Any = sub.validator_value
        return not any(type(value) is type(sub.instance) for value in allowed)
    return sub.validator in ("anyOf", "oneOf") and _fitting_branch(sub) is None


def _type_problem(error: ValidationError, at: Sequence[str | int] | None = None) -> Problem:
    """A value of the wrong type, worded by the schema that refused it; `at` is where to point
    when that is one item of the value."""
    path = list(error.absolute_path) if at is None else list(at)
    schema = error.schema if isinstance(error.schema, dict) else {}
    value = error.instance
    if isinstance(value, float) and "string" in _accepted_types(error):
        return Problem(
            f'{label(path)}{shown(value)} was read as a number; quote it, e.g. "3.10"', path
        )
    expected = schema.get("errorMessage") or _expected(error)
    if not path:  # the whole document: quoting it says nothing
        return Problem(expected, path)
    return Problem(f"{label(path)}{expected}, got {shown(value)}", path)


def _accepted_types(error: ValidationError) -> set[str]:
    """The JSON types the refusing schema (or, for alternatives, any of them) takes."""
    found: set[str] = set()
    for refusal in [error] if error.validator == "type" else list(error.context or ()):
        types: Any = refusal.validator_value
        if refusal.validator == "type":
            found.update([types] if isinstance(types, str) else types)
    return found


def _expected(error: ValidationError) -> str:
    kinds = sorted(_accepted_types(error)) or ["object"]
    return "expected " + " or ".join(_JSON_TYPES.get(kind, kind) for kind in kinds)


def line_of(document: object, path: Sequence[str | int]) -> int | None:
    """The 1-based line ruamel.yaml read the value at `path` from (a key's own line for a
    mapping's value), or the nearest enclosing one it knows."""
    line: int | None = None
    node = document
    for key in path:
        if isinstance(node, CommentedMap):
            try:
                line = node.lc.key(key)[0] + 1
            except (KeyError, TypeError):  # not there, or a mapping ruamel did not read
                if line is None and node.lc.line is not None:
                    line = node.lc.line + 1
                return line
        elif isinstance(node, CommentedSeq) and isinstance(key, int):
            try:
                line = node.lc.item(key)[0] + 1
            except (KeyError, TypeError, IndexError):
                return line
        else:
            return line
        node = node[key]
    return line
