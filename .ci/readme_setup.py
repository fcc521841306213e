"""Print the commands of a Markdown file's first ```bash block, one per line, exactly as written.

CI runs what this prints, so that the README's set-up commands and CI cannot drift apart;
tests/test_readme.py keeps that block to the two set-up commands.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def first_block(markdown: str) -> list[str]:
    """The non-empty, non-comment lines of the first ```bash block (continuations joined)."""
    match = re.search(r"```bash\n(.*?)```", markdown, re.S)
    if match is None:
        raise SystemExit("README.md has no ```bash block: the set-up commands are missing")
    commands, pending = [], ""
    for line in match.group(1).splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1]
            continue
        commands.append((pending + line).strip())
        pending = ""
    return commands


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    for command in first_block(path.read_text(encoding="utf-8")):
        print(command)
