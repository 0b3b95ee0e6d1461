"""``harness storage-proxy``: one process holds the database connections of many workers.

Each worker of a study holds database connections of its own (a pool, and one more for its
heartbeat thread), so at a few hundred workers a PostgreSQL server runs out of connections
before anything else does. Optuna's gRPC storage proxy serves one storage to any number of
workers over gRPC (``--storage grpc://HOST:PORT``); this module runs it, with what the
harness needs on top (see :mod:`harness.study.runtime.proxied`):

- heartbeats: a worker's beat (:data:`~harness.study.runtime.proxied.BEAT_ATTR`) becomes a
  heartbeat in the database, and every ``HARNESS_HEARTBEAT_SECONDS`` the proxy marks each
  RUNNING trial whose heartbeat went stale, in every study it served since it started, so
  that the workers fail it, with its reason, and run it again (or settle it from its
  record);
- one proxy per address: the port is not shared (gRPC shares it by default, and two
  proxies on one port would each take part of the workers);
- the answer to the probe by which a worker tells this proxy from Optuna's own, which gives
  the workers the proxy's heartbeat interval (they beat as often as it judges).

The proxy has no authentication nor encryption: whoever reaches its port reads and writes
every study in its database. It listens on 127.0.0.1 by default; listen elsewhere only on
a private network.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from harness.study.runtime.interrupts import catching_interrupts, check, interruptible
from harness.study.runtime.liveness import journal_path
from harness.study.runtime.proxied import BEAT_ATTR, PROBE_STUDY, STALE_ATTR, probe_answer
from harness.study.runtime.storage_urls import mask_password, proxy_address
from harness.study.storages import open_storage

SERVER_THREADS = 16  # concurrent calls; more wait for a thread (the database pool is 15)


class HeartbeatRelay:
    """The storage the proxy serves: ``storage`` itself, but a worker's beat records a
    heartbeat, the probe is answered, and the studies used are remembered (to judge).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     relay = HeartbeatRelay(open_storage(f"sqlite:///{tmp}/s.db"))
        ...     relay.get_study_id_from_name(PROBE_STUDY) == probe_answer(10)
        True
    """

    def __init__(self, storage: Any) -> None:
        self._storage = storage
        self._lock = threading.Lock()
        self.study_ids: set[int] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)

    def _served(self, study_id: int) -> int:
        with self._lock:
            self.study_ids.add(study_id)
        return study_id

    def create_new_study(self, directions: Any, study_name: str | None = None) -> int:
        return self._served(self._storage.create_new_study(directions, study_name))

    def get_study_id_from_name(self, study_name: str) -> int:
        if study_name == PROBE_STUDY:  # its workers beat as often as it judges
            return probe_answer(self._storage.get_heartbeat_interval())
        return self._served(self._storage.get_study_id_from_name(study_name))

    def create_new_trial(self, study_id: int, template_trial: Any = None) -> int:
        self._served(study_id)
        return self._storage.create_new_trial(study_id, template_trial)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        if key == BEAT_ATTR:
            self._storage.record_heartbeat(trial_id)
        else:
            self._storage.set_trial_system_attr(trial_id, key, value)

    def served(self) -> list[int]:
        """The ids of the studies the workers used since the proxy started."""
        with self._lock:
            return sorted(self.study_ids)


def mark_stale_trials(storage: Any, study_ids: list[int]) -> int:
    """Mark with :data:`~harness.study.runtime.proxied.STALE_ATTR` each RUNNING trial of
    ``study_ids`` whose heartbeat went stale; returns how many it marked now.

    Example:
        >>> import optuna
        >>> mark_stale_trials(optuna.storages.InMemoryStorage(), [])
        0
    """
    from optuna.exceptions import UpdateFinishedTrialError

    marked = 0
    for study_id in study_ids:
        for trial_id in storage._get_stale_trial_ids(study_id):
            if storage.get_trial(trial_id).system_attrs.get(STALE_ATTR):
                continue
            try:
                storage.set_trial_system_attr(trial_id, STALE_ATTR, True)
            except UpdateFinishedTrialError:
                continue  # its worker finished it meanwhile
            marked += 1
    return marked


@dataclass
class StorageProxy:
    """A storage proxy that listens (see :func:`start_storage_proxy`)."""

    server: Any  # the gRPC server
    relay: HeartbeatRelay  # what it serves
    address: str  # its grpc:// URL

    def judge(self) -> int:
        """Mark the trials whose heartbeat went stale now (see :func:`mark_stale_trials`)."""
        return mark_stale_trials(self.relay._storage, self.relay.served())

    def stop(self) -> None:
        """Stop listening (calls in flight get a second to finish)."""
        self.server.stop(grace=1.0).wait()


def start_storage_proxy(storage_url: str, host: str = "127.0.0.1", port: int = 13000):
    """A :class:`StorageProxy` for the storage ``storage_url`` (PostgreSQL, or SQLite on one
    machine), listening on ``host:port``; it judges heartbeats only when asked
    (:meth:`StorageProxy.judge`; :func:`serve_storage_proxy` asks every beat).

    Raises:
        ValueError: One line, if the storage cannot be served or opened, or the address
            cannot be listened on.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     proxy = start_storage_proxy(f"sqlite:///{tmp}/s.db", port=13571)
        ...     storage = open_storage(proxy.address)
        ...     proxy.address, proxy.judge()
        ...     storage.close(); proxy.stop()
        ('grpc://127.0.0.1:13571', 0)
        >>> start_storage_proxy("journal:///tmp/s.journal")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: a storage proxy cannot serve 'journal:///tmp/s.journal': ...
    """
    check_port(port)
    if journal_path(storage_url) is not None or proxy_address(storage_url) is not None:
        raise ValueError(
            f"a storage proxy cannot serve {mask_password(storage_url)!r}: give the database "
            "itself, postgresql://USER@HOST/DB (or sqlite:///FILE on one machine); Optuna's "
            "proxy serves no journal file nor another proxy"
        )
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    backend = optuna.storages.get_storage(open_storage(storage_url))  # with Optuna's cache
    relay = HeartbeatRelay(backend)
    server = _grpc_server(relay, host, port)
    server.start()
    return StorageProxy(server, relay, f"grpc://{host}:{port}")


def serve_storage_proxy(
    storage_url: str,
    host: str = "127.0.0.1",
    port: int = 13000,
    on_ready: Callable[[str], None] = print,
) -> None:
    """Serve the storage ``storage_url`` on ``host:port`` (:func:`start_storage_proxy`)
    until Ctrl-C or SIGTERM, judging the workers' heartbeats every
    ``HARNESS_HEARTBEAT_SECONDS``. ``on_ready`` gets one line once the proxy listens.

    Raises:
        ValueError: One line, as :func:`start_storage_proxy`.
    """
    proxy = start_storage_proxy(storage_url, host, port)
    try:
        on_ready(
            f"storage proxy for {mask_password(storage_url)} listening on {proxy.address} "
            "(no authentication: anyone who reaches this port can read and change its studies)"
        )
        with catching_interrupts():
            while True:
                with interruptible():
                    time.sleep(proxy.relay.get_heartbeat_interval())
                proxy.judge()
                check()
    finally:
        proxy.stop()


def check_port(port: int) -> None:
    """Refuse, in one line, a port a proxy cannot listen on.

    Example:
        >>> check_port(70000)
        Traceback (most recent call last):
        ...
        ValueError: --port must be from 1 to 65535, got 70000
    """
    if not 1 <= port <= 65535:
        raise ValueError(f"--port must be from 1 to 65535, got {port}")


def _cannot_listen(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (in use, not this machine's), else None:
    asked of the system first, since gRPC's core says it only in a log line of its own."""
    try:
        family, kind, _, _, where = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM
        )[0]
        with socket.socket(family, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC does
            probe.bind(where)
    except OSError as error:
        return error.strerror or str(error)
    return None


def _grpc_server(relay: HeartbeatRelay, host: str, port: int) -> Any:
    """Optuna's proxy service for ``relay``, listening on ``host:port`` alone.

    Optuna's own ``run_grpc_proxy_server`` neither says whether it could listen nor lets
    the port be exclusive, so the server is built here from Optuna's private service
    (``optuna.storages._grpc``), the one place the harness reaches into it.
    """
    # gRPC's core logs a port it cannot bind to stderr: the one line below says it
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    import grpc
    from optuna.storages._grpc.auto_generated import api_pb2_grpc
    from optuna.storages._grpc.servicer import OptunaStorageProxyService

    server = grpc.server(
        ThreadPoolExecutor(max_workers=SERVER_THREADS), options=[("grpc.so_reuseport", 0)]
    )
    api_pb2_grpc.add_StorageServiceServicer_to_server(OptunaStorageProxyService(relay), server)
    address = f"{host}:{port}"
    reason = _cannot_listen(host, port)
    bound = 0
    if reason is None:
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError:  # grpcio >= 1.60 raises where it returned 0
            reason = "gRPC could not listen there"
    if bound != port:
        server.stop(None)
        raise ValueError(f"cannot listen on {address}: {reason} (give another --port or --host)")
    return server
