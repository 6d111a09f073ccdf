"""`python -m berth.bootstrap [-o DIR] [--cache DIR] [NAME:TAG ...]`: build base-image
archives without a daemon (for air-gapped sites and to warm the test cache); `--list`
prints the recipes. Each archive is `DIR/<name>_<tag>.tar`, loadable by `berth load` and
`docker load`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from berth.errors import BerthError

from .builder import build_image
from .recipes import list_recipes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m berth.bootstrap", description=__doc__)
    ap.add_argument("refs", nargs="*", metavar="NAME:TAG",
                    help="images to build (default: every recipe's main reference)")
    ap.add_argument("-o", "--output", default=".", help="directory for the archives")
    ap.add_argument("--cache", default=None, help="reuse/keep archives built today in this directory")
    ap.add_argument("--list", action="store_true", help="list the recipes and exit")
    ap.add_argument("-q", "--quiet", action="store_true", help="print only the results")
    args = ap.parse_args(argv)
    if args.list:
        for r in list_recipes():
            print(f"{r.reference:24} {', '.join(r.tags[1:]) or '-':32} {r.summary}")
        return 0
    refs = args.refs or [r.reference for r in list_recipes()]
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    failed = 0
    for ref in refs:
        try:
            res = build_image(ref, out, log=log, cache_dir=args.cache)
        except BerthError as e:
            print(str(e), file=sys.stderr)
            failed += 1
            continue
        print(f"{res.reference} {res.image_id} {res.tar_path}")
        if not args.quiet:
            print(res.description + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
