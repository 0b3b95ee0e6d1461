"""Workers through a real storage proxy (``harness storage-proxy``, ``--storage grpc://``):
heartbeats, a SIGKILLed worker's trial run again, the budget, bad addresses."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from harness.cli import main
from harness.configs.study import load_config
from harness.records.store import read_records
from harness.study.driver import open_storage, run_worker
from harness.study.proxy_server import start_storage_proxy
from harness.study.runtime.failures import StorageError, storage_failures
from harness.study.runtime.heartbeats import heartbeat_enabled, heartbeat_thread
from harness.study.runtime.retries import STALE, fail_stale_trials
from harness.study.trials import retried_trial_number
from tests.test_study import ROOT, long_trials, write_study

POSTGRES_URL = os.environ.get("HARNESS_TEST_POSTGRES_URL")
FAST_BEATS = {"HARNESS_HEARTBEAT_SECONDS": "1"}  # a dead worker's trial is stale after 3 s


def epochs(low: int, high: int) -> dict:
    """SMALL_STUDY's search space and enqueued point with low..high epochs."""
    space = long_trials(low)
    space["search_space"]["epochs"]["high"] = high
    return space


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def storage_proxy(storage_url: str, cwd: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """A ``harness storage-proxy`` process for ``storage_url``; yields its grpc:// URL."""
    port = free_port()
    command = ["storage-proxy", "--storage", storage_url, "--port", str(port)]
    proxy = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *command],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **FAST_BEATS},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proxy.stdout.readline()  # printed once it listens
        assert f"listening on grpc://127.0.0.1:{port}" in line, proxy.stderr.read()
        assert "no authentication" in line
        yield f"grpc://127.0.0.1:{port}", proxy
    finally:
        proxy.terminate()
        _, err = proxy.communicate(timeout=30)
        assert proxy.returncode in (143, -9), err  # SIGTERM: stopped as asked


def start_worker(path: Path, url: str, runs: Path) -> subprocess.Popen:
    command = ["worker", str(path), "--storage", url, "--runs-dir", str(runs), "--no-progress"]
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *command],
        cwd=path.parent,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **FAST_BEATS},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_running(study: optuna.Study, timeout: float = 120) -> None:
    """Until some trial of ``study`` is RUNNING and has reported an epoch (mid-trial)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(t.state.name == "RUNNING" and t.intermediate_values for t in study.trials):
            return
        time.sleep(0.1)
    raise AssertionError("no trial started")


def check_study(study: optuna.Study, records: list[dict], n_trials: int) -> None:
    """Every slot of the budget finished once, and the killed worker's trial ran again."""
    numbers = [r["trial"] for r in records]
    assert len(numbers) == len(set(numbers)) == n_trials, numbers
    dead = [t for t in study.trials if t.user_attrs.get("fail_reason") == f"{STALE}; retried"]
    assert dead, [(t.number, t.state.name, t.user_attrs) for t in study.trials]
    retries = {retried_trial_number(t): t for t in study.trials}
    for trial in dead:
        assert trial.state.name == "FAIL" and trial.number not in numbers
        again = retries[trial.number]
        assert again.state.name in ("COMPLETE", "PRUNED") and again.number in numbers
        assert again.params == trial.params
        assert again.user_attrs["seed"] == trial.user_attrs["seed"]
    counted = [t for t in study.trials if t.state.is_finished() and not t.user_attrs.get("surplus")]
    assert sorted(t.number for t in counted if t.state.name != "FAIL") == sorted(numbers)


@pytest.mark.slow
def test_a_sigkilled_worker_behind_a_sqlite_proxy_has_its_trial_run_again(
    tmp_path: Path, monkeypatch
):
    """One worker process is killed mid-trial; a second worker (this process), through the
    same proxy, sees the proxy mark the trial stale, fails it and runs it again."""
    monkeypatch.setattr("harness.study.storages.HEARTBEAT_SECONDS", 1)
    path = write_study(tmp_path, name="proxied", n_trials=2, **epochs(6, 8))
    runs = tmp_path / "runs"
    with storage_proxy(f"sqlite:///{tmp_path / 'study.db'}", tmp_path) as (url, _):
        victim = start_worker(path, url, runs)
        study = optuna.load_study(study_name="proxied", storage=_wait_for_study(url))
        wait_running(study)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        config = load_config(path)
        run_worker(config, url, runs_dir=runs)
        records = read_records(runs / "proxied" / "trials.jsonl")
        check_study(study, records, n_trials=2)
        assert not any(t.system_attrs.get("harness:heartbeat") for t in study.trials)


def _wait_for_study(url: str, timeout: float = 120):
    """The proxy's storage once a worker has created its study."""
    storage = open_storage(url)
    deadline = time.time() + timeout
    while time.time() < deadline:
        with contextlib.suppress(KeyError):
            storage.get_study_id_from_name("proxied")
            return storage
        time.sleep(0.2)
    raise AssertionError("no study")


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(
    not POSTGRES_URL, reason="HARNESS_TEST_POSTGRES_URL is not set (.ci/run sets it)"
)
def test_four_workers_through_a_postgres_proxy_one_killed():
    """``bench/storage_proxy.py``, small: four ``harness worker`` processes through a real
    proxy over PostgreSQL, one killed with SIGKILL while every worker trains a trial."""
    # trials of 40-60 epochs (seconds each): the kill waits for a moment when every worker
    # trains, which trials of 4-8 epochs gave in 5 of 6 runs at load 11 and 1 of 2 at load 1
    command = ["--postgres", POSTGRES_URL, "--ways", "proxy", "--trials", "12", "--kill-after"]
    command += ["1", "--heartbeat", "5", "--epochs", "40", "60"]
    result = subprocess.run(
        [sys.executable, "bench/storage_proxy.py", *command],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    run = json.loads(line)
    assert run["trials"] == 12 and run["each_once"] and run["worker_errors"] == [], run
    assert run["reasons"] == [f"{STALE}; retried"], run
    assert len(run["retries_done"]) == len(run["killed_trials"]) == 1
    assert run["retries_same_setting"]


def test_a_proxy_address_where_nothing_listens_is_one_line(tmp_path: Path, capsys):
    path = write_study(tmp_path)
    port = free_port()
    runs = tmp_path / "r"
    for url, message in [
        (f"grpc://127.0.0.1:{port}", f"no storage proxy at 127.0.0.1:{port} (Connection refused)"),
        ("grpc://127.0.0.1:99999", "port from 1 to 65535"),
        ("grpc://127.0.0.1", "not a storage proxy's address"),
        ("grpc://user:pw@127.0.0.1:1", "takes no user nor password"),
    ]:
        started = time.monotonic()
        assert main(["worker", str(path), "--storage", url, "--runs-dir", str(runs)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and message in err and "pw" not in err, err
        assert time.monotonic() - started < 5
    assert not runs.exists()


def test_bad_proxy_options_are_one_line(tmp_path: Path, capsys):
    for args, message in [
        (["--storage", f"journal://{tmp_path}/s.journal"], "serves no journal file"),
        (["--storage", "grpc://127.0.0.1:1"], "nor another proxy"),
        (["--storage", "sqlite:///"], "in-memory database"),
        (["--storage", f"sqlite:///{tmp_path}/s.db", "--port", "0"], "--port must be from 1"),
    ]:
        assert main(["storage-proxy", *args]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and message in err, err


def test_a_port_in_use_is_one_line(tmp_path: Path, capfd):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        storage = f"sqlite:///{tmp_path}/s.db"
        assert main(["storage-proxy", "--storage", storage, "--port", str(port)]) == 2
    err = capfd.readouterr().err  # gRPC's core would log the bind failure on fd 2
    assert err.strip() == (
        f"harness: error: cannot listen on 127.0.0.1:{port}: Address already in use (give "
        "another --port or --host)"
    )


def test_an_optuna_proxy_without_the_heartbeat_relay_is_refused():
    """Behind Optuna's own proxy a dead worker's trial would stay RUNNING for ever."""
    from optuna.storages._grpc.server import make_server

    port = free_port()
    server = make_server(optuna.storages.InMemoryStorage(), "127.0.0.1", port)
    server.start()
    try:
        with pytest.raises(ValueError, match="relays no heartbeats"):
            open_storage(f"grpc://127.0.0.1:{port}")
    finally:
        server.stop(None)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_heartbeats_through_the_proxy_mark_a_silent_trial_stale(tmp_path: Path, monkeypatch):
    """A worker beats through the proxy; once it is silent for the grace period the proxy
    marks its trial and a worker's stale-trial check fails it and enqueues its retry."""
    monkeypatch.setattr("harness.study.storages.HEARTBEAT_SECONDS", 1)  # stale after 3 s
    proxy = start_storage_proxy(f"sqlite:///{tmp_path}/s.db", port=free_port())
    storage = open_storage(proxy.address)
    try:
        assert heartbeat_enabled(storage) and storage.get_heartbeat_interval() == 1
        study = optuna.create_study(study_name="beats", storage=storage)
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        trial.set_user_attr("seed", 7)
        with heartbeat_thread(trial._trial_id, storage):
            time.sleep(4)  # beating: never stale
        assert proxy.judge() == 0
        time.sleep(3.5)  # silent past the grace period
        assert proxy.judge() == 1 and proxy.judge() == 0  # marked once
        assert fail_stale_trials(study) == 1
        dead, again = study.trials
        assert dead.state.name == "FAIL" and dead.user_attrs["fail_reason"] == f"{STALE}; retried"
        assert again.state.name == "WAITING" and again.user_attrs["seed"] == 7
        assert "harness:heartbeat" not in dead.system_attrs  # a beat is no attribute
    finally:
        storage.close()
        proxy.stop()


def test_a_proxy_that_dies_stops_its_worker_in_one_line(tmp_path: Path):
    proxy = start_storage_proxy(f"sqlite:///{tmp_path}/s.db", port=free_port())
    storage = open_storage(proxy.address)
    proxy.stop()
    with (
        pytest.raises(
            StorageError,
            match=r"^storage grpc://127\.0\.0\.1:\d+ failed: storage "
            r"proxy: UNAVAILABLE",
        ),
        storage_failures(proxy.address),
    ):
        storage.get_all_studies()
