"""The `machci` command line: parsing arguments, and handing them to the command's module
(machci.commands), with one way to report errors and exit."""

from __future__ import annotations

import argparse
import gc
import math
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path

from machci import __version__
from machci.config.defaults import (
    CONFIG_NAME,
    DEFAULT_TIMEOUT,
    MAX_TIMEOUT,
    NIXPKGS_INDEX_NAME,
    SYSTEMS,
)
from machci.errors import EXIT_INPUT, InputError, MachciError

# Only what every command needs is imported above: `machci check` must not pay for YAML, the
# resolver or the network stack, so each command imports what it needs when it runs.


def _add_project_options(parser: argparse.ArgumentParser, systems: bool = True) -> None:
    """The options that override machci.yaml; without `systems`, the command gives --system a
    meaning of its own and the configured systems stay."""
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
    if systems:
        group.add_argument(
            "--system",
            dest="systems",
            action="append",
            choices=SYSTEMS,
            help="target Nix system (repeatable)",
        )
    else:
        parser.set_defaults(systems=None)
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
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help: str,
    systems: bool = True,
) -> argparse.ArgumentParser:
    """A subcommand that reads a project (machci.yaml plus the overriding options)."""
    parser = commands.add_parser(name, help=help)
    _add_project_options(parser, systems)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="machci",
        description="machci: requirements in, a reproducible Nix Python environment out.",
    )
    parser.add_argument("--version", action="version", version=f"machci {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lock_parser = _project_command(commands, "lock", "resolve and print the lock")
    lock_parser.add_argument("--json", action="store_true", help="print the lock as JSON")
    lock_parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help="write the lock to this file: PEP 751 when it is named pylock.toml or"
        " pylock.NAME.toml, else machci's JSON",
    )
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
    bump_parser.add_argument(
        "--format",
        choices=("text", "markdown"),
        default="text",
        help="markdown: the pull request body the Action opens (release notes, advisories)",
    )
    bump_parser.add_argument(
        "--no-advisories",
        dest="advisories",
        action="store_false",
        help="with --format markdown: do not ask the index for known vulnerabilities",
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
    graph_parser = _project_command(
        commands, "graph", "print one system's locked dependency graph", systems=False
    )
    graph_parser.add_argument(
        "--system", choices=SYSTEMS, help="the system to draw (default: the first configured)"
    )
    graph_parser.add_argument(
        "--format", choices=("text", "dot", "mermaid"), default="text", help="default: text"
    )
    graph_parser.add_argument(
        "--why", metavar="NAME", help="only the paths from the requirements to NAME"
    )
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


# Each command's module, imported when it runs (see above).
COMMANDS = {
    "lock": "machci.commands.lock",
    "why": "machci.commands.why",
    "graph": "machci.commands.graph",
    "sync": "machci.commands.sync",
    "check": "machci.commands.check",
    "bump": "machci.commands.bump",
    "init": "machci.commands.init",
    "nixpkgs-index": "machci.commands.nixpkgs_index",
}


# `sync` exits 1 when it wrote the file (pre-commit then retries the commit) and `bump` knows
# only 0 and 2: for them every error, a resolution failure included, exits 2.
_EVERY_ERROR_EXITS_2 = frozenset({"sync", "bump"})


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _check_data_access(args)
        run: Callable[[argparse.Namespace], int] = import_module(COMMANDS[args.command]).run
        return run(args)
    except MachciError as exc:
        from machci.redaction import redact

        # Messages quote URLs and requirement lines from many places: hide secrets in them here.
        sys.stderr.write(f"machci: error: {redact(str(exc))}\n")
        return EXIT_INPUT if args.command in _EVERY_ERROR_EXITS_2 else exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("machci: interrupted\n")
        return 130


def entry() -> int:
    """The `machci` command: `main` with the cycle collector off, as a resolution runs anyway
    (resolve/locking.py): turned back on after it, the collector would first pass over
    everything the resolution left alive, and again at exit (together a sixth of a warm
    lock's time). A command is one short process; reference counting frees the rest."""
    gc.disable()
    code = main()
    gc.freeze()
    return code


if __name__ == "__main__":
    raise SystemExit(entry())
