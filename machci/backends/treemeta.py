"""Static metadata of a source tree: PEP 621's [project] table, else setup.cfg's declarations.

A tree that states its name, version and dependencies needs no build backend to be resolved
(the backend is untrusted code, and slow). Anything computed — a field listed in `dynamic`, a
setup.cfg `attr:` or `file:` directive — makes the metadata non-static, and then the backend
is asked (backends/sdist.py), as pip does.
"""

from __future__ import annotations

import configparser
import tomllib
from collections.abc import Callable, Iterable

from packaging.requirements import InvalidRequirement, Requirement

from machci.dists import InvalidMetadata

Reader = Callable[[str], bytes | None]  # a file of the tree by its relative path, or None


def static_metadata(read: Reader) -> bytes | None:
    """A METADATA text from the tree's static declarations, or None when they are incomplete."""
    return _from_pyproject(read) or _from_setup_cfg(read)


def _from_pyproject(read: Reader) -> bytes | None:
    raw = read("pyproject.toml")
    if raw is None:
        return None
    try:
        project = tomllib.loads(raw.decode("utf-8")).get("project")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidMetadata(f"invalid pyproject.toml ({exc})") from exc
    if not isinstance(project, dict):
        return None
    dynamic = set(project.get("dynamic", []))
    if dynamic & {"version", "dependencies", "optional-dependencies", "requires-python"}:
        return None
    name, version = project.get("name"), project.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        return None
    optional = project.get("optional-dependencies", {})
    if not isinstance(optional, dict):
        raise InvalidMetadata("pyproject.toml: [project.optional-dependencies] is not a table")
    return _metadata(
        name,
        version,
        _strings(project.get("dependencies", []), "dependencies"),
        {k: _strings(v, f"optional-dependencies.{k}") for k, v in optional.items()},
        project.get("requires-python"),
    )


def _from_setup_cfg(read: Reader) -> bytes | None:
    raw = read("setup.cfg")
    if raw is None:
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(raw.decode("utf-8"))
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise InvalidMetadata(f"invalid setup.cfg ({exc})") from exc
    name = parser.get("metadata", "name", fallback=None)
    version = parser.get("metadata", "version", fallback=None)
    options = {k: v for k, v in parser.items("options")} if parser.has_section("options") else {}
    extras = (
        dict(parser.items("options.extras_require"))
        if parser.has_section("options.extras_require")
        else {}
    )
    values = [version or "", options.get("install_requires", ""), *extras.values()]
    if not name or not version or any(v.strip().startswith(("attr:", "file:")) for v in values):
        return None
    return _metadata(
        name,
        version,
        _lines(options.get("install_requires", "")),
        {k: _lines(v) for k, v in extras.items()},
        options.get("python_requires"),
    )


def _strings(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidMetadata(f"pyproject.toml: {what} is not a list of strings")
    return value


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _metadata(
    name: str,
    version: str,
    dependencies: Iterable[str],
    optional: dict[str, list[str]],
    requires_python: object,
) -> bytes:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if isinstance(requires_python, str) and requires_python.strip():
        lines.append(f"Requires-Python: {requires_python.strip()}")
    lines += [f"Requires-Dist: {_checked(d)}" for d in dependencies]
    for extra, requirements in sorted(optional.items()):
        lines.append(f"Provides-Extra: {extra}")
        for text in requirements:
            requirement = Requirement(_checked(text))
            marker = f'extra == "{extra}"'
            if requirement.marker is not None:
                marker = f"({requirement.marker}) and {marker}"
            requirement.marker = None
            lines.append(f"Requires-Dist: {requirement}; {marker}")
    if any("\n" in line or "\r" in line for line in lines):
        raise InvalidMetadata("a metadata value spans several lines")
    return ("\n".join(lines) + "\n").encode()


def _checked(text: str) -> str:
    try:
        return str(Requirement(text))
    except InvalidRequirement as exc:
        raise InvalidMetadata(f"invalid requirement {text!r}") from exc
