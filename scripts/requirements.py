"""Print the project's Python dependencies from pyproject.toml, for pip (used by the Makefile).

Installing them apart from the package lets the Rust extension be rebuilt only when Rust
changes, and keeps `make` quick the second time.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
if "--only" in sys.argv:  # --only NAME: just that optional extra (e.g. the benches' baselines)
    requirements = list(project["optional-dependencies"][sys.argv[sys.argv.index("--only") + 1]])
else:
    requirements = list(project["dependencies"])
    if "--dev" in sys.argv:
        requirements += project["optional-dependencies"]["dev"]
print(" ".join(r.replace(" ", "") for r in requirements))
