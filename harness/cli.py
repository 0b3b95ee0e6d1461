"""The ``harness`` command line.

Bad input exits with code 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys


class UsageError(Exception):
    """An error in what the user asked for: printed as one line, exit code 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness", description="Sweeps and benchmarks for circuit discovery."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="SP on a model with a planted circuit")
    demo.add_argument("--epochs", type=int, default=20)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--restore-mode",
        action="store_true",
        help="train without tree optimisation (masks restore clean activations)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``harness``; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from harness.demo import run_demo

            ok = run_demo(sys.stdout, args.epochs, not args.restore_mode, args.seed)
            return 0 if ok else 1
    except (UsageError, ValueError) as error:
        print(f"harness: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
