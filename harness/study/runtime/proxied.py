"""Workers behind a storage proxy: ``--storage grpc://HOST:PORT`` (``harness storage-proxy``).

At hundreds of workers, each worker's own database connections are what stops an RDB
storage first. Optuna's gRPC storage proxy puts the workers behind one process that holds
the connections (:mod:`harness.study.proxy_server`). But Optuna's client,
:class:`~optuna.storages.GrpcStorageProxy` (5.1), has no heartbeats: its API has no call
to record one nor to list stale trials, so behind Optuna's proxy alone a worker killed
mid-trial leaves its trial RUNNING for ever, and the budget waits for it. The harness
carries heartbeats over calls the API has:

- a worker beats by setting the trial system attribute :data:`BEAT_ATTR`; the harness
  proxy stores no such attribute but records an Optuna heartbeat in its database instead
  (timed by the database's clock, as for workers that connect to it directly);
- the proxy, which holds the heartbeats, marks every RUNNING trial whose heartbeat went
  stale with the system attribute :data:`STALE_ATTR`;
- a worker's storage (:func:`open_proxy`) lists the RUNNING trials so marked as its stale
  trials.

So a worker's proxy storage is a heartbeat storage like an RDB one, and everything built
on heartbeats works through the proxy unchanged: Optuna's heartbeat thread in ``optimize``,
the retries of :mod:`~harness.study.runtime.retries`, the trials settled from their records
of :mod:`~harness.study.runtime.liveness`. The proxy judges (it holds the heartbeats, and
reads one clock); the workers act (they hold the records). A proxy that is Optuna's and not
the harness's is refused when a worker opens it (:data:`PROBE_STUDY`): its workers' deaths
would go unnoticed. The probe's answer also carries the proxy's heartbeat interval, which
its workers adopt: a worker that beat less often than the proxy expects would have its
trials judged dead while it runs them.

Every call has a deadline (:data:`CALL_SECONDS`) and opening waits at most
:data:`CONNECT_SECONDS`, so a proxy that is not there or stops answering stops a worker in
one line (a storage error) instead of hanging it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import warnings
from typing import Any

from harness.study.runtime.heartbeats import heartbeat_base

BEAT_ATTR = "harness:heartbeat"  # set by a worker: the proxy records a heartbeat instead
STALE_ATTR = "harness:heartbeat_stale"  # set by the proxy on a RUNNING trial gone stale
PROBE_STUDY = "harness:storage-proxy"  # a study name the harness proxy answers itself:
PROBE_BASE = -1000  # with PROBE_BASE - its heartbeat seconds (real study ids are >= 0)
CONNECT_SECONDS = float(os.environ.get("HARNESS_PROXY_CONNECT_SECONDS", "10"))
CALL_SECONDS = float(os.environ.get("HARNESS_PROXY_CALL_SECONDS", "120"))


def probe_answer(heartbeat_seconds: int) -> int:
    """What the harness proxy answers to the probe: that it relays heartbeats, and how
    often its workers must beat (its ``HARNESS_HEARTBEAT_SECONDS``).

    Example:
        >>> probe_answer(10), proxy_heartbeat_seconds(probe_answer(10))
        (-1010, 10)
    """
    return PROBE_BASE - heartbeat_seconds


def proxy_heartbeat_seconds(answer: int) -> int | None:
    """The heartbeat interval in a probe's answer; None if it is no harness proxy's.

    Example:
        >>> proxy_heartbeat_seconds(0) is None
        True
    """
    seconds = PROBE_BASE - answer
    return seconds if 0 < seconds < 10**6 else None


def open_proxy(host: str, port: int, stale_callback: Any = None):
    """A storage that reaches the harness storage proxy at ``host:port``, with heartbeats
    as often as the proxy asks (it judges them: see the module docstring).

    Raises:
        ConnectionError: One line, if nothing answers there within :data:`CONNECT_SECONDS`,
            or what answers is not a harness storage proxy.

    Example:
        >>> open_proxy("127.0.0.1", 1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ConnectionError: no storage proxy at 127.0.0.1:1 (Connection refused): ...
    """
    # gRPC's core logs to stderr (a proxy going away, say): our one line says what matters
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    import grpc

    address = f"{host}:{port}"
    try:  # a refused connection says so at once, where gRPC would retry until the timeout
        socket.create_connection((host.strip("[]"), port), timeout=CONNECT_SECONDS).close()
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise ConnectionError(
            f"no storage proxy at {address} ({reason}): start one with "
            "`harness storage-proxy --storage URL`"
        ) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks the proxy experimental
        storage = _proxy_storage_class()(host=host, port=port, callback=stale_callback)
    try:
        storage.wait_server_ready(timeout=CONNECT_SECONDS)
        answer = storage.get_study_id_from_name(PROBE_STUDY)
    except (ConnectionError, KeyError, grpc.RpcError) as error:
        storage.close()
        raise ConnectionError(_refusal(address, error)) from None
    seconds = proxy_heartbeat_seconds(answer)
    if seconds is None:
        storage.close()
        raise ConnectionError(_refusal(address, KeyError(PROBE_STUDY)))
    storage.heartbeat_seconds = seconds
    return storage


def _refusal(address: str, error: BaseException) -> str:
    if isinstance(error, KeyError):  # Optuna's own proxy: it knows no probe
        return (
            f"the storage proxy at {address} relays no heartbeats (an Optuna proxy, not "
            "`harness storage-proxy`): a dead worker's trial would never run again"
        )
    if isinstance(error, ConnectionError):
        return f"no gRPC storage proxy answers at {address} within {CONNECT_SECONDS:g} s"
    return f"the storage proxy at {address} failed: {rpc_error_line(error)}"


def rpc_error_line(error: Any) -> str:
    """One line for a gRPC error: its status code and the first line of its details.

    Example:
        >>> class Failed(Exception):
        ...     def code(self): return type("Code", (), {"name": "UNAVAILABLE"})()
        ...     def details(self): return "failed to connect\\nmore"
        >>> rpc_error_line(Failed())
        'UNAVAILABLE: failed to connect'
    """
    details = str(error.details() or "").strip().splitlines()
    return f"{error.code().name}: {details[0]}" if details else error.code().name


class _Deadline:
    """A gRPC stub whose every call is given a deadline of ``seconds``."""

    def __init__(self, stub: Any, seconds: float) -> None:
        self._stub = stub
        self._seconds = seconds

    def __getattr__(self, name: str) -> Any:
        return functools.partial(getattr(self._stub, name), timeout=self._seconds)


@functools.cache
def _proxy_storage_class() -> type:
    """Optuna's ``GrpcStorageProxy`` with heartbeats and deadlines (see the module
    docstring); made on first use, so that importing the harness imports no Optuna."""
    import grpc
    from optuna.storages import GrpcStorageProxy
    from optuna.trial import TrialState

    class ProxyStorage(GrpcStorageProxy, heartbeat_base()):
        def __init__(self, *, host: str, port: int, callback: Any):
            self.heartbeat_seconds: int | None = None  # the proxy's, once it answered
            self._stale_callback = callback
            super().__init__(host=host, port=port)

        def _setup(self) -> None:  # Optuna's, with a deadline on every call
            super()._setup()
            self._stub = _Deadline(self._stub, CALL_SECONDS)
            self._cache.grpc_client = self._stub

        def record_heartbeat(self, trial_id: int) -> None:
            # A beat that does not arrive is what a heartbeat measures: the next one retries,
            # and the worker's next storage call reports a proxy that is gone (raising here
            # would end Optuna's heartbeat thread with a traceback).
            with contextlib.suppress(grpc.RpcError):
                self.set_trial_system_attr(trial_id, BEAT_ATTR, True)

        def _get_stale_trial_ids(self, study_id: int) -> list[int]:
            running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
            return [t._trial_id for t in running if t.system_attrs.get(STALE_ATTR)]

        def get_heartbeat_interval(self) -> int | None:
            return self.heartbeat_seconds

        def get_heartbeat_stale_trial_callback(self) -> Any:
            return self._stale_callback

    return ProxyStorage
