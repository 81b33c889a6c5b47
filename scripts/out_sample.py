"""Print the README's "What --out writes" sample from a real run of ``facilitair collaborate --out``.

The CLI runs as a process, through the openai SDK, against the test suite's local server
answering as the scripted team of ``tests/support/team_session.py`` (no network, no key, no
model), in a throwaway FACILITAIR_HOME. What it wrote is printed: the tree of files and the
README it generated, its requirements and design sections left out.

    .venv/bin/python scripts/out_sample.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.openai_sse_server import OpenAISSEServer, Script  # noqa: E402
from tests.support.team_session import TASK, deltas, last_prompt, reply_text  # noqa: E402


def answer(body: Any) -> Script:
    return Script(deltas=deltas(reply_text(last_prompt(body))))


def tree(root: Path) -> list[str]:
    lines = [f"{root.name}/"]
    for path in sorted(root.rglob("*")):
        depth = len(path.relative_to(root).parts)
        lines.append("    " * depth + path.name + ("/" if path.is_dir() else ""))
    return lines


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch, OpenAISSEServer() as server:
        server.script_for = answer
        home = Path(scratch)
        env = {
            **os.environ,
            "FACILITAIR_HOME": str(home / "home"),
            "OPENAI_API_KEY": "sk-sample-not-a-key",
            "OPENAI_BASE_URL": server.base_url,
        }
        command = [
            sys.executable,
            "-m",
            "facilitair_tui.cli.main",
            "collaborate",
            "--model",
            "openai:gpt-4o-mini",
        ]
        command += ["--no-cache", "-c", "language=python", "--out", "shortener", TASK]
        run = subprocess.run(command, cwd=home, env=env, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            sys.exit(f"facilitair collaborate failed ({run.returncode}):\n{run.stderr}")
        out = home / "shortener"
        readme = (out / "README.md").read_text(encoding="utf-8").splitlines()
        print("$ facilitair collaborate " + " ".join(command[4:-1]) + f' "{TASK}"')
        print(next(line for line in run.stderr.splitlines() if line.startswith("wrote ")))
        print("$ find shortener")
        print("\n".join(tree(out)))
        files = readme.index("## Files")
        print("$ cat shortener/README.md")
        print("\n".join(readme[:3]) + "\n")
        skipped = [line.removeprefix("## ") for line in readme[3:files] if line.startswith("## ")]
        print(f"[... {', '.join(skipped)}: as in the output document ...]\n")
        print("\n".join(readme[files:]))


if __name__ == "__main__":
    main()
