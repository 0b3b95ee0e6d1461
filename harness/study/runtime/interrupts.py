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

Two ways Python loses or misreports a stop, both answered here. A stop raised inside a
weakref callback, a ``__del__`` or a garbage-collector callback cannot propagate: Python
prints "Exception ignored" and the command runs on (seen: a study that finished with exit
0 after Ctrl-C); :func:`redelivering_lost_stops` delivers it again. And a
``KeyboardInterrupt`` raised inside code run by ``exec`` of a string (``dataclasses``
makes its methods that way) leaves CPython's "unhandled KeyboardInterrupt" flag set even
when the stop is caught: under ``python -m`` the process then kills itself with SIGINT at
exit (code -2, not 130); :func:`forget_unhandled_interrupt` clears it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop as for Ctrl-C (the command exits 143, not 130)."""


class _State:
    active = False  # a handler of ours is installed
    held = False  # a Ctrl-C arrived outside an interruptible block, not yet raised
    depth = 0  # nesting of interruptible blocks (0: storage calls may be running)
    terminated = False  # the stop that arrived was SIGTERM
    signum = signal.SIGINT  # the signal that means Ctrl-C here (SIGUSR1 in workers)


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
    _State.signum = signum
    try:
        with (
            _handling(signum, _on_interrupt),
            _handling(signal.SIGTERM, _on_interrupt),
            redelivering_lost_stops(),
        ):
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
def redelivering_lost_stops() -> Iterator[None]:
    """Inside the block, a Ctrl-C or SIGTERM that Python could not propagate (raised in a
    weakref callback, a ``__del__``, a garbage-collector callback: "Exception ignored")
    is delivered again instead of being printed and lost: inside :func:`catching_interrupts`
    it is raised at once in an interruptible block, else held for the next safe point;
    elsewhere its signal is sent again, to raise at the next line that can raise.

    Example:
        >>> import weakref
        >>> class Thing: ...
        >>> def on_collect(ref):
        ...     raise KeyboardInterrupt  # where a signal handler may raise it
        >>> with redelivering_lost_stops(), catching_interrupts():
        ...     thing = Thing()
        ...     ref = weakref.ref(thing, on_collect)
        ...     del thing  # the callback runs; its stop cannot propagate from there
        ...     try:
        ...         check()
        ...     except KeyboardInterrupt:
        ...         print("delivered")
        delivered
    """
    previous = sys.unraisablehook

    def hook(unraisable) -> None:
        stop = unraisable.exc_value
        if not isinstance(stop, KeyboardInterrupt):
            previous(unraisable)
        elif _State.active and _State.depth == 0:
            _State.held = True  # raised at the next safe point
        elif _State.active:
            _send_soon(_State.signum)  # raised at once: we are interruptible
        else:
            _send_soon(signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def _send_soon(signum: int) -> None:
    """Send ``signum`` to this process 10 ms from now, from another thread, so that its
    handler runs in the main thread after the hook has returned (sent at once, it would
    raise inside the hook, where the stop is lost for good)."""
    timer = threading.Timer(0.01, os.kill, (os.getpid(), signum))
    timer.daemon = True
    timer.start()


def forget_unhandled_interrupt() -> None:
    """Clear CPython's "unhandled KeyboardInterrupt" flag after a stop was handled.

    A ``KeyboardInterrupt`` raised in code run by ``exec`` of a string sets the flag even
    when it is caught later; ``python -m`` then ends the process with SIGINT after a clean
    return (code -2 instead of 130). Each run of a string clears the flag first.

    Example:
        >>> forget_unhandled_interrupt()
    """
    exec("None")  # resets the flag: CPython clears it before each run of a string


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
