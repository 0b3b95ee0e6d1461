"""Ctrl-C that lands between storage calls, never inside one.

Python raises ``KeyboardInterrupt`` wherever the main thread is. Inside an Optuna storage
call on SQLite that can leave a connection holding the database lock, so the trial's own
"interrupted" write and Optuna's FAIL then wait on it, and the heartbeat thread waits too
(seen: a run that kept running for minutes after Ctrl-C). While :func:`catching_interrupts`
is active, SIGINT raises at once only inside :func:`interruptible` blocks (computation that
touches no storage); elsewhere it is held and raised at the next :func:`interruptible`
entry or :func:`check`. A second Ctrl-C while one is held raises at once.

Worker processes of ``--jobs N`` ignore SIGINT and take the same stop as SIGUSR1 from
their parent (:func:`relaying_interrupts`), which relays each Ctrl-C once: a terminal's
Ctrl-C reaches the whole process group, and a worker must not count it twice.

SIGTERM (``kill``, a batch scheduler's notice before it kills a job) takes the same path
as Ctrl-C and raises :class:`Terminated`, a ``KeyboardInterrupt``: the run stops at the
next safe point, what was cut short runs again on resume, and the command exits 143.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop as for Ctrl-C (the command exits 143, not 130)."""


class _State:
    active = False  # a handler of ours is installed
    held = False  # a Ctrl-C arrived outside an interruptible block, not yet raised
    depth = 0  # nesting of interruptible blocks (0: storage calls may be running)
    terminated = False  # the stop that arrived was SIGTERM


def _stop() -> KeyboardInterrupt:
    return Terminated() if _State.terminated else KeyboardInterrupt()


def raise_on_sigterm(signum, frame) -> None:
    """A SIGTERM handler that stops the command at once, as Ctrl-C does by default."""
    raise Terminated


@contextlib.contextmanager
def catching_interrupts(signum: int = signal.SIGINT) -> Iterator[None]:
    """Hold Ctrl-C (or ``signum``) and SIGTERM outside :func:`interruptible` blocks (main
    thread only; elsewhere, or when already active, a no-op).

    Example:
        >>> with catching_interrupts():
        ...     with interruptible():
        ...         pass
    """
    if _State.active or threading.current_thread() is not threading.main_thread():
        yield
        return
    _State.active, _State.held, _State.depth, _State.terminated = True, False, 0, False
    try:
        with _handling(signum, _on_interrupt), _handling(signal.SIGTERM, _on_interrupt):
            yield
    finally:
        _State.active, _State.held, _State.depth = False, False, 0


@contextlib.contextmanager
def relaying_interrupts(worker_pids: Callable[[], Iterable[int]]) -> Iterator[list[bool]]:
    """In a parent of worker processes: each Ctrl-C or SIGTERM is sent on to
    ``worker_pids()`` as SIGUSR1 (the workers stop at their next safe point); yields a
    list whose first item turns ``True`` once one was relayed, and whose second is the stop
    to raise then (:class:`Terminated` after a SIGTERM). A third signal raises here (the
    workers are then killed by whoever runs them). Main thread only; elsewhere a no-op.
    """
    relayed: list = [False, KeyboardInterrupt()]
    if threading.current_thread() is not threading.main_thread():
        yield relayed
        return
    presses = [0]

    def on_stop(signum, frame) -> None:
        presses[0] += 1
        if signum == signal.SIGTERM:
            relayed[1] = Terminated()
        if presses[0] > 2:
            raise relayed[1]
        relayed[0] = True
        for pid in worker_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGUSR1)

    with _handling(signal.SIGINT, on_stop), _handling(signal.SIGTERM, on_stop):
        yield relayed


@contextlib.contextmanager
def _handling(signum: int, handler: Callable) -> Iterator[None]:
    """``handler`` for ``signum`` inside the block, the previous one after it."""
    previous = signal.signal(signum, handler)
    try:
        yield
    finally:
        signal.signal(signum, previous)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """A block that touches no storage: Ctrl-C raises inside it at once (and a held one
    raises on entry)."""
    check()
    _State.depth += 1
    try:
        yield
    finally:
        _State.depth -= 1


@contextlib.contextmanager
def uninterruptible() -> Iterator[None]:
    """A block of storage calls inside an :func:`interruptible` one: Ctrl-C is held until
    it ends, then raised."""
    depth, _State.depth = _State.depth, 0
    try:
        yield
    finally:
        _State.depth = depth
    if depth:
        check()


def check() -> None:
    """Raise a held Ctrl-C now (a safe point between storage calls)."""
    if _State.held:
        _State.held = False
        raise _stop()


def _on_interrupt(signum, frame) -> None:
    if signum == signal.SIGTERM:
        _State.terminated = True
    if _State.depth > 0 or _State.held:
        _State.held = False
        raise _stop()
    _State.held = True
