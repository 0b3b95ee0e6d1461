"""``harness tasks build|table``: recompile the tracr programs and write (or, with
``--check``, compare) their weights and circuits; or a Markdown table of them."""

from __future__ import annotations

import argparse
import sys

from harness.cli.inputs import writable_dir


def command(args: argparse.Namespace) -> int:
    """Exit code 0, or 1 when ``build --check`` finds a weights file that differs from a
    fresh compile."""
    from harness.tasks.tracr.build import build_files, check_files, resolve_programs, suite_table

    programs = resolve_programs(args.names)  # bad names: one line, exit 2, before compiling
    if args.tasks_command == "table":
        print(suite_table(programs))
        return 0
    if args.dir is not None and not args.check:
        writable_dir(args.dir, "--dir")
    if args.check:
        differences = check_files(programs, args.dir)
        if differences:
            listed = "; ".join(f"tracr-{p}: {what}" for p, what in differences.items())
            print(
                f"harness: tracr weights differ from a fresh compile ({len(differences)} of "
                f"{len(programs)}): {listed}",
                file=sys.stderr,
            )
            return 1
        print(f"{len(programs)} tracr weight files identical to a fresh compile")
        return 0
    for path in build_files(programs, args.dir):
        print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KB)")
    return 0
