"""``harness demo``: SP on a model with a planted circuit, a check that the harness works."""

from __future__ import annotations

import argparse
import sys


def command(args: argparse.Namespace) -> int:
    """Run the demo; exit code 0 when SP finds the planted circuit, else 1."""
    from harness.testing.demo import run_demo

    ok = run_demo(sys.stdout, args.epochs, args.mode, args.seed)
    return 0 if ok else 1
