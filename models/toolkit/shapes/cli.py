"""The `python -m toolkit.shapes` command line: `cases`, `fixtures --out DIR`, `validate PATH`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from . import __doc__ as _PACKAGE_DOC
from .cases import dumps_cases, generate_cases, parse_cases
from .fixtures import build_fixtures


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m toolkit.shapes", description=_PACKAGE_DOC.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cases", help="write fresh random ShapesEval cases as JSONL to stdout")
    c.add_argument("--n-per-category", type=int, default=50)
    c.add_argument("--seed", type=int, default=0)
    f = sub.add_parser("fixtures", help="write the cross-language fixtures into a directory")
    f.add_argument("--out", required=True)
    v = sub.add_parser("validate", help="validate a JSONL case file")
    v.add_argument("path")
    args = ap.parse_args(argv)
    if args.cmd == "cases":
        sys.stdout.write(dumps_cases(generate_cases(args.n_per_category, args.seed)))
    elif args.cmd == "fixtures":
        import os

        cases, scored = build_fixtures(0)
        with open(os.path.join(args.out, "shapes-cases.jsonl"), "w") as fh:
            fh.write(dumps_cases(cases))
        with open(os.path.join(args.out, "shapes-scored.json"), "w") as fh:
            json.dump(scored, fh, separators=(",", ":"))
            fh.write("\n")
    else:
        with open(args.path) as fh:
            try:
                cs = parse_cases(fh.read(), args.path)
            except ValueError as e:
                print(e, file=sys.stderr)
                return 1
        print(f"{len(cs)} valid cases")
    return 0
