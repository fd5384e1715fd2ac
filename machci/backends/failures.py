"""Versions whose metadata their sdist's build backend cannot prepare, and what to say about them.

By default such a version stops the run, as in pip and uv: passing over it quietly lets the
resolver walk back release by release to something years old (rpy2 3.1.0 for a machine without
R) and report success. `metadataFailures: skip` (or `--skip-metadata-failures`) passes over them
instead, each named in a warning, and at most MAX_SKIPPED_VERSIONS of one package.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from packaging.requirements import InvalidRequirement, Requirement

from machci.dists import DistFile, MetadataFailure

MAX_SKIPPED_VERSIONS = 10
# Characters of one line of the backend's output shown in a message.
LINE_LIMIT = 300
# Control characters (escape sequences included) a backend could send to the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def printable(line: str) -> str:
    """Text from a backend's output as it may be shown: controls (escape sequences for the
    terminal, line breaks) escaped, length bounded."""
    shown = _CONTROL.sub(lambda m: repr(m.group())[1:-1], line)
    return shown if len(shown) <= LINE_LIMIT else shown[:LINE_LIMIT] + "…"


def _tool_names(build_requires: Sequence[str]) -> list[str]:
    """The names of build requirements, as written (unparseable ones left out)."""
    names = []
    for text in build_requires:
        try:
            names.append(Requirement(text).name)
        except InvalidRequirement:
            continue
    return list(dict.fromkeys(names))


def ways_out(file: DistFile, build_requires: Sequence[str] = ()) -> list[str]:
    """What the user can change so that the lock no longer needs this version's metadata."""
    name, version = file.name, file.version
    tools = _tool_names(build_requires)
    example = f"{tools[0]}<N" if tools else "setuptools<70"
    of = f" (it builds with {', '.join(tools)})" if tools else ""
    return [
        f"take a version that has a wheel, or leave this one out: `{name}!={version}` in a"
        " requirements or constraints file",
        f"take {name} from elsewhere: `providers: {{{name}: wheel}}` (or nixpkgs) in machci.yaml",
        f"build it with older build tools{of}: `buildConstraints: ['{example}']` in machci.yaml,"
        " or --build-constraint FILE",
        "pass over versions that fail: `metadataFailures: skip` in machci.yaml, or"
        " --skip-metadata-failures",
    ]


def failure_message(file: DistFile, failure: MetadataFailure) -> str:
    """One message: the package, version and file, the failure, the backend's last lines of
    output, and the ways out."""
    lines = [
        f"cannot prepare the metadata of {file.name} {file.version} ({file.filename}):"
        f" {printable(str(failure))}"
    ]
    if failure.tail:
        lines.append("  last lines of output:")
        lines.extend(f"    | {printable(line)}" for line in failure.tail)
    lines.append("  ways out:")
    lines.extend(f"    - {way}" for way in ways_out(file, failure.build_requires))
    return "\n".join(lines)


def too_many_message(file: DistFile, failure: MetadataFailure, skipped: Sequence[str]) -> str:
    """The bound on skipping is reached: every version passed over, then the last failure."""
    return (
        f"{file.name}: the metadata of {len(skipped)} versions could not be prepared"
        f" ({', '.join(skipped)}), and metadataFailures: skip passes over at most"
        f" {MAX_SKIPPED_VERSIONS} versions of a package; the last one:\n"
        + failure_message(file, failure)
    )
