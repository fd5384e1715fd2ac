"""`machci sync`: resolve, render and atomically write the generated file.

Exit codes follow pre-commit's convention: 0 when the file was already right, 1 when it was
created or changed, 2 on errors (with the previous file untouched).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from machci import __version__
from machci.atomic import atomic_write, remove_leftovers
from machci.check import inspect
from machci.config import Config, settings_digest
from machci.errors import InputError, Location
from machci.files import read_regular
from machci.header import Header, Input, compose, digest, relative_input
from machci.options import SourceOptions

if TYPE_CHECKING:
    from machci.lock import Lock, LockedSource
    from machci.spec import Spec

# The resolver, the network stack and the renderer are imported only when the fast path does not
# apply: an up-to-date file costs a pre-commit run about what `machci check` costs.


@dataclass(frozen=True)
class SyncResult:
    changed: bool
    message: str


def input_digests(
    config: Config, spec: Spec, replaced: Mapping[Path, bytes] | None = None
) -> tuple[Input, ...]:
    """The header's inputs: the config file, every requirements file that was read, and every
    file the Nix code in machci.yaml names (overlays, patches) or the nixpkgs index.

    `replaced` gives the bytes a file is about to have (bump rewrites machci.yaml).
    """
    from machci.nix.usercode import prepare
    from machci.sources.trees import metadata_inputs

    replaced = replaced or {}
    paths = ([config.path] if config.path else []) + list(spec.requirements.files)
    paths += list(prepare(config).files)
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


def render_file(config: Config, result: Lock, inputs: tuple[Input, ...]) -> str:
    """The whole generated file: header and body."""
    from machci.nix.render import RenderOptions, render
    from machci.nix.usercode import prepare

    code = prepare(config)
    options = RenderOptions(
        python=config.python,
        image=config.image,
        ignored_libraries=config.ignore_missing_libraries,
        overrides=code.overrides,
        overlays_pre=code.overlays_pre,
        overlays_post=code.overlays_post,
        ignore_collisions=config.ignore_collisions,
    )
    body = render(result, options)
    settings = settings_digest(config, config.output)
    header = Header(
        __version__,
        result.revision,
        settings,
        inputs,
        "",
        overridden=config.overridden,
        output=config.output.name,
        pins=pins_of(result),
    )
    return compose(header, body)


def pins_of(result: Lock) -> tuple[str, ...]:
    """The header's pin lines: each archive's hash and git commit once, sorted."""
    sources = {
        p.source
        for system in result.systems
        for p in system.packages
        if p.source is not None and p.source.kind != "path"
    }
    return tuple(
        sorted(json.dumps(s.to_json(), sort_keys=True, separators=(",", ":")) for s in sources)
    )


def previous_pins(output: Path) -> tuple[LockedSource, ...]:
    """The pins the existing generated file records (none when it is absent or unreadable)."""
    from machci.header import split
    from machci.lock import LockedSource

    try:
        parsed = split(read_regular(output).decode("utf-8"))
    except (OSError, UnicodeDecodeError):
        return ()
    found = []
    for line in parsed[0].pins if parsed else ():
        try:
            pin = LockedSource.from_json(json.loads(line))
        except ValueError:
            continue
        if pin is not None:
            found.append(pin)
    return tuple(found)


def generate(config: Config, base: Path, options: SourceOptions) -> str:
    """Resolve and render the whole file without writing anything."""
    from machci.locking import lock
    from machci.nix.usercode import check_syntax
    from machci.spec import build_spec

    check_syntax(config)
    spec = build_spec(config, base)
    inputs = input_digests(config, spec)  # hashed before resolving: what was actually read
    pins = previous_pins(config.output)
    return render_file(config, lock(spec, options, pins=pins), inputs)


def sync(config: Config, base: Path, options: SourceOptions, *, force: bool = False) -> SyncResult:
    output = config.output
    remove_leftovers(output)  # of a run that was killed while writing
    settings = settings_digest(config, output)
    existing: bytes | None = None
    if output.exists():
        if not force:
            finding = inspect(output, settings)  # refuses foreign or newer files
            assert finding.header is not None
            if not finding.problems and finding.header.version == __version__:
                return SyncResult(False, f"{output} is up to date")
        existing = _read_input(output)
    data = generate(config, base, options).encode()
    if existing == data:
        return SyncResult(False, f"{output} is up to date")
    atomic_write(output, data)
    return SyncResult(True, f"{'updated' if existing is not None else 'created'} {output}")
