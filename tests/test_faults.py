"""Runtime faults injected for real: torn records, full disks, dead and killed workers,
Ctrl-C, resumes against another storage or config. Nothing finished may be lost, and
each fault ends in one line."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
import yaml

from harness.configs.study import load_config
from harness.records.schema import TrialRecord
from harness.records.store import append_record, read_records
from harness.study.budget import count_trials
from harness.study.driver import load_or_create_study, run_study
from tests.test_study import (
    ROOT,
    harness,
    long_trials,
    run_args,
    start_run,
    terminal_signals,
    wait_for_records,
    write_study,
)

QUICK = {  # two short SP trials a few seconds each
    "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
    "epochs": {"type": "int", "low": 2, "high": 3},
}


def quick_study(tmp_path: Path, name: str, **changes) -> Path:
    settings = {
        "name": name,
        "search_space": QUICK,
        "enqueue": [{"learning_rate": 0.1, "epochs": 2}],
        "sampler": {"type": "random"},
        "n_trials": 2,
        **changes,
    }
    return write_study(tmp_path, **settings)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in stderr
    return lines[0]


def record(trial: int) -> TrialRecord:
    return TrialRecord("s", trial, "COMPLETE", "sp", "t", None, {"x": trial}, trial)


# --- torn records ---------------------------------------------------------------------


def test_an_append_after_a_torn_line_starts_a_line_of_its_own(tmp_path):
    path = tmp_path / "trials.jsonl"
    for trial in range(3):
        append_record(path, record(trial))
    subprocess.run(["truncate", "-s", "-200", str(path)], check=True)  # a crash mid-append
    torn = path.read_bytes().rsplit(b"\n", 2)[-1]
    append_record(path, record(3))
    assert [r["trial"] for r in read_records(path)] == [0, 1, 3]  # 3 was glued to 2, lost
    assert (tmp_path / "trials.jsonl.torn").read_bytes() == torn + b"\n"  # kept aside


def test_a_torn_last_record_is_set_aside_and_its_trial_runs_again_on_resume(tmp_path):
    """Issue 22: the trial whose record was torn is finished in the storage; before, it
    still counted against the budget and never ran again (4 finished trials, 3 records)."""
    path = quick_study(tmp_path, "torn")
    runs = tmp_path / "runs"
    config = load_config(path)
    run_study(config, runs_dir=runs, progress=False)
    records_file = runs / "torn" / "trials.jsonl"
    subprocess.run(["truncate", "-s", "-200", str(records_file)], check=True)
    result = harness(*run_args(path, tmp_path), "--n-trials", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    torn, rerun = result.stderr.strip().splitlines()
    assert "trials.jsonl ended in a torn line" in torn and "trials.jsonl.torn" in torn
    assert rerun.endswith("trials.jsonl: 1 (runs again as trial 2)")
    assert "Traceback" not in result.stderr
    records = read_records(records_file)
    assert [r["trial"] for r in records] == [0, 2, 3, 4]
    assert (runs / "torn" / "trials.jsonl.torn").stat().st_size > 0
    study = load_or_create_study(config, config.storage_url(runs))
    assert count_trials(study).finished == len(records) == 4
    lost, copy = study.trials[1], records[1]
    assert copy["retry_of"] == 1 and copy["seed"] == lost.user_attrs["seed"]
    assert copy["params"]["learning_rate"] == lost.params["learning_rate"]
    status = harness("status", str(path), "--runs-dir", str(runs), cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    row = next(line for line in status.stdout.splitlines() if line.split()[:1] == ["1"])
    assert "its record was lost (a torn line?): runs again as trial 2" in row
    assert "without a record" not in status.stdout


# --- full disks -------------------------------------------------------------------------


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "256k"):
    """A tmpfs of ``size`` at ``path`` (root only); skips the test where mounting fails."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path, leave_kib: int = 0) -> Path:
    """Fill the filesystem of ``directory`` up to ``leave_kib`` KiB free."""
    stats = os.statvfs(directory)
    free = stats.f_bavail * stats.f_frsize // 1024
    filler = directory / "filler"
    with filler.open("wb") as handle, contextlib.suppress(OSError):
        handle.write(b"\0" * max(0, free - leave_kib) * 1024)
    return filler


def test_a_full_disk_under_the_records_stops_the_run_and_costs_no_trial(tmp_path):
    storage = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    path = quick_study(tmp_path, "full", storage=storage)
    config = load_config(path)
    with small_filesystem(tmp_path / "runs", "64k") as runs:
        run_study(config, runs_dir=runs, progress=False)
        records_file = runs / "full" / "trials.jsonl"
        before = records_file.read_bytes()
        filler = fill(runs)
        result = harness(*run_args(path, tmp_path), "--n-trials", "4", cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        line = one_line(result.stderr)
        assert line.startswith("harness: error: cannot write records to ")
        assert line.endswith("No space left on device")
        after = records_file.read_bytes()
        # whole records only: a record may still fit in the slack of the file's last page
        assert after.startswith(before) and after.endswith(b"\n")
        written = after.count(b"\n")
        assert all(r["state"] == "COMPLETE" for r in read_records(records_file))
        study = load_or_create_study(config, storage)
        # the cut trial is no FAIL against the budget
        assert count_trials(study).finished == written
        cut = [t for t in study.trials if t.state.name == "FAIL"]
        assert [t.user_attrs.get("record_error") for t in cut] == [line.split(": ", 2)[2]]
        filler.unlink()
        outcome = run_study(config, n_trials=4, runs_dir=runs, progress=False)
        records = read_records(records_file)
        assert outcome.n_finished == 4 and len(records) == 4
        assert all(r["state"] == "COMPLETE" for r in records)
        (rerun,) = [r for r in records if r["retry_of"] == cut[0].number]
        assert rerun["params"]["learning_rate"] == cut[0].params["learning_rate"]


class PrivatePostgres:
    """A PostgreSQL server of one test's own, on 127.0.0.1 (the test crashes and restarts
    it, so it cannot be CI's shared one); as the ``postgres`` user when run as root."""

    def __init__(self) -> None:
        initdb = shutil.which("initdb")
        if initdb is None:
            pytest.skip("PostgreSQL's initdb is not on PATH")
        self.bin = Path(os.path.realpath(initdb)).parent
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.root = Path(tempfile.mkdtemp(prefix="harness-pg-"))  # pytest's tmp is 0700
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._run("initdb", "-D", str(self.root / "data"), "-A", "trust", "--no-sync",
                  "-U", "postgres")  # fmt: skip
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "h")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/h"

    def _run(self, program: str, *args: str) -> None:
        command = [*self.as_user, str(self.bin / program), *args]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-w", *args)

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        self._pg_ctl("-l", str(self.root / "log"), "-o", options, "start")

    def crash(self) -> None:
        """Stop it as a crash would: no checkpoint, every connection cut."""
        self._pg_ctl("-m", "immediate", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_postgres():
    server = PrivatePostgres()
    yield server
    server.remove()


@pytest.mark.slow  # 45-60 s: a server of its own, two study runs
def test_a_postgres_server_that_dies_mid_study_stops_it_in_one_line_and_loses_nothing(
    tmp_path, private_postgres
):
    """The server crashes while trials run: one line, exit 1, no trial counted as FAILed
    (before: the cut trial got a FAIL record and was never run again, and the line said
    "failed: ()"); once the server is back, a resume completes the budget."""
    path = write_study(tmp_path, name="pgdies", n_trials=6, enqueue=[],
                       search_space=long_trials(low=30)["search_space"])  # fmt: skip
    args = [*run_args(path, tmp_path), "--storage", private_postgres.url]
    records_file = tmp_path / "runs" / "pgdies" / "trials.jsonl"
    proc = start_run(args, tmp_path)
    wait_for_records(records_file, 2)
    private_postgres.crash()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    line = one_line(err)
    assert line.startswith(f"harness: error: storage {private_postgres.url} failed: "), line
    assert "server" in line.split(" failed: ", 1)[1], line  # what went wrong, in words
    results = {"COMPLETE", "PRUNED"}  # the study's median pruner may stop a trial
    kept = read_records(records_file)
    assert kept and {r["state"] for r in kept} <= results
    private_postgres.start()
    result = harness(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = read_records(records_file)
    assert records[: len(kept)] == kept
    assert len(records) == 6 and {r["state"] for r in records} <= results
    assert len({r["trial"] for r in records}) == 6


@pytest.mark.slow
def test_a_full_disk_stops_jobs_workers_in_one_line(tmp_path):
    storage = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    path = quick_study(tmp_path, "fulljobs", storage=storage, enqueue=[])
    with small_filesystem(tmp_path / "runs", "64k") as runs:
        run_study(load_config(path), runs_dir=runs, progress=False)
        before = (runs / "fulljobs" / "trials.jsonl").read_bytes()
        fill(runs)
        args = [*run_args(path, tmp_path), "--n-trials", "4", "--jobs", "2"]
        result = harness(*args, cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        line = one_line(result.stderr)
        assert line.startswith("harness: error: cannot write records to ")
        after = (runs / "fulljobs" / "trials.jsonl").read_bytes()
        assert after.startswith(before) and after.endswith(b"\n")  # whole records only
        kept = read_records(runs / "fulljobs" / "trials.jsonl")  # (space another freed)
        assert len(kept) == after.count(b"\n") and all(r["state"] == "COMPLETE" for r in kept)
        study = load_or_create_study(load_config(path), storage)
        assert count_trials(study).finished <= len(kept)  # the cut trials cost nothing
        cut = [t for t in study.trials if t.state.name == "FAIL"]
        assert cut and all(t.user_attrs.keys() & {"record_error", "interrupted"} for t in cut)


@pytest.mark.slow
def test_a_full_disk_under_records_and_storage_is_one_line_and_loses_nothing(tmp_path):
    path = quick_study(tmp_path, "fullall")
    config = load_config(path)
    with small_filesystem(tmp_path / "runs") as runs:
        run_study(config, runs_dir=runs, progress=False)
        records_file = runs / "fullall" / "trials.jsonl"
        before = read_records(records_file)
        filler = fill(runs, leave_kib=16)
        result = harness(*run_args(path, tmp_path), "--n-trials", "4", cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        line = one_line(result.stderr)
        assert "database or disk is full" in line or "No space left on device" in line
        assert read_records(records_file)[: len(before)] == before
        filler.unlink()
        outcome = run_study(config, n_trials=4, runs_dir=runs, progress=False)
        numbers = [r["trial"] for r in read_records(records_file)]
        assert outcome.n_finished == 4 and len(numbers) == len(set(numbers))


def test_a_file_size_limit_stops_the_run_in_one_line_and_loses_nothing(tmp_path):
    """RLIMIT_FSIZE (EFBIG) works without mounting: every write past the limit fails, in
    the records and in the SQLite file alike."""
    import resource

    path = quick_study(tmp_path, "fsize")
    config = load_config(path)
    runs = tmp_path / "runs"
    run_study(config, runs_dir=runs, progress=False)
    records_file = runs / "fsize" / "trials.jsonl"
    before = records_file.read_bytes()
    limit = len(before) + 10

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", *run_args(path, tmp_path), "--n-trials", "4"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=limited,
    )
    assert result.returncode == 1, result.stderr
    line = one_line(result.stderr)  # SQLite says EFBIG its own way
    assert "File too large" in line or line.endswith("failed: disk I/O error")
    assert records_file.read_bytes() == before
    outcome = run_study(config, n_trials=4, runs_dir=runs, progress=False)
    numbers = [r["trial"] for r in read_records(records_file)]
    assert outcome.n_finished == 4 and sorted(numbers) == sorted(set(numbers))
    assert len(numbers) == 4


# --- dead workers -----------------------------------------------------------------------

DYING = """
import os, sys, optuna
from harness.study.driver import load_or_create_study
from harness.study.trials import suggest
from harness.configs.study import load_config
config = load_config(sys.argv[1])
study = load_or_create_study(config, sys.argv[2])
trial = study.ask()
suggest(trial, config)
trial.set_user_attr("seed", 0)
study._storage.record_heartbeat(trial._trial_id)
os._exit(9)  # killed mid-trial
"""


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_trial_killed_again_and_again_is_retried_then_failed_with_its_reason(
    tmp_path, monkeypatch
):
    """The first trial is an enqueued point outside the search space: its retries must
    still work (Optuna's own retry rebuilt it from the search space and raised)."""
    from harness.study.objective import TrialRunner
    from harness.study.runtime.retries import fail_stale_trials, record_given_up

    monkeypatch.setattr("harness.study.storages.HEARTBEAT_SECONDS", 1)  # stale after 3 s
    path = quick_study(tmp_path, "twice", enqueue=[{"learning_rate": 5.0, "epochs": 2}])
    config = load_config(path)
    url = config.storage_url(tmp_path / "runs")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HARNESS_HEARTBEAT_SECONDS": "1"}

    def die() -> None:
        child = subprocess.run(
            [sys.executable, "-c", DYING, str(path), url], env=env, capture_output=True
        )
        assert child.returncode == 9, child.stderr
        time.sleep(4.5)  # past the grace period (SQLite times count whole seconds)

    study = load_or_create_study(config, url)
    die()
    optuna.storages.fail_stale_trials(study)  # what Optuna's optimize runs first
    die()
    assert fail_stale_trials(study) == 1  # ours, with the reason
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "FAIL", "WAITING"]
    assert trials[2].system_attrs["fixed_params"] == {"learning_rate": 5.0, "epochs": 2}
    assert trials[1].user_attrs["fail_reason"] == "worker died (heartbeat stale); retried"
    assert count_trials(study).finished == 0  # no budget spent on deaths
    die()
    assert fail_stale_trials(study) == 1
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["FAIL"] * 3  # given up: no fourth try
    reason = "worker died (heartbeat stale); given up after 3 attempts"
    assert trials[2].user_attrs["fail_reason"] == reason
    assert count_trials(study).finished == 1  # one trial, one slot
    runner = TrialRunner(config, tmp_path / "runs" / "twice" / "trials.jsonl")
    assert record_given_up(study, runner) == 1 and record_given_up(study, runner) == 0
    (failed,) = read_records(runner.records_file)
    assert failed["trial"] == 2 and failed["state"] == "FAIL"
    assert failed["fail_reason"] == reason and failed["retry_of"] == 0
    assert failed["params"]["learning_rate"] == 5.0
    # a config enqueuing a point outside its space is refused up front now (that is how an
    # older study got one); status reads the study through the config without it
    data = yaml.safe_load(path.read_text())
    data.pop("enqueue")
    path.write_text(yaml.safe_dump(data))
    status = harness("status", str(path), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    rows = status.stdout.splitlines()[2:5]
    assert rows[0].endswith("worker died (heartbeat stale); runs again as trial 1")
    assert rows[2].endswith(reason) and "learning_rate" not in "".join(rows)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_a_dead_trial_failed_but_not_yet_enqueued_again_gets_no_given_up_record(tmp_path):
    """A worker fails a dead worker's trial, then enqueues its copy: another worker that
    looks in between (a few calls through a storage proxy on a loaded machine) must not take
    the trial for one given up and write its FAIL record, or the retry's record makes one
    more than the budget (the 11 records for 10 trials through the proxy)."""
    from harness.study.objective import TrialRunner
    from harness.study.runtime.retries import (
        REASON,
        STALE,
        death_reason,
        record_given_up,
        run_again,
    )
    from harness.study.trials import suggest

    config = load_config(quick_study(tmp_path, "between"))
    study = load_or_create_study(config, config.storage_url(tmp_path / "runs"))
    runner = TrialRunner(config, tmp_path / "runs" / "between" / "trials.jsonl")
    storage = study._storage
    for ours in (True, False):  # failed by ours (with the reason), by Optuna's (without)
        trial = study.ask()
        suggest(trial, config)
        trial.set_user_attr("seed", 0)
        if ours:
            reason = death_reason(storage.get_trial(trial._trial_id), STALE)
            storage.set_trial_user_attr(trial._trial_id, REASON, reason)
        storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        assert record_given_up(study, runner) == 0  # its copy is on its way
        assert run_again(study, storage.get_trial(trial._trial_id), died=True, cause=STALE)
        assert record_given_up(study, runner) == 0
    assert not runner.records_file.exists()


@pytest.mark.slow
def test_ctrl_c_in_the_enqueued_first_trial_runs_it_again_on_resume(tmp_path):
    slow = {"learning_rate": 0.1, "regularize_lambda": 10.0, "init_val": 1.6, "epochs": 40}
    path = write_study(
        tmp_path,
        name="first",
        n_trials=2,
        search_space=long_trials(low=2)["search_space"],
        enqueue=[slow],
    )
    args = run_args(path, tmp_path)
    proc = start_run(args, tmp_path)
    config = load_config(path)
    url = config.storage_url(tmp_path / "runs")
    deadline = time.time() + 120
    while time.time() < deadline:  # the enqueued trial is training
        time.sleep(0.5)
        # only once the run has made its study (records.id is written after): opening a
        # storage being created would race the harness for Optuna's schema tables
        if (tmp_path / "runs" / "first" / "records.id").exists():
            with contextlib.suppress(Exception):  # read only: never enqueue from here
                trials = optuna.load_study(study_name="first", storage=url).get_trials()
                if trials and trials[0].state.name == "RUNNING" and trials[0].intermediate_values:
                    break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert not read_records(tmp_path / "runs" / "first" / "trials.jsonl")
    result = harness(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = read_records(tmp_path / "runs" / "first" / "trials.jsonl")
    assert len(records) == 2
    (defaults,) = [r for r in records if r["params"]["epochs"] == 40]
    assert {k: defaults["params"][k] for k in slow} == slow and defaults["seed"] == 0


# --- seeding ----------------------------------------------------------------------------


def proposals(records_file: Path) -> list[tuple]:
    return [tuple(sorted(r["params"].items())) for r in read_records(records_file)]


def test_resumed_runs_with_the_random_sampler_propose_new_points(tmp_path):
    config = load_config(quick_study(tmp_path, "seeded", enqueue=[], n_trials=1))
    runs = tmp_path / "runs"
    first = run_study(config, runs_dir=runs, progress=False)
    run_study(config, n_trials=2, runs_dir=runs, progress=False)
    run_study(config, n_trials=3, runs_dir=runs, progress=False)
    seen = proposals(first.records_path)
    assert len(seen) == 3 and len(set(seen)) == 3
    (tmp_path / "again").mkdir()
    again = load_config(quick_study(tmp_path / "again", "seeded", enqueue=[], n_trials=1))
    repeat = run_study(again, runs_dir=tmp_path / "again" / "runs", progress=False)
    assert proposals(repeat.records_path) == seen[:1]  # a fresh run reproduces its seed


def test_jobs_workers_with_the_random_sampler_propose_different_points(tmp_path):
    config = load_config(quick_study(tmp_path, "seeded-jobs", enqueue=[], n_trials=2))
    outcome = run_study(config, jobs=2, runs_dir=tmp_path / "runs", progress=False)
    seen = proposals(outcome.records_path)
    assert len(seen) == 2 and seen[0] != seen[1]


# --- another storage, another config ----------------------------------------------------


def test_records_of_another_storage_are_refused_in_one_line(tmp_path):
    path = quick_study(tmp_path, "keyed", n_trials=1)
    runs = tmp_path / "runs"
    args = run_args(path, tmp_path)
    assert harness(*args, cwd=tmp_path).returncode == 0
    records_file = runs / "keyed" / "trials.jsonl"
    before = records_file.read_bytes()
    other = harness(*args, "--storage", f"sqlite:///{tmp_path / 'other.db'}", cwd=tmp_path)
    assert other.returncode == 2
    assert "holds 1 records of study 'keyed', but sqlite:///" in one_line(other.stderr)
    (runs / "keyed" / "study.db").unlink()  # a deleted study.db
    deleted = harness(*args, cwd=tmp_path)
    assert deleted.returncode == 2
    assert "(a new or deleted storage?): move" in one_line(deleted.stderr)
    assert records_file.read_bytes() == before


def test_a_changed_config_is_refused_unless_allowed_and_then_recorded(tmp_path):
    path = quick_study(tmp_path, "changed", n_trials=1)
    args = run_args(path, tmp_path)
    assert harness(*args, cwd=tmp_path).returncode == 0
    data = yaml.safe_load(path.read_text())
    data["task"] = "tracr-proportion"
    data["ground_truth"] = None
    path.write_text(yaml.safe_dump(data))
    refused = harness(*args, "--n-trials", "2", cwd=tmp_path)
    assert refused.returncode == 2
    line = one_line(refused.stderr)
    assert "study 'changed' was created with another config (ground_truth: 'resample'" in line
    assert "and 1 more" in line and "--allow-config-change" in line
    assert len(read_records(tmp_path / "runs" / "changed" / "trials.jsonl")) == 1
    allowed = harness(*args, "--n-trials", "2", "--allow-config-change", cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    assert "config changed (ground_truth, task)" in allowed.stderr
    config = load_config(path)
    study = load_or_create_study(config, config.storage_url(tmp_path / "runs"))
    (change,) = study.user_attrs["config_changes"]
    assert change["keys"] == ["ground_truth", "task"] and change["to_hash"] == config.config_hash()
    records = read_records(tmp_path / "runs" / "changed" / "trials.jsonl")
    assert [r["task"] for r in records] == ["tracr-reverse", "tracr-proportion"]
    bigger = harness(*args, "--n-trials", "3", cwd=tmp_path)  # the budget may grow freely
    assert bigger.returncode == 0, bigger.stderr


# --- worker processes -------------------------------------------------------------------


def worker_pids(parent: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True)
    children = [int(p) for p in out.stdout.split()]
    return [p for p in children if "spawn_main" in _cmdline(p)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


SPAWN_BLOCKED = """
import shutil, sys
from harness.study.runtime.processes import start_blocked
process = start_blocked(shutil.copyfile, ("/proc/self/status", sys.argv[1]))
process.join()
"""


def test_worker_processes_start_with_ctrl_c_blocked(tmp_path):
    """A Ctrl-C that lands while a worker imports must wait for its handlers (before,
    multiprocessing's resource tracker unblocked SIGINT in the parent as it started, and
    the first worker printed a KeyboardInterrupt traceback)."""
    status = tmp_path / "status"
    subprocess.run(
        [sys.executable, "-c", SPAWN_BLOCKED, str(status)],
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    (blocked,) = [line.split()[1] for line in status.read_text().splitlines() if "SigBlk" in line]
    mask = int(blocked, 16)
    assert mask >> (signal.SIGINT - 1) & 1 and mask >> (signal.SIGUSR1 - 1) & 1


@pytest.mark.slow
def test_a_killed_jobs_worker_does_not_abort_the_others(tmp_path):
    path = write_study(
        tmp_path,
        name="killjob",
        n_trials=5,
        enqueue=[],
        search_space=long_trials(low=15)["search_space"],
    )
    env = {"HARNESS_HEARTBEAT_SECONDS": "1"}
    proc = start_run([*run_args(path, tmp_path), "--jobs", "2"], tmp_path, env)
    records_file = tmp_path / "runs" / "killjob" / "trials.jsonl"
    wait_for_records(records_file, 1)
    victim = worker_pids(proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    line = one_line(err)
    assert line.startswith(f"harness: warning: worker process {victim} died (SIGKILL)")
    numbers = [r["trial"] for r in read_records(records_file)]
    assert len(numbers) == len(set(numbers)) == 5


@pytest.mark.slow
def test_double_ctrl_c_with_jobs_is_one_line_and_exit_130(tmp_path):
    path = write_study(
        tmp_path,
        name="twicec",
        n_trials=6,
        enqueue=[],
        search_space=long_trials(low=40)["search_space"],
    )
    proc = start_run([*run_args(path, tmp_path), "--jobs", "2"], tmp_path, new_session=True)
    wait_for_records(tmp_path / "runs" / "twicec" / "trials.jsonl", 1)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert one_line(err) == "harness: interrupted"


@pytest.mark.slow
def test_sigterm_stops_a_run_like_ctrl_c_and_resume_loses_nothing(tmp_path):
    """``kill`` (SIGTERM, what a batch scheduler sends first): exit 143 in one line; the cut
    trial is not a result and runs again on an immediate resume (no heartbeat wait)."""
    path = write_study(
        tmp_path, name="term", n_trials=2, enqueue=[],
        search_space=long_trials(low=40)["search_space"],
    )  # fmt: skip
    args = run_args(path, tmp_path)
    records_file = tmp_path / "runs" / "term" / "trials.jsonl"
    proc = start_run(args, tmp_path)
    wait_for_records(records_file, 1)
    time.sleep(1.0)  # inside the next trial
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert one_line(err) == "harness: terminated"
    kept = read_records(records_file)
    assert kept and all(r["state"] == "COMPLETE" for r in kept)
    result = harness(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = read_records(records_file)
    assert records[: len(kept)] == kept  # nothing finished lost or rewritten
    assert len(records) == 2 and {r["state"] for r in records} == {"COMPLETE"}


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                children.append(int(stat.parent.name))
    return children


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_sigterm_to_a_jobs_parent_stops_its_workers_and_exits_143(tmp_path):
    path = write_study(
        tmp_path, name="termjobs", n_trials=4, enqueue=[],
        search_space=long_trials(low=40)["search_space"],
    )  # fmt: skip
    args = [*run_args(path, tmp_path), "--jobs", "2"]
    records_file = tmp_path / "runs" / "termjobs" / "trials.jsonl"
    proc = start_run(args, tmp_path, new_session=True)
    wait_for_records(records_file, 1)
    workers = [pid for pid in _children(proc.pid) if _alive(pid)]
    assert len(workers) >= 2  # the workers (and multiprocessing's resource tracker)
    proc.send_signal(signal.SIGTERM)  # the parent only, not the group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert one_line(err) == "harness: terminated"
    deadline = time.time() + 30
    while any(_alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers)
    kept = read_records(records_file)
    result = harness(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = read_records(records_file)
    assert records[: len(kept)] == kept
    assert len({r["trial"] for r in records}) == len(records)
    assert sum(r["state"] == "COMPLETE" for r in records) == 4


SIGTERM_DURING = """
import os, signal, sys, threading
from harness.cli import main
threading.Timer(float(sys.argv[1]), os.kill, (os.getpid(), signal.SIGTERM)).start()
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize(
    "command",
    [["demo", "--epochs", "1000000"], ["score", "--task", "tracr-reverse", "--algo", "sp",
                                        "--param", "epochs=1000000"]],
)  # fmt: skip
def test_sigterm_outside_a_study_is_exit_143_and_one_line(tmp_path, command):
    """Commands without a study (demo, score, compare...) stop at once on SIGTERM."""
    result = subprocess.run(
        [sys.executable, "-c", SIGTERM_DURING, "8", *command],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == 143, result.stderr
    assert one_line(result.stderr) == "harness: terminated"


def test_ctrl_c_during_start_up_is_exit_130_and_one_line(tmp_path):
    path = quick_study(tmp_path, "early")
    proc = start_run(run_args(path, tmp_path), tmp_path, new_session=True)
    time.sleep(2.0)  # importing torch, opening the study, compiling the task
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert one_line(err) == "harness: interrupted"


# A real SIGINT, sent by the process to itself inside a weakref callback, where an
# exception cannot propagate; the task file runs when ``--tasks-from`` tasks are first
# looked up, as a user's would.
STOP_INSIDE_A_WEAKREF_CALLBACK = """
import os, signal, time, weakref
from pathlib import Path
class Thing: ...
def on_collect(ref):
    os.kill(os.getpid(), signal.SIGINT)
    for _ in range(10**6): pass  # the handler raises here, where nothing can catch it
thing = Thing()
ref = weakref.ref(thing, on_collect)
del thing
time.sleep(3)
Path("ran-on").write_text("the stop was lost")
"""


def test_ctrl_c_lost_in_a_weakref_callback_is_delivered_again(tmp_path):
    """Before: Python printed the stop as "Exception ignored" and the command ran on to
    exit 0 (seen when Ctrl-C landed in SQLAlchemy's registry cleanup during a study)."""
    (tmp_path / "tasks.py").write_text(STOP_INSIDE_A_WEAKREF_CALLBACK)
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "--tasks-from", "tasks.py", "ls", "tasks"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=terminal_signals,
    )  # fmt: skip
    assert result.returncode == 130, result.stderr
    assert one_line(result.stderr) == "harness: interrupted"
    assert not (tmp_path / "ran-on").exists()


@pytest.mark.slow
def test_workers_of_a_killed_parent_stop(tmp_path):
    path = write_study(
        tmp_path,
        name="orphans",
        n_trials=6,
        enqueue=[],
        search_space=long_trials(low=40)["search_space"],
    )
    proc = start_run([*run_args(path, tmp_path), "--jobs", "2"], tmp_path)
    wait_for_records(tmp_path / "runs" / "orphans" / "trials.jsonl", 1)
    workers = worker_pids(proc.pid)
    assert len(workers) == 2
    proc.kill()
    proc.wait()
    deadline = time.time() + 60
    while time.time() < deadline and any(Path(f"/proc/{p}").exists() for p in workers):
        time.sleep(0.5)
    alive = [p for p in workers if Path(f"/proc/{p}").exists() and "spawn_main" in _cmdline(p)]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive
