"""`machci sync`: resolve, render and atomically write the generated file (and flake.nix).

Exit codes follow pre-commit's convention: 0 when the files were already right, 1 when one was
created, changed or removed, 2 on errors (with the previous files untouched).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from machci import __version__
from machci.atomic import atomic_write, remove_leftovers
from machci.commands import check
from machci.commands.check import inspect, inspect_beside, inspect_flake, read_generated
from machci.config.defaults import CONFIG_NAME, FLAKE_NAME
from machci.errors import InputError, Location
from machci.files import read_regular, relative_input
from machci.nix.header import Header, Input, compose, digest

if TYPE_CHECKING:
    from machci.config.model import Config
    from machci.config.options import SourceOptions
    from machci.inputs.spec import Spec
    from machci.lock.model import Lock, LockedSource
    from machci.nix.usercode import WrittenCode

# machci.yaml's loader (YAML, the schema), the resolver, the network stack and the renderer are
# imported only when the quick path does not apply: an up-to-date file costs a pre-commit run
# about what `machci check` costs.


@dataclass(frozen=True)
class SyncResult:
    changed: bool
    message: str


def input_digests(
    config: Config, spec: Spec, replaced: Mapping[Path, bytes] | None = None
) -> tuple[Input, ...]:
    """The header's inputs: the config file, every requirements and build constraints file that
    was read, and every file the Nix code in machci.yaml names (overlays, patches) or the
    nixpkgs index.

    `replaced` gives the bytes a file is about to have (bump rewrites machci.yaml).
    """
    from machci.nix.usercode import prepare
    from machci.sources.trees.extra import metadata_inputs

    replaced = replaced or {}
    paths = ([config.path] if config.path else []) + list(spec.requirements.files)
    paths += list(spec.build_constraint_files)
    paths += list(prepare(written_code(config), config.output).files)
    paths += [p for extra in config.packages_extra for p in metadata_inputs(extra)]
    if config.nixpkgs.index is not None:
        paths.append(config.nixpkgs.index)
    seen: dict[str, Input] = {}
    for path in paths:
        name = relative_input(path, config.output)
        data = replaced[path] if path in replaced else _read_input(path)
        seen.setdefault(name, Input(name, digest(data)))
    return tuple(seen[name] for name in sorted(seen))


def _read_input(path: Path) -> bytes:
    try:
        return read_regular(path)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", Location.of(path)) from exc


def render_files(config: Config, result: Lock, inputs: tuple[Input, ...]) -> dict[Path, str]:
    """Every file sync writes, whole: the generated file, then flake.nix with `flake:`, then
    the pylock.toml files `output:` names."""
    generated = render_file(config, result, inputs)
    files = {config.output: generated}
    if config.flake is not None:
        files[config.flake_output] = render_flake_file(config, result, generated)
    for path in config.lock_outputs:
        files[path] = render_lock_file(config, result, generated, path.name)
    return files


def _header(
    config: Config,
    result: Lock,
    inputs: tuple[Input, ...],
    name: str,
    flake: str | None = None,
    pins: tuple[str, ...] = (),
) -> Header:
    return Header(
        __version__,
        result.revision,
        _settings(config),
        inputs,
        "",
        overridden=config.overridden,
        output=name,
        flake=flake,
        pins=pins,
    )


def render_file(config: Config, result: Lock, inputs: tuple[Input, ...]) -> str:
    """The whole generated file: header and body."""
    from machci.nix.render import RenderOptions, render
    from machci.nix.usercode import prepare

    code = prepare(written_code(config), config.output)
    options = RenderOptions(
        python=config.python,
        image=config.image,
        ignored_libraries=config.ignore_missing_libraries,
        overrides=code.overrides,
        overlays_pre=code.overlays_pre,
        overlays_post=code.overlays_post,
        ignore_collisions=config.ignore_collisions,
        r_packages=config.r_packages.names if config.r_packages else None,
    )
    flake = FLAKE_NAME if config.flake is not None else None
    header = _header(config, result, inputs, config.output.name, flake, pins_of(result))
    header = header._replace(locks=tuple(path.name for path in config.lock_outputs))
    return compose(header, render(result, options))


def pins_of(result: Lock) -> tuple[str, ...]:
    """The header's pin lines: each packagesExtra source once, sorted, with its package's name.
    Archives' hashes and git commits are what sync keeps; the names let `machci why` tell
    the sources' roots apart without resolving (commands/synced.py)."""
    lines = {
        json.dumps({**p.source.to_json(), "name": p.name}, sort_keys=True, separators=(",", ":"))
        for system in result.systems
        for p in system.packages
        if p.source is not None
    }
    return tuple(sorted(lines))


def recorded_sources(pins: Iterable[str]) -> list[tuple[LockedSource, str | None]]:
    """The sources a header's pin lines record, each with the package it became; lines that
    are not a source are passed over (what they pinned is then looked up again)."""
    from machci.lock.model import LockedSource

    found = []
    for line in pins:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        source = LockedSource.from_json(value)
        if source is not None:
            name = value.get("name")
            found.append((source, name if isinstance(name, str) else None))
    return found


def previous_pins(output: Path) -> tuple[LockedSource, ...]:
    """The archives' hashes and git commits the existing generated file records (none when
    it is absent or unreadable): the pins `sync` keeps."""
    from machci.nix.header import split

    try:
        parsed = split(read_regular(output).decode("utf-8"))
    except (OSError, UnicodeDecodeError):
        return ()
    sources = recorded_sources(parsed[0].pins) if parsed else []
    return tuple(source for source, _name in sources if source.kind != "path")


def render_flake_file(config: Config, result: Lock, generated: str) -> str:
    """flake.nix, header and body. Its one input is the generated file it imports, so it goes
    out of sync with every change of that file."""
    from machci.nix.flake import FlakeOptions, render_flake
    from machci.nix.render import python_attr

    assert config.flake is not None
    project = next((p.name for s in result.systems for p in s.packages if p.scripts), None)
    options = FlakeOptions(
        nixpkgs=config.flake.nixpkgs,
        output=config.output.name,
        python_attr=python_attr(config.python),
        app=(config.flake.app or project) if project is not None else None,
    )
    body = render_flake((s.system for s in result.systems), options)
    inputs = (Input(config.output.name, digest(generated.encode())),)
    return compose(_header(config, result, inputs, FLAKE_NAME), body)


def render_lock_file(config: Config, result: Lock, generated: str, name: str) -> str:
    """A pylock.toml (PEP 751) of the same lock, with the generated file's header as TOML
    comments. Like flake.nix, its one input is the generated file, so it goes out of sync with
    every change of that file."""
    from machci.inputs.targets import Target
    from machci.lock import pylock

    environments = {
        s.system: Target(s.system, s.python, config.glibc, config.macos).environment
        for s in result.systems
    }
    inputs = (Input(config.output.name, digest(generated.encode())),)
    return compose(_header(config, result, inputs, name), pylock.dumps(result, environments))


def generate(config: Config, base: Path, options: SourceOptions) -> dict[Path, str]:
    """Resolve and render every file without writing anything."""
    from machci.inputs.spec import build_spec
    from machci.nix.usercode import check_syntax
    from machci.resolve.locking import lock

    check_syntax(written_code(config))
    spec = build_spec(config, base)
    inputs = input_digests(config, spec)  # hashed before resolving: what was actually read
    pins = previous_pins(config.output)
    return render_files(config, lock(spec, options, pins=pins), inputs)


def sync(config: Config, base: Path, options: SourceOptions, *, force: bool = False) -> SyncResult:
    for path in config.written:
        remove_leftovers(path)  # of a run that was killed while writing
    settings = _settings(config)
    if not force and _up_to_date(config, settings):
        removed = remove_old_flake(config)
        if removed is not None:
            return SyncResult(True, f"removed {removed}")
        return SyncResult(False, f"{config.output} is up to date")
    done = []
    for path, text in generate(config, base, options).items():
        data = text.encode()
        existing = _read_input(path) if path.exists() else None
        if existing != data:
            atomic_write(path, data)
            done.append(f"{'updated' if existing is not None else 'created'} {path}")
    removed = remove_old_flake(config)
    if removed is not None:
        done.append(f"removed {removed}")
    if not done:
        return SyncResult(False, f"{config.output} is up to date")
    return SyncResult(True, ", ".join(done))


def _up_to_date(config: Config, settings: str) -> bool:
    """Whether every file sync writes is in sync and from this machci. Refuses files machci did
    not write, or a newer machci did."""
    findings = [inspect(config.output, settings)]
    if config.flake is not None:
        findings.append(inspect_flake(config.output, settings))
    findings += [inspect_beside(config.output, p.name, settings) for p in config.lock_outputs]
    return all(
        not f.problems and f.header is not None and f.header.version == __version__
        for f in findings
    )


def remove_old_flake(config: Config) -> Path | None:
    """With `flake:` off, the flake.nix machci wrote for this file is removed (its header says
    so); any other flake.nix is left alone. The removed file, or None."""
    if config.flake is not None:
        return None
    flake = config.flake_output
    try:
        parsed = read_generated(flake)
    except InputError:  # not machci's, or a newer machci's
        return None
    if parsed is None:
        return None
    header = parsed[0]
    if header.output != FLAKE_NAME or [i.path for i in header.inputs] != [config.output.name]:
        return None
    flake.unlink()
    return flake


def _settings(config: Config) -> str:
    from machci.nix.settings import settings_digest

    return settings_digest(config, config.output)


def quickly_up_to_date(args: argparse.Namespace) -> Path | None:
    """The generated file, when machci.yaml's bytes vouch that it and its flake.nix are up to
    date and from this machci (check.quick_inspect), so that nothing is loaded or written; else
    None, and sync takes its full path."""
    if args.force or not check.without_overrides(args):
        return None
    config_path = args.config or Path(CONFIG_NAME)
    finding = check.quick_inspect(config_path)
    if finding is None or finding.problems or finding.header is None:
        return None
    if finding.header.version != __version__:
        return None
    output = check.quick_output(config_path)
    if finding.header.flake is None and (output.parent / FLAKE_NAME).exists():
        return None  # a flake.nix machci wrote earlier may be due for removal
    for path in (output, output.parent / FLAKE_NAME):
        remove_leftovers(path)  # of a run that was killed while writing
    return output


def run(args: argparse.Namespace) -> int:
    if args.check:
        return check.run(args)
    output = quickly_up_to_date(args)
    if output is not None:
        sys.stderr.write(f"machci: {output} is up to date\n")
        return 0
    from machci.config.layers import load_project, source_options

    config, base = load_project(args)
    result = sync(config, base, source_options(args), force=args.force)
    sys.stderr.write(f"machci: {result.message}\n")
    return 1 if result.changed else 0


def written_code(config: Config) -> WrittenCode:
    """The part of the config that is Nix code: what nix.usercode checks and relocates."""
    from machci.nix.usercode import WrittenCode

    return WrittenCode(config.overrides, config.overlays_pre, config.overlays_post, config.path)
