"""The settings digest in the generated file's header: every setting that shapes the file, from
machci.yaml and the command line, as one sha256 that is the same on every machine."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from machci.config.model import BuildConstraint, Config, DataRevision, ExtraSource
from machci.hashes import parse_sha256, to_sri
from machci.nix.header import digest


def settings_digest(config: Config, output: Path) -> str:
    """A digest of every setting that shapes the generated file, for the header.

    Paths are taken relative to the output's directory so the digest is the same on every machine.
    """
    base = output.parent.resolve()

    def rel(path: Path) -> str:
        return Path(os.path.relpath(path.resolve(), base)).as_posix()

    settings = {
        "requirements": [
            {"path": rel(r.path), "extras": list(r.extras), "groups": list(r.groups)}
            for r in config.requirements
        ],
        "python": config.python,
        "systems": sorted(config.systems),
        "data": _data_settings(config.data, rel),
        "providers": {
            "_default": list(config.providers.default),
            **{k: list(v) for k, v in sorted(config.providers.per_package.items())},
        },
        "glibc": list(config.glibc),
        "macos": list(config.macos),
        "image": {
            "name": config.image.name,
            "tag": config.image.tag,
            "cmd": list(config.image.cmd),
        },
        "ignore-missing-libraries": sorted(config.ignore_missing_libraries),
        "nixpkgs": {
            "index": rel(config.nixpkgs.index) if config.nixpkgs.index else None,
            "path": rel(config.nixpkgs.path) if config.nixpkgs.path else None,
        },
        "overrides": {
            o.name: [[a.attribute, a.form, a.expression] for a in o.attributes]
            for o in config.overrides
        },
        "overridesPre": [rel(p) for p in config.overlays_pre],
        "overridesPost": [rel(p) for p in config.overlays_post],
        "ignoreCollisions": config.ignore_collisions,
        # Only when off, so that files written before the key existed stay in sync.
        **({} if config.build else {"build": False}),
        **({"lockOutputs": [p.name for p in config.lock_outputs]} if config.lock_outputs else {}),
        **(
            {"packagesExtra": [_extra_setting(e, rel) for e in config.packages_extra]}
            if config.packages_extra
            else {}
        ),
        **(
            {"flake": {"nixpkgs": config.flake.nixpkgs, "app": config.flake.app}}
            if config.flake
            else {}
        ),
        **({"rPackages": list(config.r_packages.names)} if config.r_packages else {}),
        # Both only when set, like `build`; the files' contents are inputs of the header.
        **(
            {
                "buildConstraints": [
                    {"line": _constraint(c)} if c.path is None else {"path": _named(c.path, base)}
                    for c in config.build_constraints
                ]
            }
            if config.build_constraints
            else {}
        ),
        **(
            {"metadataFailures": config.metadata_failures}
            if config.metadata_failures != "error"
            else {}
        ),
    }
    return digest(json.dumps(settings, sort_keys=True, separators=(",", ":")).encode())


def _named(path: Path, base: Path) -> str:
    """A path relative to `base`, as `rel` gives it, but through os.path.realpath, which
    (unlike Path.resolve) does not raise on a symbolic link loop: reading the file reports it."""
    return Path(os.path.relpath(os.path.realpath(path), base)).as_posix()


def _extra_setting(extra: ExtraSource, rel: Callable[[Path], str]) -> dict[str, object]:
    from machci.redaction import strip_credentials

    path = extra.kind == "path"
    location = rel(Path(extra.location)) if path else strip_credentials(extra.location)
    return {
        "kind": extra.kind,
        "location": location,
        "rev": extra.rev,
        "extras": list(extra.extras),
        "requirements": list(extra.requirements) if extra.requirements is not None else None,
        "requirementsExtra": list(extra.requirements_extra),
        "project": extra.project,
    }


def _data_settings(data: DataRevision, rel: Callable[[Path], str]) -> dict[str, object]:
    if data.source == "pypi-deps-db":
        return {
            "source": data.source,
            "repository": data.repository,
            "rev": data.rev,
            # One spelling of the hash: writing it another way changes nothing.
            "sha256": to_sri(parse_sha256(data.sha256)) if data.sha256 else None,
            "path": rel(data.path) if data.path else None,
        }
    from machci.redaction import strip_credentials  # urllib.parse: not on check's quick path

    return {
        "source": data.source,
        # Without credentials: they are no setting, and the digest is committed.
        "index": strip_credentials(data.index) if data.index else None,
        "extra-indexes": [strip_credentials(u) for u in data.extra_indexes],
        "snapshot": data.snapshot_text,
    }


def _constraint(entry: BuildConstraint) -> str:
    """A build constraint line as it is resolved (`setuptools <70` is `setuptools<70`): the
    same constraint, however written, makes the same file."""
    from machci.inputs.requirements import check_build_constraint  # packaging: only when needed

    assert entry.line is not None
    return check_build_constraint(entry.line, entry.where, "buildConstraints: ")
