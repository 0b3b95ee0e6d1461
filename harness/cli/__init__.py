"""The ``harness`` command line.

Bad input exits with code 2 and one line on stderr, never a traceback. A run that the
machine stops (a full or read-only disk under the records or the storage, a storage that
fails, a worker process that fails) exits with code 1 and one line; what finished before
is kept, and the trial it cut runs again on resume. Ctrl-C exits with code 130.

Each subcommand is a module of this package with its name (``harness.cli.run`` for
``harness run``, ``harness.cli.storage_proxy`` for ``harness storage-proxy``) and a function
``command(args) -> exit code``; their arguments are all in :mod:`harness.cli.parser`.
Modules of the harness are imported inside functions, only by the subcommand that needs
them, so that ``harness --help`` and Ctrl-C at start-up are quick.
"""

from __future__ import annotations

import importlib
import sys

from harness.cli.errors import UsageError, halting_errors, is_environment_error, one_line
from harness.cli.inputs import check_parallelism, parse_assignments, writable_dir
from harness.cli.parser import build_parser

__all__ = ["UsageError", "main", "parse_assignments", "writable_dir"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``harness``; returns the exit code (143 on SIGTERM, 130 on Ctrl-C).

    Example:
        >>> main(["--threads", "0", "ls", "tasks"])
        2
    """
    import signal
    import threading
    import warnings

    from harness.study.runtime.interrupts import (
        Terminated,
        forget_unhandled_interrupt,
        raise_on_sigterm,
        redelivering_lost_stops,
    )
    from harness.util.notices import one_line_warnings

    default_format = warnings.formatwarning
    one_line_warnings()
    default_sigterm = None
    if threading.current_thread() is threading.main_thread():  # SIGTERM stops like Ctrl-C
        default_sigterm = signal.signal(signal.SIGTERM, raise_on_sigterm)
    try:
        with redelivering_lost_stops():
            return _main(argv)
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (Terminated), wherever it landed
        forget_unhandled_interrupt()
        if isinstance(stop, Terminated):
            print("harness: terminated", file=sys.stderr)
            return 143
        print("harness: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = default_format
        if default_sigterm is not None:
            signal.signal(signal.SIGTERM, default_sigterm)


def _main(argv: list[str] | None) -> int:
    """Parse ``argv``, run the subcommand, and turn the errors that are not bugs into one
    line and an exit code."""
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        try:
            check_parallelism("--threads", args.threads)
        except UsageError as error:
            print(f"harness: error: {error}", file=sys.stderr)
            return 2
        import torch

        torch.set_num_threads(args.threads)
    try:
        if args.tasks_from:
            from harness.tasks.task_files import add_task_files

            add_task_files(args.tasks_from)
        subcommand = importlib.import_module(f"harness.cli.{args.command.replace('-', '_')}")
        return subcommand.command(args)
    except (UsageError, ValueError) as error:
        # ValueError is how the library refuses bad input (configs, parameters, storage
        # URLs, task options); anything else is a bug and keeps its traceback
        print(f"harness: error: {one_line(error)}", file=sys.stderr)
        return 2
    except halting_errors() as error:  # the machine stopped the run, not the user's input
        print(f"harness: error: {one_line(error)}", file=sys.stderr)
        return 1
    except OSError as error:
        if not is_environment_error(error):
            raise
        where = f": {str(error.filename)!r}" if error.filename else ""
        print(f"harness: error: {error.strerror}{where}", file=sys.stderr)
        return 2
