"""Builder of the stand-in buildPythonPackage: install a wheel, or build an sdist then install.

Runs under the host Python as a Nix builder; the inputs arrive as environment variables.
"""

import os
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from pathlib import Path

HOOK = """
import sys
sys.path[:0] = {path!r}
module, _, attr = {backend!r}.partition(":")
backend = __import__(module, fromlist=["_"])
for part in filter(None, attr.split(".")):
    backend = getattr(backend, part)
print(backend.build_wheel({out!r}))
"""


def build_sdist(src: Path, work: Path) -> Path:
    with tarfile.open(src) as archive:
        archive.extractall(work, filter="data")
    (tree,) = [p for p in work.iterdir() if p.is_dir()]
    table = tomllib.loads((tree / "pyproject.toml").read_text()).get("build-system", {})
    site = os.environ["sitePackages"]
    path = [str(tree / p) for p in table.get("backend-path", [])]
    path += [f"{p}/{site}" for p in os.environ.get("buildSystem", "").split()]
    dist = work / "dist"
    dist.mkdir()
    code = HOOK.format(path=path, backend=table["build-backend"], out=str(dist))
    name = (
        subprocess.run(
            [os.environ["hostPython"], "-I", "-c", code],
            cwd=tree,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    return dist / name


def main() -> None:
    out = Path(os.environ["out"])
    src = Path(os.environ["src"])
    with tempfile.TemporaryDirectory() as tmp:
        if os.environ["format"] == "wheel":
            wheel = src
        elif os.environ["format"] == "pyproject":
            wheel = build_sdist(src, Path(tmp))
        else:
            sys.exit(f"stand-in buildPythonPackage: unsupported format {os.environ['format']}")
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(out / os.environ["sitePackages"])


main()
