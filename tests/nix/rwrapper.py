"""Builder of the stand-in rWrapper: r-modules/wrapper.nix's symlinkJoin of R, whose `bin/*` are
wrapped to put R_LIBS_SITE before the caller's, as R's setup hook collects it at build time: the
`library` directory of every input and of what the inputs propagate, in that order."""

from __future__ import annotations

import os
from pathlib import Path

out = Path(os.environ["out"])
r_home = Path(os.environ["R"])


def propagated_closure(roots: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    todo = list(roots)
    while todo:
        path = todo.pop(0)
        if path not in seen:
            seen[path] = None
            listed = Path(path, "nix-support", "propagated-build-inputs")
            if listed.is_file():
                todo.extend(listed.read_text().split())
    return list(seen)


def join(source: Path, target: Path) -> None:
    """symlinkJoin of one path: directories are made, files are links."""
    target.mkdir(parents=True, exist_ok=True)
    for child in sorted(source.iterdir()):
        if child.is_dir() and not child.is_symlink():
            join(child, target / child.name)
        else:
            (target / child.name).symlink_to(child)


libraries = [
    f"{path}/library"
    for path in propagated_closure(os.environ["buildInputs"].split())
    if Path(path, "library").is_dir()
]
join(r_home, out)
for program in sorted((r_home / "bin").iterdir()):
    wrapper = out / "bin" / program.name
    wrapper.unlink()
    wrapper.write_text(
        "#!/bin/sh\n"
        f'R_LIBS_SITE="{":".join(libraries)}${{R_LIBS_SITE:+:$R_LIBS_SITE}}"\n'
        "export R_LIBS_SITE\n"
        f'exec {program} "$@"\n'
    )
    wrapper.chmod(0o755)
