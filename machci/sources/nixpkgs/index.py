"""Which Python package versions a nixpkgs tree offers: its `python3XXPackages`, as an index.

The resolver of the `nixpkgs` provider needs, per PyPI name, the attributes of nixpkgs' Python
package set and their versions, without evaluating nixpkgs on every run. `evaluate_tree` asks Nix
once per tree (cached by the tree's content), `dumps_index` writes the result as a small JSON file
and `load_index` reads it back. Everything between the Nix call and the file is pure.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from packaging.utils import InvalidName, canonicalize_name
from packaging.version import InvalidVersion, Version

from machci.config.defaults import parse_version_pair
from machci.errors import InputError, Location
from machci.files import read_regular

# Seconds. Generous: a real python3XXPackages has thousands of attributes, each evaluated.
EVAL_TIMEOUT = 600.0

CACHE_KIND = "nixpkgs-index"


@dataclass(frozen=True)
class NixpkgsPackage:
    """One attribute of `python3XXPackages` and the version it builds."""

    attr: str
    version: str


NixpkgsIndex: TypeAlias = dict[str, tuple[NixpkgsPackage, ...]]


def packages_attr(python: str) -> str:
    """The package set of a CPython X.Y in nixpkgs: "3.12" → "python312Packages"."""
    major, minor = parse_version_pair(python, "Python version")
    return f"python{major}{minor}Packages"


def _ordered(packages: Iterable[NixpkgsPackage]) -> tuple[NixpkgsPackage, ...]:
    """Newest version first, ties by attribute name: the order the resolver tries them in."""
    by_attr = sorted(set(packages), key=lambda p: (p.attr, p.version))
    return tuple(sorted(by_attr, key=lambda p: Version(p.version), reverse=True))


def _is_pep440(version: str) -> bool:
    try:
        Version(version)
    except InvalidVersion:
        return False
    return True


def build_index(records: Iterable[tuple[str, str, str]]) -> NixpkgsIndex:
    """An index from (attr, pname, version) triples.

    nixpkgs' pnames are PyPI names in most cases, so the canonical pname is the key. Versions
    PEP 440 cannot read (`unstable-2024-01-01`) and pnames that are no valid project name are
    left out: no requirement could select them.
    """
    grouped: dict[str, list[NixpkgsPackage]] = {}
    for attr, pname, version in records:
        try:
            name = canonicalize_name(pname, validate=True)
        except InvalidName:
            continue
        if _is_pep440(version):
            grouped.setdefault(name, []).append(NixpkgsPackage(attr, version))
    return {name: _ordered(grouped[name]) for name in sorted(grouped)}


def dumps_index(index: Mapping[str, Iterable[NixpkgsPackage]]) -> str:
    """The index file: names sorted, each list newest first, indent 2, LF, trailing newline.

    A name without entries is left out, so that reading the file back gives the same index.
    """
    data: dict[str, list[dict[str, str]]] = {}
    for name in sorted(index):
        packages = _ordered(index[name])
        if packages:
            data[name] = [{"attr": p.attr, "version": p.version} for p in packages]
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def load_index(path: Path) -> NixpkgsIndex:
    """Read and check an index file; structural mistakes are errors that name the file.

    Each name maps to a list of {"attr", "version"} objects or to one such object. Entries whose
    version is not PEP 440 are skipped without a word (nixpkgs has `unstable-…` versions);
    other keys of an entry are ignored. Names are canonicalised, and spellings of one name merged.
    """
    where = Location.of(path)
    try:
        data = json.loads(read_regular(path))
    except OSError as exc:
        raise InputError(f"cannot read the nixpkgs index: {exc.strerror or exc}", where) from exc
    except ValueError as exc:
        raise InputError(f"the nixpkgs index is not JSON: {exc}", where) from exc
    try:
        return _parse(data)
    except ValueError as exc:
        raise InputError(str(exc), where) from None


def _parse(data: object) -> NixpkgsIndex:
    """The index in a decoded file; ValueError says what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"the nixpkgs index must be a JSON object of names, not {_kind(data)}")
    grouped: dict[str, list[NixpkgsPackage]] = {}
    for key, value in data.items():
        try:
            name = canonicalize_name(key, validate=True)
        except InvalidName:
            raise ValueError(f"{key!r} is not a valid package name") from None
        if isinstance(value, dict):
            entries = [(f"{key!r}", value)]
        elif isinstance(value, list):
            entries = [(f"{key!r}[{n}]", entry) for n, entry in enumerate(value)]
        else:
            raise ValueError(
                f"{key!r} must be a list of {{attr, version}} objects, not {_kind(value)}"
            )
        packages = grouped.setdefault(name, [])
        for label, entry in entries:
            package = _entry(entry, label)
            if package is not None:
                packages.append(package)
    return {name: _ordered(grouped[name]) for name in sorted(grouped) if grouped[name]}


def _entry(entry: object, label: str) -> NixpkgsPackage | None:
    """One {"attr", "version"} object; None when its version is not PEP 440."""
    if not isinstance(entry, dict):
        raise ValueError(f"{label} must be an object with attr and version, not {_kind(entry)}")
    for field in ("attr", "version"):
        value = entry.get(field)
        if not isinstance(value, str) or not value:
            found = "missing" if field not in entry else _kind(value)
            raise ValueError(f"{label}: {field} must be a non-empty string, not {found}")
    attr, version = entry["attr"], entry["version"]
    return NixpkgsPackage(attr, version) if _is_pep440(version) else None


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    names = {dict: "an object", list: "a list", bool: "a boolean"}
    return names.get(type(value), "a number")


# Called with the tree and the package set's name. Each attribute is probed on its own inside
# `tryEval`, and only the small record is forced (`deepSeq`), never the derivation itself: a
# throwing attribute or alias, or a broken package, drops out instead of failing the whole run,
# and nothing is instantiated. An empty `config` and no overlays keep the user's
# ~/.config/nixpkgs out of the result: the cache key could not see it.
_EXPRESSION = """\
{ tree, attr }:
let
  pkgs = import tree { config = { }; overlays = [ ]; };
  set = if pkgs ? ${attr} then pkgs.${attr} else throw "this nixpkgs has no ${attr}";
  probe = name:
    let
      tried = builtins.tryEval (
        let
          value = set.${name};
          record =
            if builtins.isAttrs value
              && (value.type or null) == "derivation"
              && builtins.isString (value.pname or null)
              && builtins.isString (value.version or null)
            then { attr = name; pname = value.pname; version = value.version; }
            else null;
        in
        builtins.deepSeq record record);
    in
    if tried.success then tried.value else null;
in
builtins.filter (record: record != null) (map probe (builtins.attrNames set))
"""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def evaluate_tree(
    nixpkgs: Path, python: str, cache_dir: Path | None, *, timeout: float = EVAL_TIMEOUT
) -> NixpkgsIndex:
    """The index of `python3XXPackages` in a nixpkgs tree, evaluated by nix-instantiate.

    Evaluating thousands of attributes is slow, so the records are cached per tree content
    (see `tree_key`); a tree whose content cannot be vouched for is evaluated every time.
    """
    from machci.sources.cache import Cache, default_cache_dir

    tree = nixpkgs.resolve()
    attr = packages_attr(python)
    if not tree.is_dir():
        raise InputError(f"{nixpkgs} is not a directory (expected a nixpkgs tree)")
    if not (tree / "default.nix").is_file():
        raise InputError(f"{nixpkgs} has no default.nix (expected a nixpkgs tree)")
    content = tree_key(tree)
    if content is None:
        return build_index(_evaluate(tree, attr, timeout))
    key = hashlib.sha256(
        json.dumps(
            {"attr": attr, "expression": _EXPRESSION, "tree": content}, sort_keys=True
        ).encode()
    ).hexdigest()
    cache = Cache(cache_dir or default_cache_dir())
    records = _records(cache.derived(CACHE_KIND, key))
    if records is None:
        with cache.derived_lock(CACHE_KIND, key):
            records = _records(cache.derived(CACHE_KIND, key))
            if records is None:
                records = _evaluate(tree, attr, timeout)
                cache.put_derived(CACHE_KIND, key, [_record_json(r) for r in records])
    return build_index(records)


def tree_key(tree: Path) -> str | None:
    """What identifies a tree's content, or None when nothing can (then it is not cached).

    The top of a git work tree is its `HEAD` commit, provided `git status` shows nothing to
    commit; a dirty work tree is not cached at all, since its changes may be edited back and
    forth. Files git ignores are not looked at. A subdirectory of a work tree is no git key (a
    parent project's commit would not see an ignored nixpkgs in it), so it and any other
    directory get a digest over (relative path, size, mtime_ns) of every file below it, `.git`
    excluded: cheap for nixpkgs' ~40k files, and any checkout, unpack or edit changes an mtime.
    Files the tree reads from outside itself are never seen.
    """
    tree = tree.resolve()
    commit = _git_commit(tree)
    if commit is not None:
        return None if commit == "dirty" else f"git:{commit}"
    digest = hashlib.sha256()
    for directory, subdirectories, files in os.walk(tree):
        subdirectories[:] = sorted(d for d in subdirectories if d != ".git")
        base = Path(directory)
        for name in sorted(files):
            path = base / name
            try:
                status = path.stat()
            except OSError:  # a dangling symlink: its own metadata stands for it
                status = path.lstat()
            relative = path.relative_to(tree).as_posix()
            digest.update(f"{relative}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
    return f"files:{digest.hexdigest()}"


def _git_commit(tree: Path) -> str | None:
    """The HEAD commit of a clean work tree whose top is `tree`, "dirty", or None (no git)."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # status must not write the index

    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(
                ["git", "-C", str(tree), *args],
                capture_output=True,
                text=True,
                env=env,
                timeout=EVAL_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout if result.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel", "HEAD")
    if top is None or len(top.splitlines()) != 2:
        return None
    toplevel, commit = top.splitlines()
    if Path(toplevel).resolve() != tree:
        return None
    status = git("status", "--porcelain", "--untracked-files=normal")
    if status is None:
        return None
    return "dirty" if status.strip() else commit


def _records(value: object) -> list[tuple[str, str, str]] | None:
    """(attr, pname, version) from Nix's answer or its cached copy; None when malformed."""
    if not isinstance(value, list):
        return None
    records = []
    for item in value:
        if not isinstance(item, dict):
            return None
        record = (item.get("attr"), item.get("pname"), item.get("version"))
        if not all(isinstance(field, str) for field in record):
            return None
        records.append((str(record[0]), str(record[1]), str(record[2])))
    return records


def _record_json(record: tuple[str, str, str]) -> dict[str, str]:
    return dict(zip(("attr", "pname", "version"), record, strict=True))


def _evaluate(tree: Path, attr: str, timeout: float) -> list[tuple[str, str, str]]:
    """Run nix-instantiate on the tree; a failure is one line naming the tree and Nix's error."""
    # Evaluation never needs a binary cache; without one Nix cannot stall on the network.
    config = os.environ.get("NIX_CONFIG", "")
    env = {**os.environ, "NIX_CONFIG": f"{config}\nsubstituters =\n"}
    command = ["nix-instantiate", "--eval", "--strict", "--json", "--expr", _EXPRESSION]
    command += ["--argstr", "tree", str(tree), "--argstr", "attr", attr]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise InputError("nix-instantiate is not installed: install Nix to read nixpkgs") from None
    except subprocess.TimeoutExpired:
        raise InputError(
            f"evaluating {attr} of {tree} took longer than {timeout:g} s; gave up"
        ) from None
    if result.returncode != 0:
        raise InputError(f"cannot evaluate {attr} of {tree}: {nix_error(result.stderr)}")
    try:
        records = _records(json.loads(result.stdout))
    except ValueError:
        records = None
    if records is None:
        raise InputError(f"nix-instantiate gave unexpected output for {attr} of {tree}")
    return records


def nix_error(stderr: str) -> str:
    """Nix's error as one line: the last `error:` line and the place it points at.

    Nix ends its report with a code excerpt, so its literal last line says little; the last
    `error:` line is the root cause and the `at FILE:LINE:COL:` after it is where.
    """
    lines = [_ANSI.sub("", line).strip() for line in stderr.splitlines()]
    lines = [line for line in lines if line]
    errors = [n for n, line in enumerate(lines) if line.startswith("error:")]
    if not errors:
        return lines[-1] if lines else "nix-instantiate failed without a message"
    message = lines[errors[-1]].removeprefix("error:").strip()
    after = lines[errors[-1] + 1 : errors[-1] + 2]
    if after and after[0].startswith("at ") and after[0].endswith(":"):
        message += f" ({after[0][:-1]})"
    return message
