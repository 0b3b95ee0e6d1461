"""``harness tasks build|table|train``: recompile the tracr programs and write (or, with
``--check``, compare) their weights and circuits; a Markdown table of them; or train
transformers to implement their circuits (SIIT) and write (or check) those."""

from __future__ import annotations

import argparse
import sys

from harness.cli.inputs import writable_dir


def command(args: argparse.Namespace) -> int:
    """Exit code 0, or 1 when ``build --check`` finds a weights file that differs from a
    fresh compile."""
    from harness.tasks.tracr.build import build_files, check_files, resolve_programs, suite_table

    programs = resolve_programs(args.names)  # bad names: one line, exit 2, before compiling
    if args.tasks_command == "train":
        return train(args, programs)
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


def train(args: argparse.Namespace, programs: list[str]) -> int:
    """``harness tasks train``: exit 0, or 1 when ``--check`` finds a retrained model that
    differs from its file."""
    from harness.tasks.siit.build import check_trained, train_files
    from harness.tasks.siit.training import SiitSettings

    if args.check:
        results = {p: check_trained(p, args.dir) for p in programs}
        differences = {p: what for p, (what, _) in results.items() if what}
        if differences:
            listed = "; ".join(f"siit-{p}: {what}" for p, what in differences.items())
            print(f"harness: retrained models differ from their files: {listed}", file=sys.stderr)
            return 1
        for program, (_, how) in results.items():
            print(f"siit-{program}: reproduced by a retraining ({how})")
        return 0
    for flag, value in (
        ("--steps", args.steps),
        ("--batch-size", args.batch_size),
        ("--eval-every", args.eval_every),
    ):
        if value < 1:
            raise ValueError(f"{flag} must be at least 1, got {value}")
    if not args.lr > 0:
        raise ValueError(f"--lr must be positive, got {args.lr}")
    for folder, flag in ((args.dir, "--dir"), (args.checkpoint_dir, "--checkpoint-dir")):
        if folder is not None:
            writable_dir(folder, flag)
    settings = SiitSettings(
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        eval_every=args.eval_every,
        strict_nodes=args.strict_nodes,
    )
    paths = train_files(programs, settings, args.dir, args.checkpoint_dir, not args.no_progress)
    for path in paths:
        print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KB)")
    return 0
