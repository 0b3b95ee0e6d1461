"""``--jobs N``: worker processes on one machine, watched by their parent.

The parent starts N processes (``spawn``), each running :func:`harness.study.driver.run_worker`
against the shared storage, and waits for them:

- a worker that dies (``kill -9``, the OOM killer) is reported in one line and replaced
  (at most N times); its trial is failed by its heartbeat or lock and run again by the
  others, so the remaining trials finish;
- a worker that stops with an error (a record or the storage could not be written)
  stops the others at their next safe point, and the parent raises that error;
- Ctrl-C is relayed to the workers as SIGUSR1 (see :mod:`harness.study.runtime.interrupts`); a third
  one ends the workers at once;
- a worker whose parent is gone (``kill -9`` of the parent) stops itself at its next safe
  point, so no orphan keeps running trials.

Workers start with SIGINT and SIGUSR1 blocked (the signal mask survives ``spawn``'s
fork and exec), so a Ctrl-C while they import never prints their tracebacks nor kills
them; they unblock both once their handlers are in place (a relayed stop that came
meanwhile is then taken). The parent blocks them only while it starts a worker, so
its own Ctrl-C is delayed, never lost.

Like :mod:`harness.study.runtime.failures`, this module stays light (no torch): the command
line imports it to catch :class:`WorkerError`, maybe while a Ctrl-C cut an import short.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness.records.store import RecordWriteError
from harness.study.runtime.failures import StorageError
from harness.study.runtime.interrupts import (
    catching_interrupts,
    forget_unhandled_interrupt,
    relaying_interrupts,
)
from harness.util.notices import one_line_warnings

INTERRUPTED_EXIT = 130  # a worker that Ctrl-C (SIGUSR1) stopped
FAILED_EXIT = 3  # a worker that stopped with an error (its report names it)


class WorkerError(Exception):
    """A worker process stopped with an unexpected error (one line)."""


def run_workers(
    target: Callable[..., None],
    args: tuple[Any, ...],
    jobs: int,
    poll: Callable[[], None],
    notice: Callable[[str], None],
) -> None:
    """Run ``target(*args, report_dir)`` in ``jobs`` processes until all have ended.

    Raises:
        KeyboardInterrupt: Ctrl-C stopped the workers.
        Exception: The error a worker stopped with (its type where known, one line).
    """
    reports = Path(tempfile.mkdtemp(prefix="harness-workers-"))
    live: list[Any] = []
    replaced, errors = 0, []

    def start() -> None:
        live.append(start_blocked(_worker_main, (target, args, str(reports))))

    try:
        with relaying_interrupts(lambda: [p.pid for p in live if p.is_alive()]) as relayed:
            try:
                for _ in range(jobs):
                    start()
                while live:
                    time.sleep(0.2)
                    poll()
                    for process in [p for p in live if not p.is_alive()]:
                        live.remove(process)
                        code = process.exitcode
                        if code is not None and code < 0 and not relayed[0] and not errors:
                            name = signal.Signals(-code).name
                            if replaced < jobs:
                                replaced += 1
                                notice(
                                    f"worker process {process.pid} died ({name}); its trial "
                                    "runs again, a new worker takes its place"
                                )
                                start()
                            else:
                                notice(f"worker process {process.pid} died ({name})")
                        elif code is not None and code > 0 and code != INTERRUPTED_EXIT:
                            errors.append(_read_report(reports, process.pid, code))
                            _stop(live)  # the others stop at their next safe point
            except KeyboardInterrupt:  # the third Ctrl-C: end the workers now
                for process in live:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(process.pid, signal.SIGKILL)
                raise
        if relayed[0]:  # what Ctrl-C (or SIGTERM) cut short is no error
            raise relayed[1]
        if errors:
            raise _rebuild(errors[0])
    finally:
        for process in live:
            process.join(timeout=5)
        with contextlib.suppress(OSError):
            for path in reports.iterdir():
                path.unlink()
            reports.rmdir()


def _stop(live: list[Any]) -> None:
    for process in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGUSR1)


_STOPS = {signal.SIGINT, signal.SIGUSR1}


def start_blocked(target: Callable[..., None], args: tuple[Any, ...]) -> Any:
    """A started ``spawn`` process running ``target(*args)`` that begins with SIGINT and
    SIGUSR1 blocked (see the module docstring).

    multiprocessing's resource tracker unblocks SIGINT once it has started, so it is
    started first, outside the blocked window.
    """
    import multiprocessing
    from multiprocessing import resource_tracker

    with _safe_import_path():
        resource_tracker.ensure_running()
        with _signals_blocked():
            process = multiprocessing.get_context("spawn").Process(target=target, args=args)
            process.start()
    return process


@contextlib.contextmanager
def _safe_import_path() -> Iterator[None]:
    """Children started in here do not put the working directory first on their import
    path (spawn's ``python -c`` would, and a user's ``selectors.py`` there would run). They
    take the parent's ``sys.path`` once started. Python 3.11+ (``PYTHONSAFEPATH``)."""
    previous = os.environ.get("PYTHONSAFEPATH")
    os.environ["PYTHONSAFEPATH"] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["PYTHONSAFEPATH"]
        else:
            os.environ["PYTHONSAFEPATH"] = previous


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Children started in here begin with SIGINT and SIGUSR1 blocked; here they wait."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _worker_main(target: Callable[..., None], args: tuple[Any, ...], reports: str) -> None:
    """The body of a worker process: run, then exit with a code the parent reads."""
    import sys

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent relays Ctrl-C as SIGUSR1
    _thread_lock_for_tqdm()
    one_line_warnings()
    try:
        with catching_interrupts(signal.SIGUSR1):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)  # see the module docstring
            _watch_parent(os.getppid())
            target(*args)
    except KeyboardInterrupt:
        forget_unhandled_interrupt()
        sys.exit(INTERRUPTED_EXIT)
    except Exception as error:  # reported to the parent, which says it in one line
        text = " ".join(str(error).split()) or type(error).__name__
        report = {"type": type(error).__name__, "message": text}
        (Path(reports) / f"{os.getpid()}.json").write_text(json.dumps(report))
        sys.exit(FAILED_EXIT)


def _thread_lock_for_tqdm() -> None:
    """tqdm's default lock is a multiprocessing semaphore, which a killed worker leaves to
    the resource tracker (a multi-line "leaked semaphore" warning at exit); a worker's bars
    are its own, so a thread lock does."""
    from tqdm.std import tqdm

    tqdm.set_lock(threading.RLock())


def _watch_parent(parent: int) -> None:
    """Stop this process at its next safe point once its parent is gone (then, if it is
    stuck, after 60 s at once)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(60)
        os._exit(INTERRUPTED_EXIT)

    threading.Thread(target=watch, daemon=True, name="harness-parent-watch").start()


def _read_report(reports: Path, pid: int | None, code: int | None) -> dict[str, str]:
    try:
        return json.loads((reports / f"{pid}.json").read_text())
    except (OSError, ValueError):
        return {"type": "exit code", "message": f"worker process {pid} exited with code {code}"}


def _rebuild(report: dict[str, str]) -> Exception:
    """The worker's error as one of ours, by name (one line)."""
    known = {"RecordWriteError": RecordWriteError, "StorageError": StorageError}
    known["ValueError"] = ValueError
    kind = known.get(report.get("type", ""), WorkerError)
    message = report.get("message", "")
    if kind is WorkerError:
        message = f"a worker process failed: {report.get('type')}: {message}"
    return kind(message)
