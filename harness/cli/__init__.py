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

from harness.cli.errors import (
    UsageError,
    encoding_line,
    halting_errors,
    is_environment_error,
    is_machine_error,
    one_line,
)
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

    default_format, default_hook = warnings.formatwarning, threading.excepthook
    one_line_warnings()
    threading.excepthook = _thread_failed
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
        warnings.formatwarning, threading.excepthook = default_format, default_hook
        if default_sigterm is not None:
            signal.signal(signal.SIGTERM, default_sigterm)


def _thread_failed(args) -> None:
    """A background thread's exception (a heartbeat's storage call when memory ran out) as
    one warning line, not a traceback: the main thread says what stopped the run."""
    from harness.util.notices import notice

    if args.exc_type is SystemExit:
        return
    name = getattr(args.thread, "name", "a thread")
    detail = one_line(args.exc_value)
    notice(
        f"background thread {name} failed: {args.exc_type.__name__}{': ' * bool(detail)}{detail}"
    )


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
        code = subcommand.command(args)
        sys.stdout.flush()  # a full disk under a redirected stdout fails here, in one line
        return code
    except UnicodeEncodeError as error:  # a ValueError, but of the terminal, not the input
        _quiet_stdout()
        print(f"harness: error: {encoding_line(error)}", file=sys.stderr)
        return 1
    except (UsageError, ValueError) as error:
        # ValueError is how the library refuses bad input (configs, parameters, storage
        # URLs, task options); anything else is a bug and keeps its traceback
        print(f"harness: error: {one_line(error)}", file=sys.stderr)
        return 2
    except halting_errors() as error:  # the machine stopped the run, not the user's input
        print(f"harness: error: {one_line(error) or 'out of memory'}", file=sys.stderr)
        return 1
    except OSError as error:
        machine = is_machine_error(error)
        if not machine and not is_environment_error(error):
            raise
        if machine:
            _quiet_stdout()
        where = f": {str(error.filename)!r}" if error.filename else ""
        print(f"harness: error: {error.strerror}{where}", file=sys.stderr)
        return 1 if machine else 2


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that its unwritten buffer does not fail once more at
    exit ("Exception ignored ... No space left on device")."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real stdout (a test's StringIO)
        pass
