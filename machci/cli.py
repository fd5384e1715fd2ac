"""The `machci` command line."""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from machci import __version__
from machci.config.defaults import (
    CONFIG_NAME,
    DEFAULT_TIMEOUT,
    MAX_TIMEOUT,
    NIXPKGS_INDEX_NAME,
    SYSTEMS,
    parse_glibc,
    parse_macos,
    parse_python,
)
from machci.errors import EXIT_INPUT, InputError, MachciError

if TYPE_CHECKING:
    from machci.config.model import Config, RequirementInput
    from machci.lock.model import Lock
    from machci.sources.options import SourceOptions

# Only what every command needs is imported above: `machci check` must not pay for YAML, the
# resolver or the network stack, so each command imports what it needs when it runs.


def _add_project_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("project (override machci.yaml)")
    group.add_argument(
        "--config", type=Path, help=f"config file (default: ./{CONFIG_NAME} if present)"
    )
    group.add_argument(
        "-r",
        "--requirement",
        dest="requirements",
        action="append",
        type=Path,
        metavar="FILE",
        help="requirements file or pyproject.toml (repeatable)",
    )
    group.add_argument(
        "--extra",
        dest="extras",
        action="append",
        default=[],
        help="pyproject optional-dependencies group to include (repeatable)",
    )
    group.add_argument(
        "--group",
        dest="groups",
        action="append",
        default=[],
        help="PEP 735 dependency group to include (repeatable)",
    )
    group.add_argument("--python", help="target CPython X.Y (default 3.12)")
    group.add_argument(
        "--system",
        dest="systems",
        action="append",
        choices=SYSTEMS,
        help="target Nix system (repeatable)",
    )
    group.add_argument("--index-url", help="simple index URL of the data revision")
    group.add_argument(
        "--extra-index-url",
        dest="extra_index_urls",
        action="append",
        default=[],
        help="further index, asked only for projects the first one lacks",
    )
    group.add_argument("--snapshot", help="ignore files uploaded after this RFC 3339 time")
    group.add_argument(
        "--provider",
        dest="providers",
        action="append",
        default=[],
        metavar="[PKG=]LIST",
        help="provider order, e.g. wheel,sdist or torch=wheel",
    )
    group.add_argument("--glibc", help="newest manylinux glibc of Linux targets (default 2.42)")
    group.add_argument("--macos", help="macOS deployment target of Darwin targets (default 14.0)")
    group.add_argument(
        "--no-build",
        action="store_true",
        help="never run an sdist's build backend (build: false); refuse sdists without static"
        " metadata",
    )
    group.add_argument(
        "--build-constraint",
        dest="build_constraints",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="constraints file for build requirements, added to buildConstraints (repeatable)",
    )
    group.add_argument(
        "--skip-metadata-failures",
        action="store_true",
        help="pass over versions whose metadata their sdist's backend cannot prepare"
        " (metadataFailures: skip), at most 10 per package",
    )
    source = parser.add_argument_group("data access")
    source.add_argument("--cache-dir", type=Path, help="cache directory")
    source.add_argument("--offline", action="store_true", help="use only the cache")
    source.add_argument(
        "--refresh",
        action="store_true",
        help="ask the index again for every page, even those its Cache-Control still calls fresh,"
        " and run again the sdist backends whose failure is cached",
    )
    source.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="network timeout in seconds"
    )


def _project_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str
) -> argparse.ArgumentParser:
    """A subcommand that reads a project (machci.yaml plus the overriding options)."""
    parser = commands.add_parser(name, help=help)
    _add_project_options(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="machci", description=__doc__)
    parser.add_argument("--version", action="version", version=f"machci {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lock_parser = _project_command(commands, "lock", "resolve and print the lock")
    lock_parser.add_argument("--json", action="store_true", help="print the lock as JSON")
    lock_parser.add_argument("-o", "--output", type=Path, help="write the JSON lock to this file")
    lock_parser.add_argument(
        "--check-collisions",
        action="store_true",
        help="report paths that two wheels install with different files (exit 1 if any)",
    )
    sync_parser = _project_command(
        commands, "sync", "resolve and write default.nix (exit 1 if changed)"
    )
    sync_parser.add_argument("--check", action="store_true", help="only check, like machci check")
    sync_parser.add_argument(
        "--force", action="store_true", help="overwrite a file machci did not generate"
    )
    _project_command(commands, "check", "offline: is default.nix in sync? (exit 1 if not)")
    bump_parser = _project_command(
        commands, "bump", "move the data pin forward, re-resolve, print what changed"
    )
    bump_parser.add_argument("--to", metavar="TIME", help="new snapshot (default: now)")
    bump_parser.add_argument(
        "--dry-run", action="store_true", help="print the table, write nothing"
    )
    init_parser = commands.add_parser(
        "init", help="write machci.yaml, add the pre-commit hooks and the CI workflow"
    )
    init_parser.add_argument("-r", "--requirement", help="requirements file or pyproject.toml")
    init_parser.add_argument("--python", default="3.12", help="target CPython X.Y")
    init_parser.add_argument(
        "--system", dest="systems", action="append", choices=SYSTEMS, help="target system"
    )
    init_parser.add_argument("--snapshot", help="initial data pin (default: now)")
    init_parser.add_argument("--index-url", help="simple index of the data (default: PyPI)")
    why_parser = _project_command(commands, "why", "show which requirements pulled a package in")
    why_parser.add_argument("package")
    index_parser = commands.add_parser(
        "nixpkgs-index", help="write the versions a nixpkgs tree's Python package set offers"
    )
    index_parser.add_argument(
        "--nixpkgs", type=Path, required=True, metavar="DIR", help="nixpkgs tree to evaluate"
    )
    index_parser.add_argument(
        "--python", required=True, help="CPython X.Y whose package set is read, e.g. 3.12"
    )
    index_parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path(NIXPKGS_INDEX_NAME),
        help=f"index file to write (default: {NIXPKGS_INDEX_NAME})",
    )
    index_parser.add_argument("--cache-dir", type=Path, help="cache directory")
    return parser


def load_project(args: argparse.Namespace) -> tuple[Config, Path]:
    """Defaults, then machci.yaml, then command-line options; returns the config and its base."""
    from machci.config.load import load_config
    from machci.config.model import (
        Config,
        DataRevision,
        Providers,
        RequirementInput,
        parse_providers,
        parse_snapshot,
    )

    path: Path | None = args.config
    # Anything under the name is read, so that a FIFO, a directory or a symlink loop there is
    # reported (by load_config) rather than taken for "no machci.yaml".
    if path is None and os.path.lexists(CONFIG_NAME) and not args.requirements:
        path = Path(CONFIG_NAME)
    config = load_config(path) if path is not None else Config()
    base = path.parent if path is not None else Path()
    changes: dict[str, object] = {}
    if args.requirements or args.extras or args.groups:
        inputs = tuple(
            RequirementInput(p, tuple(args.extras), tuple(args.groups))
            for p in args.requirements or ()
        ) or tuple(
            RequirementInput(r.path, (*r.extras, *args.extras), (*r.groups, *args.groups))
            for r in config.requirements
        )
        if args.extras or args.groups:
            _check_selections(inputs, args)
        changes["requirements"] = inputs
    if args.python is not None:
        changes["python"] = parse_python(args.python)
    if args.systems:
        changes["systems"] = tuple(dict.fromkeys(args.systems))
    # An empty value given on the command line is a mistake, never "the default".
    if args.index_url is not None or args.extra_index_urls or args.snapshot is not None:
        data = config.data
        if data.source != "pypi":
            raise InputError(
                "--index-url, --extra-index-url and --snapshot set the pypi source's pin;"
                f" machci.yaml's data source is {data.source}"
            )
        changes["data"] = DataRevision(
            index=(
                _index_url("--index-url", args.index_url)
                if args.index_url is not None
                else data.index
            ),
            extra_indexes=(
                *data.extra_indexes,
                *(_index_url("--extra-index-url", url) for url in args.extra_index_urls),
            ),
            snapshot=(
                parse_snapshot(args.snapshot) if args.snapshot is not None else data.snapshot
            ),
        )
    if args.providers:
        from packaging.utils import canonicalize_name

        default, per_package = config.providers.default, dict(config.providers.per_package)
        for item in args.providers:
            package, _, order = item.rpartition("=")
            if package:
                per_package[canonicalize_name(package)] = parse_providers(order)
            else:
                default = parse_providers(order)
        changes["providers"] = Providers(default, per_package)
    for key, parse in (("glibc", parse_glibc), ("macos", parse_macos)):
        if getattr(args, key) is not None:
            changes[key] = parse(getattr(args, key))
    if args.no_build:
        changes["build"] = False
    if args.build_constraints:
        from machci.config.model import BuildConstraint
        from machci.errors import Location

        named = Location.of("--build-constraint")
        added = (BuildConstraint(named, path=path) for path in args.build_constraints)
        changes["build_constraints"] = (*config.build_constraints, *added)
    if args.skip_metadata_failures:
        changes["metadata_failures"] = "skip"
    if changes and path is not None:
        changes["overridden"] = True
    return config.with_changes(**changes), base


def _check_selections(inputs: Sequence[RequirementInput], args: argparse.Namespace) -> None:
    """--extra and --group select parts of a pyproject.toml: without one among the inputs they
    would select nothing, silently."""
    if not any(entry.path.suffix == ".toml" for entry in inputs):
        option = "--extra" if args.extras else "--group"
        names = ", ".join(entry.path.as_posix() for entry in inputs) or "none"
        raise InputError(
            f"{option} selects optional dependencies or groups of a pyproject.toml, and no"
            f" input is one (inputs: {names})"
        )


def _index_url(option: str, url: str) -> str:
    from machci.redaction import redact_unparsed
    from machci.untrusted import url_problem

    problem = url_problem(url)
    if problem:
        shown = redact_unparsed(url)
        raise InputError(f"{option} {shown!r} is not an index URL: {problem}")
    return url.rstrip("/")


def _check_data_access(args: argparse.Namespace) -> None:
    """--timeout and --cache-dir, before anything waits on the one or writes into the other."""
    timeout = getattr(args, "timeout", DEFAULT_TIMEOUT)
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):
        raise InputError(
            f"--timeout {timeout:g}: expected a number of seconds above 0 and at most"
            f" {MAX_TIMEOUT:g}"
        )
    cache_dir: Path | None = getattr(args, "cache_dir", None)
    if cache_dir is not None and cache_dir.exists() and not cache_dir.is_dir():
        raise InputError(f"--cache-dir {cache_dir} is not a directory")


def _source_options(args: argparse.Namespace) -> SourceOptions:
    from machci.sources.options import SourceOptions

    return SourceOptions(
        cache_dir=args.cache_dir, offline=args.offline, timeout=args.timeout, refresh=args.refresh
    )


def _summary(result: Lock) -> str:
    lines = [f"data: {result.revision}"]
    for system in result.systems:
        lines.append(f"{system.system} (Python {system.python}): {len(system.packages)} packages")
        for package in system.packages:
            lines.append(f"  {package.name}=={package.version}  [{package.provider}]")
    return "\n".join(lines) + "\n"


def cmd_lock(args: argparse.Namespace) -> int:
    from machci.atomic import atomic_write
    from machci.inputs.spec import build_spec
    from machci.resolve.locking import lock

    config, base = load_project(args)
    spec = build_spec(config, base)
    result = lock(spec, _source_options(args))
    text = result.dumps()
    if args.output:
        atomic_write(args.output, text.encode())
    if args.json:
        sys.stdout.write(text)
    elif not args.output:
        sys.stdout.write(_summary(result))
    if args.check_collisions:
        return _check_collisions(result, spec.indexes, args)
    return 0


def _check_collisions(result: Lock, indexes: Sequence[str], args: argparse.Namespace) -> int:
    """The report goes to stdout, or to stderr when stdout carries the JSON lock."""
    from machci.lock.collisions import find_collisions, locked_wheels
    from machci.sources.pypi.wheels import fetch_contents

    contents = fetch_contents(locked_wheels(result), indexes, _source_options(args))
    report = find_collisions(result, lambda file: contents[file.sha256])
    (sys.stderr if args.json else sys.stdout).write(report.text())
    return 1 if report.found else 0


def cmd_why(args: argparse.Namespace) -> int:
    from packaging.utils import canonicalize_name

    from machci.commands.why import explain
    from machci.inputs.spec import build_spec
    from machci.nix.synced import synced_lock
    from machci.resolve.locking import lock, nixpkgs_index

    config, base = load_project(args)
    spec = build_spec(config, base)
    options = _source_options(args)
    result = synced_lock(spec) or lock(spec, options)
    name = canonicalize_name(args.package)
    text, found = explain(result, name, nixpkgs_index(spec, options))
    if not found:
        sys.stderr.write(f"machci: {name} is not in the lock of any system\n")
        return 1
    sys.stdout.write(text + "\n")
    return 0


_PROJECT_OVERRIDES = (
    "requirements",
    "extras",
    "groups",
    "python",
    "systems",
    "index_url",
    "extra_index_urls",
    "snapshot",
    "providers",
    "glibc",
    "macos",
    "no_build",
    "build_constraints",
    "skip_metadata_failures",
)


def cmd_check(args: argparse.Namespace) -> int:
    from machci.commands.check import inspect_all, quick_inspect

    finding = None
    if all(getattr(args, name) in (None, False, []) for name in _PROJECT_OVERRIDES):
        finding = quick_inspect(args.config or Path(CONFIG_NAME))
    if finding is None:
        from machci.config.settings import settings_digest

        config, _base = load_project(args)
        settings = settings_digest(config, config.output)
        finding = inspect_all(config.output, settings, config.flake is not None)
    for problem in finding.problems:
        sys.stderr.write(f"machci: {problem}\n")
    if finding.problems:
        sys.stderr.write("machci: run `machci sync` to regenerate it\n")
        return 1
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    if args.check:
        return cmd_check(args)
    from machci.commands.sync import sync

    config, base = load_project(args)
    result = sync(config, base, _source_options(args), force=args.force)
    sys.stderr.write(f"machci: {result.message}\n")
    return 1 if result.changed else 0


def cmd_bump(args: argparse.Namespace) -> int:
    from machci.commands.bump import bump
    from machci.config.model import parse_snapshot

    config, base = load_project(args)
    to = parse_snapshot(args.to) if args.to is not None else None
    result = bump(config, base, _source_options(args), to=to, dry_run=args.dry_run)
    sys.stdout.write(result.report())
    if result.written:
        *rest, last = [str(path) for path in (config.path, *config.written)]
        sys.stderr.write(f"machci: wrote {', '.join(rest)} and {last}\n")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from machci.commands.init import init
    from machci.config.model import format_snapshot, parse_snapshot

    parse_python(args.python)
    systems = args.systems or ["x86_64-linux", "aarch64-linux"]
    pin = format_snapshot(parse_snapshot(args.snapshot)) if args.snapshot is not None else None
    index = _index_url("--index-url", args.index_url) if args.index_url is not None else None
    for step in init(Path(), args.requirement, args.python, systems, pin, index):
        sys.stdout.write(f"{step.outcome:>8} {step.path}\n")
    sys.stdout.write("next: run `machci sync`, then commit default.nix and these files\n")
    return 0


def cmd_nixpkgs_index(args: argparse.Namespace) -> int:
    from machci.atomic import atomic_write
    from machci.sources.nixpkgs.index import dumps_index, evaluate_tree, packages_attr

    index = evaluate_tree(args.nixpkgs, parse_python(args.python), args.cache_dir)
    atomic_write(args.output, dumps_index(index).encode())
    sys.stderr.write(
        f"machci: wrote {args.output}: {len(index)} packages from {args.nixpkgs}"
        f" ({packages_attr(args.python)})\n"
    )
    return 0


COMMANDS = {
    "lock": cmd_lock,
    "why": cmd_why,
    "sync": cmd_sync,
    "check": cmd_check,
    "bump": cmd_bump,
    "init": cmd_init,
    "nixpkgs-index": cmd_nixpkgs_index,
}


# `sync` exits 1 when it wrote the file (pre-commit then retries the commit) and `bump` knows
# only 0 and 2: for them every error, a resolution failure included, exits 2.
_EVERY_ERROR_EXITS_2 = frozenset({"sync", "bump"})


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _check_data_access(args)
        return COMMANDS[args.command](args)
    except MachciError as exc:
        from machci.redaction import redact

        # Messages quote URLs and requirement lines from many places: hide secrets in them here.
        sys.stderr.write(f"machci: error: {redact(str(exc))}\n")
        return EXIT_INPUT if args.command in _EVERY_ERROR_EXITS_2 else exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("machci: interrupted\n")
        return 130


def entry() -> int:
    """The `machci` command: `main`, then an exit that skips the cycle collector's last pass
    over everything a resolution left alive (a sixth of a warm lock's time); frozen objects
    are still freed when the process ends."""
    code = main()
    gc.freeze()
    return code


if __name__ == "__main__":
    raise SystemExit(entry())
