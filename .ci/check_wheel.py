"""Check that a built wheel carries every preset of configs/ and every tuning space, byte for byte.

Usage: python3 .ci/check_wheel.py WHEEL CONFIGS_DIR; exits 1 naming what is missing or differs.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path


def problems(wheel: Path, configs: Path) -> list[str]:
    found: list[str] = []
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        expected = {f"ffnlp/presets/{p.name}": p for p in sorted(configs.glob("*.toml"))}
        expected |= {
            f"ffnlp/tune/spaces/{p.name}": p for p in sorted(configs.glob("spaces/*.toml"))
        }
        if "ffnlp/presets/index.toml" not in names:
            found.append("ffnlp/presets/index.toml (what `ffnlp presets` says of each) is missing")
        for member, source in expected.items():
            if member not in names:
                found.append(f"{member} is missing (the preset {source})")
            elif zf.read(member) != source.read_bytes():
                found.append(f"{member} differs from {source}")
        extra = {n for n in names if n.startswith("ffnlp/presets/") and n.endswith(".toml")}
        extra -= set(expected) | {"ffnlp/presets/index.toml"}
        found += [f"{n} has no source in {configs}" for n in sorted(extra)]
    return found


if __name__ == "__main__":
    wheel, configs = Path(sys.argv[1]), Path(sys.argv[2])
    bad = problems(wheel, configs)
    for line in bad:
        print(f"wheel {wheel.name}: {line}", file=sys.stderr)
    if bad:
        sys.exit(1)
    print(f"wheel {wheel.name}: every preset and tuning space of {configs} is in it")
