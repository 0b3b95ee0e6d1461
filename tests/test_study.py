"""Studies end to end on tracr-reverse: configs, runs, resume, failures, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.configs.study import load_config
from harness.records.store import read_records
from harness.study.driver import load_or_create_study, run_study
from harness.study.runtime.storage_urls import mask_password
from harness.study.trials import retried_trial_number

ROOT = Path(__file__).resolve().parents[1]

SMALL_STUDY = {
    "version": 1,
    "name": "tiny",
    "task": "tracr-reverse",
    "task_options": {"device": "cpu"},
    "ground_truth": "resample",
    "algorithm": "sp",
    "params": {"tree_optimisation": True},
    "search_space": {
        "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
        "regularize_lambda": {"type": "float", "low": 0.01, "high": 10.0, "log": True},
        "init_val": {"type": "float", "low": 0.5, "high": 3.0},
        "epochs": {"type": "int", "low": 2, "high": 4},
    },
    "enqueue": [{"learning_rate": 0.1, "regularize_lambda": 10.0, "init_val": 1.6, "epochs": 3}],
    "sampler": {"type": "tpe", "n_startup_trials": 2},
    "n_trials": 3,
    "wandb": {"mode": "disabled"},
    "heldout": {"seeds": 0},  # the held-out runs have tests of their own
}


def write_study(tmp_path: Path, **changes) -> Path:
    data = json.loads(json.dumps(SMALL_STUDY))
    data.update(changes)
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def harness(*args: str, cwd: Path, env: dict | None = None, timeout: float = 600):
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def run_args(path: Path, tmp_path: Path) -> list[str]:
    """``harness run`` of a study with its records and reports under ``tmp_path``."""
    return [
        "run",
        str(path),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--no-progress",
        "--report-dir",
        str(tmp_path / "reports"),
    ]


def long_trials(low: int) -> dict:
    """SMALL_STUDY's search space with low..60 epochs (trials long enough to cut short) and
    its enqueued point moved inside it (a point outside the space is refused)."""
    return {
        "search_space": {
            **SMALL_STUDY["search_space"],
            "epochs": {"type": "int", "low": low, "high": 60},
        },
        "enqueue": [{**SMALL_STUDY["enqueue"][0], "epochs": low}],
    }


def start_run(
    args: list[str], cwd: Path, env: dict | None = None, new_session: bool = False
) -> subprocess.Popen:
    """``harness`` in a subprocess we can signal (as a process group with ``new_session``,
    like a terminal's Ctrl-C); its stderr is kept for assertions."""
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
        preexec_fn=terminal_signals,
    )


def terminal_signals() -> None:
    """In the child: Ctrl-C as a shell's child gets it (default action, not blocked),
    whatever the test runner's process inherited or set."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_records(path: Path, count: int, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and len(read_records(path)) < count:
        time.sleep(0.1)


def test_run_resume_records_and_status(tmp_path):
    config = load_config(write_study(tmp_path))
    outcome = run_study(config, runs_dir=tmp_path / "runs", progress=False)
    assert outcome.n_finished == 3
    records = read_records(outcome.records_path)
    assert sorted(r["trial"] for r in records) == [0, 1, 2]
    first = records[0]
    assert first["params"]["learning_rate"] == 0.1  # the enqueued paper defaults come first
    assert first["params"]["tree_optimisation"] is True
    assert set(first["auc"]) == {"resample", "acdc-zero"}
    assert {"score-trapezoid", "sweep-pessimistic"} <= set(first["auc"]["resample"])
    assert first["seed"] == 0 and first["config_hash"] == config.config_hash()
    assert first["versions"]["torch"] and first["roc"]["resample"]["fpr"][0] == 0
    assert len(first["history"]["epoch_loss"]) == 3

    resumed = run_study(config, n_trials=5, runs_dir=tmp_path / "runs", progress=False)
    assert resumed.n_finished == 5
    again = read_records(outcome.records_path)
    assert sorted(r["trial"] for r in again) == [0, 1, 2, 3, 4]
    assert again[:3] == records  # nothing finished is rewritten

    status = harness(
        "status", str(tmp_path / "tiny.yaml"), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path
    )
    assert status.returncode == 0, status.stderr
    assert status.stdout.count("COMPLETE") == 5 and "best: trial" in status.stdout


def test_failing_trials_are_recorded_and_the_study_goes_on(tmp_path):
    path = write_study(
        tmp_path,
        name="failing",
        enqueue=[],
        search_space={
            "mask_fn": {"type": "categorical", "choices": ["bogus", "sigmoid"]},
            "epochs": {"type": "int", "low": 2, "high": 3},
        },
        sampler={"type": "random"},
        n_trials=4,
    )
    outcome = run_study(load_config(path), runs_dir=tmp_path / "runs", progress=False)
    records = read_records(outcome.records_path)
    assert len(records) == 4
    failed = [r for r in records if r["state"] == "FAIL"]
    assert failed and all(
        "mask_fn must be one of" in r["fail_reason"] and "got 'bogus'" in r["fail_reason"]
        for r in failed
    )
    assert any(r["state"] == "COMPLETE" for r in records)
    study = load_or_create_study(
        load_config(path), load_config(path).storage_url(tmp_path / "runs")
    )
    reasons = [t.user_attrs.get("fail_reason") for t in study.trials if t.state.name == "FAIL"]
    assert reasons and all("bogus" in r for r in reasons)


@pytest.mark.parametrize(
    "storage",
    ["sqlite", pytest.param("journal", marks=pytest.mark.slow)],  # 61 s, same path
)
def test_resume_after_sigkill_keeps_every_trial_and_repeats_none(tmp_path, storage):
    """SQLite: the killed trial goes stale by heartbeat; a journal file: by its worker's
    released lock (no waiting)."""
    extra = {"storage": f"journal://{tmp_path / 'killed.journal'}"} if storage == "journal" else {}
    path = write_study(
        tmp_path,
        name="killed",
        n_trials=6,
        **long_trials(low=30),
        **extra,
    )
    runs = tmp_path / "runs"
    env = {"HARNESS_HEARTBEAT_SECONDS": "1"}
    args = run_args(path, tmp_path)
    proc = start_run(args, tmp_path, env)
    records_file = runs / "killed" / "trials.jsonl"
    wait_for_records(records_file, 2)
    time.sleep(0.5)  # kill it mid-trial
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = read_records(records_file)
    assert 2 <= len(before) < 6
    config = load_config(path)
    storage_url = config.storage_url(runs)
    cut = [
        t.number
        for t in load_or_create_study(config, storage_url).trials
        if not t.state.is_finished()
    ]
    if storage == "sqlite":
        time.sleep(4)  # past the heartbeat grace period: the killed trial is stale
    result = harness(*args, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    after = read_records(records_file)
    numbers = [r["trial"] for r in after]
    assert len(numbers) == len(set(numbers)) == 6  # none lost, none repeated
    assert after[: len(before)] == before
    study = load_or_create_study(config, storage_url)
    finished = [t for t in study.trials if t.state.is_finished() and t.state.name != "FAIL"]
    assert len(finished) == 6
    recorded = {r["trial"] for r in before}
    for number in cut:  # the trial the kill cut (if it landed mid-trial)
        if number in recorded:  # killed after its record, before Optuna heard: kept as is
            assert study.trials[number].user_attrs["settled_from_record"] is True
            assert study.trials[number].state.name != "FAIL"
        else:  # killed mid-trial: failed, retried
            assert study.trials[number].state.name == "FAIL"
            assert number in {retried_trial_number(t) for t in study.trials}


KILLED_AFTER_RECORD = """
import os, sys
from pathlib import Path
import harness.study.driver as study
from harness.configs.study import load_config

written = []

def logger(config, runs_dir):
    def on_record(record, config):
        written.append(record.trial)
        if len(written) == 2:
            os._exit(9)  # record on disk, Optuna not yet told
    return on_record

study._wandb_logger = logger
config, runs = load_config(sys.argv[1]), Path(sys.argv[2])
study.run_worker(config, config.storage_url(runs), runs_dir=runs)
"""


@pytest.mark.parametrize("storage", ["sqlite", "journal"])
def test_a_worker_killed_between_record_and_tell_is_not_run_twice(tmp_path, storage):
    """The record is the result: the resumed study finishes that trial from it."""
    extra = {"storage": f"journal://{tmp_path / 'late.journal'}"} if storage == "journal" else {}
    path = write_study(tmp_path, name="late", n_trials=4, **extra)
    runs = tmp_path / "runs"
    env = {"HARNESS_HEARTBEAT_SECONDS": "1"}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_RECORD, str(path), str(runs)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == 9, killed.stderr
    records_file = runs / "late" / "trials.jsonl"
    before = read_records(records_file)
    config = load_config(path)
    storage_url = config.storage_url(runs)
    (second,) = [t for t in load_or_create_study(config, storage_url).trials if t.number == 1]
    assert second.state.name == "RUNNING" and [r["trial"] for r in before] == [0, 1]
    if storage == "sqlite":
        time.sleep(4)  # past the heartbeat grace period
    result = harness(*run_args(path, tmp_path), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    after = read_records(records_file)
    assert sorted(r["trial"] for r in after) == [0, 1, 2, 3]  # trial 1 not run again
    study = load_or_create_study(config, storage_url)
    settled = study.trials[1]
    assert settled.state.name == before[1]["state"] == "COMPLETE"
    assert settled.value == pytest.approx(before[1]["objective"], rel=0, abs=0)
    assert settled.user_attrs["settled_from_record"] is True
    assert not [t for t in study.trials if retried_trial_number(t) is not None]
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "colour: unknown key"),
        ({"n_trials": "many"}, "n_trials: Input should be a valid integer"),
        ({"task": "tracr-revers"}, "unknown task 'tracr-revers'.*did you mean 'tracr-reverse'"),
        ({"algorithm": "spp"}, "unknown algorithm 'spp'.*did you mean 'sp'"),
        ({"ground_truth": "resampel"}, "no ground truth 'resampel'.*did you mean 'resample'"),
        ({"params": {"lr": 0.1}}, "takes no parameter 'lr'"),
        (
            {"search_space": {"epochs": {"type": "int", "low": 5, "high": 2}}},
            "low \\(5\\) is greater than high \\(2\\)",
        ),
        ({"storage": "postgresql://user:hunter2@127.0.0.1:1/none"}, "cannot open storage"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_touches_nothing(tmp_path, change, message):
    import re

    path = write_study(tmp_path, **change)
    result = harness(
        "run", str(path), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path, timeout=120
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), lines
    assert "hunter2" not in result.stderr + result.stdout
    assert not (tmp_path / "runs" / "tiny" / "trials.jsonl").exists()


def test_malformed_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    result = harness("validate", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert "malformed YAML" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_set_overrides_and_validate(tmp_path):
    path = write_study(tmp_path)
    config = load_config(path, {"sampler.type": "random", "params.epochs": 2, "search_space": {}})
    assert config.sampler.type == "random" and config.params["epochs"] == 2
    result = harness("validate", str(path), "--set", "n_trials=7", cwd=tmp_path)
    assert result.returncode == 0 and "7 trials" in result.stdout


def test_status_of_a_study_never_run_is_one_line_and_creates_nothing(tmp_path):
    path = write_study(tmp_path, name="unrun")
    runs = tmp_path / "runs"
    result = harness("status", str(path), "--runs-dir", str(runs), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"harness: error: no study 'unrun' yet: {runs / 'unrun' / 'study.db'} does not exist"
    ]
    assert not runs.exists()
    other = write_study(tmp_path, name="other", storage=f"sqlite:///{tmp_path / 'shared.db'}")
    assert harness(*run_args(other, tmp_path), "--n-trials", "1", cwd=tmp_path).returncode == 0
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    result = harness("status", str(path), "--storage", url, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"harness: error: no study 'unrun' in {url} yet"


@pytest.mark.parametrize("value", ["-5", "0", "nan"])
def test_run_refuses_a_timeout_that_is_not_positive(tmp_path, value):
    result = harness(*run_args(write_study(tmp_path), tmp_path), "--timeout", value, cwd=tmp_path)
    assert result.returncode == 2
    message = f"harness: error: --timeout must be > 0 seconds, got {float(value)}"
    assert result.stderr.strip() == message
    assert not (tmp_path / "runs").exists()


def test_passwords_are_masked():
    assert mask_password("postgresql://u:p%40ss@h/db") == "postgresql://u:***@h/db"


def test_shipped_studies_validate():
    for path in sorted((ROOT / "studies").glob("*.yaml")):
        result = harness("validate", str(path), cwd=ROOT)
        assert result.returncode == 0, (path, result.stderr)


def test_two_processes_on_one_machine(tmp_path):
    config = load_config(write_study(tmp_path, name="jobs", n_trials=4, enqueue=[]))
    outcome = run_study(config, jobs=2, runs_dir=tmp_path / "runs", progress=False)
    numbers = [r["trial"] for r in read_records(outcome.records_path)]
    assert outcome.n_finished == 4 and len(numbers) == len(set(numbers)) == 4


def test_trials_are_logged_to_wandb_offline_and_read_back(tmp_path):
    from harness.study.wandb_mirror import find_offline_runs, read_offline_run

    config = load_config(
        write_study(tmp_path, name="tracked", n_trials=2, wandb={"mode": "offline"})
    )
    outcome = run_study(config, runs_dir=tmp_path / "runs", progress=False)
    records = {r["trial"]: r for r in read_records(outcome.records_path)}
    runs = [read_offline_run(p) for p in find_offline_runs(tmp_path / "runs" / "wandb")]
    trials = [r for r in runs if r["run"]["job_type"] == "trial"]
    assert len(trials) == 2 and {r["run"]["group"] for r in runs} == {"tracked"}
    for run in trials:
        record = records[run["config"]["trial"]]
        logged = run["summary"]["auc/resample/score-trapezoid"]
        assert logged == record["auc"]["resample"]["score-trapezoid"]
        assert len(run["history"]) >= len(record["history"]["epoch_loss"])
    assert any(r["run"]["job_type"] == "study-summary" for r in runs)


def test_multi_objective_pareto_front(tmp_path):
    config = load_config(
        write_study(
            tmp_path,
            name="pareto",
            n_trials=3,
            ground_truth=None,
            objective={"metric": "faithfulness", "k": 3, "multi": True},
            pruner={"type": "none"},
        )
    )
    outcome = run_study(config, runs_dir=tmp_path / "runs", progress=False)
    records = read_records(outcome.records_path)
    assert all(len(r["objective"]) == 2 for r in records)
    assert all(r["objective"][1] == r["circuit_size"] for r in records)
    study = load_or_create_study(config, config.storage_url(tmp_path / "runs"))
    assert study.best_trials and [d.name for d in study.directions] == ["MINIMIZE", "MINIMIZE"]


@pytest.mark.parametrize(
    ("sampler", "pruner", "space"),
    [
        (
            "grid",
            "none",
            {
                "epochs": {"type": "categorical", "choices": [2, 3]},
                "regularize_lambda": {"type": "categorical", "choices": [0.1, 10.0]},
            },
        ),
        ("cmaes", "hyperband", SMALL_STUDY["search_space"]),
        ("random", "median", SMALL_STUDY["search_space"]),
    ],
)
def test_samplers_and_pruners(tmp_path, sampler, pruner, space):
    config = load_config(
        write_study(
            tmp_path,
            name=f"s-{sampler}",
            n_trials=4,
            enqueue=[],
            sampler={"type": sampler},
            pruner={"type": pruner},
            search_space=space,
        )
    )
    outcome = run_study(config, runs_dir=tmp_path / "runs", progress=False)
    records = read_records(outcome.records_path)
    assert outcome.n_finished == 4 and all(r["state"] != "FAIL" for r in records)
    if sampler == "grid":
        seen = {(r["params"]["epochs"], r["params"]["regularize_lambda"]) for r in records}
        assert len(seen) == 4  # every grid point once


def test_journal_storage(tmp_path):
    config = load_config(write_study(tmp_path, name="journaled", n_trials=2))
    url = f"journal://{tmp_path / 'study.journal'}"
    outcome = run_study(config, storage_url=url, runs_dir=tmp_path / "runs", progress=False)
    assert outcome.n_finished == 2 and (tmp_path / "study.journal").stat().st_size > 0


def test_ctrl_c_ends_cleanly_and_the_interrupted_trial_is_rerun(tmp_path):
    path = write_study(
        tmp_path,
        name="interrupted",
        n_trials=3,
        **long_trials(low=40),
    )
    runs = tmp_path / "runs"
    args = run_args(path, tmp_path)
    proc = start_run(args, tmp_path)
    records_file = runs / "interrupted" / "trials.jsonl"
    wait_for_records(records_file, 1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1].startswith("harness: interrupted")
    kept = read_records(records_file)
    result = harness(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    after = read_records(records_file)
    assert after[: len(kept)] == kept
    assert len(after) == 3 and len({r["trial"] for r in after}) == 3


@pytest.mark.slow  # 53 s
def test_ctrl_c_stops_worker_processes_at_a_safe_point_and_marks_their_trials(tmp_path):
    """A terminal's Ctrl-C reaches the whole process group; the parent relays it once."""
    path = write_study(
        tmp_path,
        name="interrupted-jobs",
        n_trials=6,
        enqueue=[],
        search_space=long_trials(low=40)["search_space"],
    )
    runs = tmp_path / "runs"
    args = [*run_args(path, tmp_path), "--jobs", "2"]
    proc = start_run(args, tmp_path, new_session=True)
    records_file = runs / "interrupted-jobs" / "trials.jsonl"
    wait_for_records(records_file, 1)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "harness: interrupted"
    assert "Traceback" not in err and "leaked" not in err
    config = load_config(path)
    study = load_or_create_study(config, config.storage_url(runs))
    states = [t.state.name for t in study.trials]
    assert "RUNNING" not in states
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert failed and all(t.user_attrs.get("interrupted") is True for t in failed)
    result = harness(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted({r["trial"] for r in read_records(records_file)}) == sorted(
        r["trial"] for r in read_records(records_file)
    )
    assert len(read_records(records_file)) == 6


def test_batched_trials_in_a_study(tmp_path):
    config = load_config(write_study(tmp_path, name="batched", n_trials=5))
    outcome = run_study(config, runs_dir=tmp_path / "runs", progress=False, batch_trials=3)
    records = read_records(outcome.records_path)
    numbers = [r["trial"] for r in records]
    assert outcome.n_finished == 5 and len(set(numbers)) == 5
    assert records[0]["params"]["learning_rate"] == 0.1  # the enqueued defaults still first
    assert all(r["state"] in ("COMPLETE", "PRUNED") for r in records)


def test_a_batch_killed_mid_pass_is_retried_on_resume(tmp_path):
    """Each trial of a batch beats its own heartbeat: killed, they go stale and are retried
    (without heartbeats they stayed RUNNING and a resumed worker waited for them for ever)."""
    path = write_study(
        tmp_path,
        name="killed-batch",
        n_trials=4,
        **long_trials(low=30),
    )
    runs = tmp_path / "runs"
    env = {"HARNESS_HEARTBEAT_SECONDS": "1"}
    args = [*run_args(path, tmp_path), "--batch-trials", "2"]
    proc = start_run(args, tmp_path, env)
    records_file = runs / "killed-batch" / "trials.jsonl"
    wait_for_records(records_file, 2)
    time.sleep(1.5)  # the second batch is training
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = read_records(records_file)
    config = load_config(path)
    storage_url = config.storage_url(runs)
    cut = [t.number for t in load_or_create_study(config, storage_url).trials if t.number >= 2]
    time.sleep(4)  # past the heartbeat grace period
    result = harness(*args, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    after = read_records(records_file)
    assert after[: len(before)] == before
    assert len(after) == 4 and len({r["trial"] for r in after}) == 4
    study = load_or_create_study(config, storage_url)
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 4
    recorded = {r["trial"] for r in before}
    for number in cut:
        if number not in recorded:
            assert study.trials[number].state.name == "FAIL"
            assert number in {retried_trial_number(t) for t in study.trials}


def test_batched_trials_refuse_shared_parameters_in_the_search(tmp_path):
    path = write_study(
        tmp_path,
        search_space={"mask_fn": {"type": "categorical", "choices": ["sigmoid", "hard_concrete"]}},
        enqueue=[],
    )
    result = harness(
        "run", str(path), "--batch-trials", "4", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path
    )
    assert result.returncode == 2 and "cannot search 'mask_fn'" in result.stderr
