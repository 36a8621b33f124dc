"""`sor generate`: write a seeded multi-venue Databento-style CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from sor.errors import SorError

__all__ = ["cmd_generate"]


def cmd_generate(args: argparse.Namespace) -> int:
    """Write a seeded multi-venue Databento-style CSV (`sor.synth.profiles.write`)."""
    from sor.synth.profiles import write

    if args.rows < 1:
        raise SorError(f"--rows must be at least 1, but got {args.rows}")
    if args.days < 1:
        raise SorError(f"--days must be at least 1, but got {args.days}")
    if args.rows < args.days:
        raise SorError(f"--rows must be at least --days ({args.days}), but got {args.rows}")
    parent = Path(args.path).resolve().parent
    if Path(args.path).exists() and not args.force:
        raise SorError(f"{args.path}: exists; pass --force to overwrite it")
    if not parent.is_dir():
        raise SorError(f"{args.path}: directory {parent} does not exist")
    try:
        summary = write(
            args.path,
            profile=args.profile,
            rows=args.rows,
            days=args.days,
            schema=args.schema,
            style=args.style,
            seed=args.seed,
        )
    except OSError as exc:
        raise SorError(f"{args.path}: cannot write ({exc.strerror or exc})") from None
    print(summary)
    return 0
