"""Builder of the stand-in python.withPackages: a `bin/python` that sees the whole closure."""

import os
import sys
from collections import Counter
from pathlib import Path

out = Path(os.environ["out"])
paths = os.environ["paths"].split()
names = os.environ["names"].split()
twice = sorted(name for name, count in Counter(names).items() if count > 1)
if twice:
    sys.exit(f"stand-in withPackages: collision, more than one {', '.join(twice)}")
site = os.environ["sitePackages"]
python_path = ":".join(f"{p}/{site}" for p in paths)
(out / "bin").mkdir(parents=True)
script = out / "bin" / "python"
script.write_text(
    "#!/bin/sh\n"
    f'PYTHONPATH="{python_path}"\n'
    "export PYTHONPATH\n"
    f'exec {os.environ["hostPython"]} -s "$@"\n'
)
script.chmod(0o755)
