"""The Spec: everything a resolution depends on, after config, CLI and requirement files merge.

Layering (lowest first): built-in defaults, machci.yaml, then command-line options.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.requirements import Requirement

from machci.config.model import (
    DEFAULT_INDEX,
    Config,
    DataRevision,
    ExtraSource,
    NixpkgsData,
    Providers,
    RPackages,
)
from machci.errors import InputError
from machci.inputs.locks import is_lock_input, read_lock
from machci.inputs.requirements import (
    RequirementLine,
    RequirementSet,
    check_build_constraint,
    check_counts,
    read_build_constraints,
    read_pyproject,
    read_requirements_file,
)
from machci.inputs.rlang import RPY2
from machci.inputs.targets import Target
from machci.notices import warn


@dataclass(frozen=True)
class Spec:
    base: Path  # paths in the lock and in messages are shown relative to this directory
    requirements: RequirementSet
    targets: tuple[Target, ...]
    indexes: tuple[str, ...]
    # What resolving and locking read of machci.yaml (and the options over it), and no more.
    data: DataRevision
    providers: Providers
    python: str
    output: Path  # the generated file: paths in the lock are relative to its directory
    packages_extra: tuple[ExtraSource, ...]
    nixpkgs: NixpkgsData
    r_packages: RPackages | None
    build: bool
    metadata_failures: str
    overridden_packages: tuple[str, ...]  # canonical names machci.yaml's overrides name
    # buildConstraints and --build-constraint, each line with where it was written, and the
    # files they were read from (inputs of the generated file, like requirements files).
    build_constraints: tuple[RequirementLine, ...] = ()
    build_constraint_files: tuple[Path, ...] = ()

    @property
    def root_lines(self) -> tuple[RequirementLine, ...]:
        """The requirements resolving starts from: the requirement files', and rpy2 when
        machci.yaml has rPackages (the R it gets is wired to it)."""
        r_packages = self.r_packages
        if r_packages is None:
            return self.requirements.requirements
        rpy2 = RequirementLine(Requirement(RPY2), r_packages.where, origin="rPackages")
        return (rpy2, *self.requirements.requirements)

    @property
    def build_constraint_lines(self) -> tuple[str, ...]:
        """The build constraints as pip reads them, one requirement string each."""
        return tuple(str(line.requirement) for line in self.build_constraints)

    def source_of(self, line: RequirementLine) -> str:
        """Where a requirement was written, relative to the project (stable across machines)."""
        shown = _relative(line.location.where, self.base)
        if line.location.line is not None:
            shown = f"{shown}:{line.location.line}"
        return f"{shown} ({line.origin})" if line.origin else shown


@functools.cache
def _relative(where: str, base: Path) -> str:
    # Cached: resolving paths costs system calls, and every requirement of a file asks again.
    try:
        return Path(os.path.relpath(Path(where).resolve(), base.resolve())).as_posix()
    except ValueError:
        return Path(where).as_posix()


def read_inputs(
    paths: Sequence[Path], extras: Sequence[str] = (), groups: Sequence[str] = ()
) -> RequirementSet:
    """Read every input: a lock by its name (inputs/locks.py), other .toml files as
    pyproject.toml, anything else as a requirements file."""
    result = RequirementSet()
    for path in paths:
        if is_lock_input(path):
            result = result.merged(read_lock(path, extras, groups))
        elif path.suffix == ".toml":
            result = result.merged(read_pyproject(path, extras, groups))
        else:
            result = result.merged(read_requirements_file(path))
    return result


def build_spec(config: Config, base: Path) -> Spec:
    if not config.requirements and not config.packages_extra:
        raise InputError(
            "no requirements given: pass -r FILE, or list them under 'requirements' (or"
            " packagesExtra, or project) in machci.yaml"
        )
    requirements = RequirementSet()
    for entry in config.requirements:
        requirements = requirements.merged(read_inputs([entry.path], entry.extras, entry.groups))
    check_counts(requirements)
    index = config.data.index
    if index and requirements.index_url and requirements.index_url.rstrip("/") != index:
        raise InputError(
            f"the requirements set --index-url {requirements.index_url} but the data revision"
            f" pins {index}; keep one of them"
        )
    primary = (index or requirements.index_url or DEFAULT_INDEX).rstrip("/")
    extras = [u.rstrip("/") for u in (*config.data.extra_indexes, *requirements.extra_index_urls)]
    targets = tuple(
        Target(system, config.python, config.glibc, config.macos)
        for system in sorted(config.systems)
    )
    if "x86_64-darwin" in config.systems:
        warn(
            "x86_64-darwin: nixpkgs 26.11 and later refuse to evaluate for this system (unless"
            ' config.allowDeprecatedx86_64Darwin = "force"); build it with a nixpkgs of 26.05'
            ' or older (see "x86_64-darwin" in the README)'
        )
    constraints, files = _build_constraints(config)
    return Spec(
        base=base,
        requirements=requirements,
        targets=targets,
        indexes=tuple(dict.fromkeys([primary, *extras])),
        data=config.data,
        providers=config.providers,
        python=config.python,
        output=config.output,
        packages_extra=config.packages_extra,
        nixpkgs=config.nixpkgs,
        r_packages=config.r_packages,
        build=config.build,
        metadata_failures=config.metadata_failures,
        overridden_packages=tuple(o.name for o in config.overrides),
        build_constraints=constraints,
        build_constraint_files=files,
    )


BUILD_CONSTRAINT = "build constraint"  # how a build constraint's source is labelled


def _build_constraints(config: Config) -> tuple[tuple[RequirementLine, ...], tuple[Path, ...]]:
    """Every build constraint in order of writing, and the files read for them."""
    lines: list[RequirementLine] = []
    files: list[Path] = []
    for entry in config.build_constraints:
        if entry.line is not None:
            text = check_build_constraint(entry.line, entry.where, "buildConstraints: ")
            lines.append(RequirementLine(Requirement(text), entry.where, origin=BUILD_CONSTRAINT))
            continue
        assert entry.path is not None
        found = read_build_constraints(entry.path, entry.where)
        files.extend(found.files)
        for line in (*found.requirements, *found.constraints):
            lines.append(replace(line, origin=BUILD_CONSTRAINT))
    return tuple(lines), tuple(dict.fromkeys(files))
