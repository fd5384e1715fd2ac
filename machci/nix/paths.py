"""Relative path literals in the Nix code users write into machci.yaml.

Override expressions (`patches: "[ ./patches/fix.patch ]"`) are written relative to machci.yaml,
but Nix resolves a path literal relative to the file it stands in: default.nix, which may live
elsewhere. So each relative path literal is rewritten relative to the generated file, and the
files it names become inputs of the header, so `machci check` sees them change.

A small scanner finds the literals: Nix strings (`"…"`, `''…''`) and comments are skipped, and a
path literal is `./x` or `../x` made of Nix's path characters. Nothing else is changed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

_PATH = re.compile(r"\.\.?(?:/[A-Za-z0-9._+-]+)+/?")
_BEFORE_PATH = re.compile(r"[A-Za-z0-9._+/-]")  # a path literal cannot continue a token


@dataclass(frozen=True)
class Relocated:
    expression: str
    files: tuple[Path, ...]  # every file the expression's paths name (directories expanded)
    missing: tuple[Path, ...]  # paths that name nothing


def _skip_indented_string(text: str, start: int) -> int:
    """The index after the `''` that closes the indented string opened before `start`."""
    index = start
    while index < len(text):
        if text.startswith("'''", index) or text.startswith("''$", index):
            index += 3
        elif text.startswith("''\\", index):
            index += 4
        elif text.startswith("''", index):
            return index + 2
        else:
            index += 1
    return index


def _skip_string(text: str, start: int) -> int:
    """The index after the `"` that closes the string opened before `start`."""
    index = start
    while index < len(text):
        if text[index] == "\\":
            index += 2
        elif text[index] == '"':
            return index + 1
        else:
            index += 1
    return index


def relocate(expression: str, source: Path, target: Path) -> Relocated:
    """Rewrite relative path literals written in directory `source` for a file in `target`."""
    out: list[str] = []
    files: list[Path] = []
    missing: list[Path] = []
    index = 0
    while index < len(expression):
        char = expression[index]
        if char == '"':
            end = _skip_string(expression, index + 1)
        elif expression.startswith("''", index):
            end = _skip_indented_string(expression, index + 2)
        elif char == "#":
            newline = expression.find("\n", index)
            end = len(expression) if newline < 0 else newline
        elif expression.startswith("/*", index):
            close = expression.find("*/", index + 2)
            end = len(expression) if close < 0 else close + 2
        elif char == "." and (index == 0 or not _BEFORE_PATH.match(expression[index - 1])):
            match = _PATH.match(expression, index)
            if match is None:
                end = index + 1
            else:
                literal = match.group(0)
                absolute = Path(os.path.normpath(source / literal))
                if absolute.exists():
                    files.extend(_files(absolute))
                else:
                    missing.append(absolute)
                moved = Path(os.path.relpath(absolute, target)).as_posix()
                out.append(moved if moved.startswith("../") else f"./{moved}")
                index = match.end()
                continue
        else:
            end = index + 1
        out.append(expression[index:end])
        index = end
    return Relocated("".join(out), tuple(sorted(set(files))), tuple(missing))


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path]
