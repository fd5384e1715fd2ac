"""Builder of the stand-in python.buildEnv: nixpkgs' buildEnv symlink tree, then the wrappers.

As pkgs/build-support/buildenv/builder.pl: the paths are merged in order; two different files at
one path abort with "collision between `A' and `B'" unless their contents (and modes) are the
same or ignoreCollisions is set; `nix-support` and `propagated-build-inputs` are skipped. As
wrapper.nix: `bin/<executable>` becomes a wrapper that sees the environment's site-packages, and
`bin/python3`, `bin/python` point at it, with `makeWrapperArgs`' environment settings.
"""

from __future__ import annotations

import filecmp
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

out = Path(os.environ["out"])
site = os.environ["sitePackages"]
executable = os.environ["executable"]
ignore = bool(os.environ.get("ignoreCollisions"))
links: dict[str, Path] = {}  # relative file path -> the file it links to
directories: set[str] = {""}


def add(relative: str, target: Path) -> None:
    if target.is_dir() and not target.is_symlink():
        if relative in links:
            sys.exit(f"error: collision between `{target}' and `{links[relative]}'")
        directories.add(relative)
        for child in sorted(target.iterdir()):
            if relative == "" and child.name in ("nix-support", "propagated-build-inputs"):
                continue
            add(f"{relative}/{child.name}" if relative else child.name, child)
        return
    if relative in directories:
        sys.exit(f"error: collision between `{target}' and a directory of another package")
    old = links.get(relative)
    if old is None:
        links[relative] = target
        return
    if old.resolve() == target.resolve():
        return
    same = old.stat().st_mode == target.stat().st_mode and filecmp.cmp(old, target, shallow=False)
    if same:
        return
    if ignore:
        print(f"warning: collision between `{target}' and `{old}'", file=sys.stderr)
        return
    sys.exit(f"error: collision between `{target}' and `{old}'")


for path in json.loads(os.environ["paths"]):
    add("", Path(path))
for relative in sorted(directories):
    (out / relative).mkdir(parents=True, exist_ok=True)
for relative, target in sorted(links.items()):
    (out / relative).symlink_to(target)


def wrapper_settings(text: str) -> list[str]:
    """makeBinaryWrapper's environment arguments as shell lines. The arguments reach it as
    wrapper.nix splices them, joined by spaces into shell code, so the shell's word splitting
    (and quoting) applies; an argument this stand-in does not know fails the build, as an
    unknown one fails makeBinaryWrapper."""
    words = shlex.split(text)
    lines = []
    while words:
        flag = words.pop(0)
        counts = {"--set": 2, "--set-default": 2, "--unset": 1, "--prefix": 3, "--suffix": 3}
        if flag not in counts or len(words) < counts[flag]:
            sys.exit(f"makeWrapper: unknown or incomplete argument {flag!r}")
        name, *values = words[: counts[flag]]
        del words[: counts[flag]]
        if flag == "--set":
            lines.append(f"{name}={shlex.quote(values[0])}; export {name}")
        elif flag == "--set-default":
            lines.append(f"{name}=${{{name}-{shlex.quote(values[0])}}}; export {name}")
        elif flag == "--unset":
            lines.append(f"unset {name}")
        else:
            separator, value = (shlex.quote(v) for v in values)
            joined = (
                f"{value}${{{name}:+{separator}${name}}}"
                if flag == "--prefix"
                else f"${{{name}:+${name}{separator}}}{value}"
            )
            lines.append(f"{name}={joined}; export {name}")
    return lines


bin_dir = out / "bin"
bin_dir.mkdir(exist_ok=True)
settings = wrapper_settings(os.environ.get("makeWrapperArgs", ""))
for name in (executable, "python3", "python"):
    wrapper = bin_dir / name
    wrapper.unlink(missing_ok=True)
    wrapper.write_text(
        "#!/bin/sh\n"
        f'PYTHONPATH="{out}/{site}"\n'
        "export PYTHONPATH\n"
        + "".join(line + "\n" for line in settings)
        + f'exec {os.environ["hostPython"]} -S "$@"\n'
    )
    wrapper.chmod(0o755)
if os.environ.get("postBuild"):
    subprocess.run(["/bin/sh", "-ec", os.environ["postBuild"]], check=True)
