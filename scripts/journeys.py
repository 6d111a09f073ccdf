#!/usr/bin/env python3
"""The journeys' commands, read from README.md: the one source for the README, the set-up
script and the end-to-end tests.

    python3 scripts/journeys.py NAME      print journey NAME's commands, one per line
    python3 scripts/journeys.py --list    print the journey names
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"<!-- journey: ([\w-]+) -->\s*```sh\n(.*?)```", re.S)


def journeys(readme: Path = README) -> dict[str, list[str]]:
    text = readme.read_text()
    return {m.group(1): [ln for ln in m.group(2).splitlines() if ln.strip()]
            for m in _BLOCK.finditer(text)}


def main(argv: list[str]) -> int:
    found = journeys()
    if not argv or argv[0] == "--list":
        print("\n".join(found))
        return 0
    if argv[0] not in found:
        print(f"journeys.py: no journey {argv[0]!r} in README.md (have: {', '.join(found)})", file=sys.stderr)
        return 2
    print("\n".join(found[argv[0]]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
