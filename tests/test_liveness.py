"""Dead workers of journal-file studies: found by their released file locks."""

from __future__ import annotations

import subprocess
import sys
import time

import optuna
import pytest

from harness.study.driver import open_storage
from harness.study.runtime.liveness import (
    OWNER_ATTR,
    claim,
    reap_dead_trials,
    settle_recorded_trials,
)
from harness.study.trials import retried_trial_number

CHILD = """
import os, sys, optuna
from harness.study.runtime.liveness import claim
from harness.study.driver import open_storage
url = sys.argv[1]
study = optuna.load_study(study_name="s", storage=open_storage(url))
trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
claim(trial, url)
trial.set_user_attr("seed", 7)
print(trial.number, flush=True)
os._exit(0) if sys.argv[2] == "die" else sys.stdin.read()
"""


@pytest.fixture
def journal(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    url = f"journal://{tmp_path / 'study.journal'}"
    study = optuna.create_study(study_name="s", storage=open_storage(url))
    return url, study


def test_a_dead_workers_trial_is_failed_and_retried_once(journal):
    url, study = journal
    out = subprocess.run(
        [sys.executable, "-c", CHILD, url, "die"], capture_output=True, text=True, check=True
    )
    number = int(out.stdout)
    study = optuna.load_study(study_name="s", storage=open_storage(url))
    assert study.trials[number].state.name == "RUNNING"
    assert reap_dead_trials(study, url) == 1
    assert reap_dead_trials(study, url) == 0  # never twice
    trials = study.get_trials()
    assert trials[number].state.name == "FAIL"
    (retry,) = [t for t in trials if t.state.name == "WAITING"]
    assert retried_trial_number(retry) == number
    assert retry.system_attrs["fixed_params"] == trials[number].params  # runs as it was
    assert trials[number].user_attrs["fail_reason"].startswith("worker died")


def test_a_live_workers_trial_is_left_alone(journal):
    url, study = journal
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, "live"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        number = int(child.stdout.readline())
        study = optuna.load_study(study_name="s", storage=open_storage(url))
        assert reap_dead_trials(study, url) == 0
        assert study.trials[number].state.name == "RUNNING"
    finally:
        child.communicate("")
    # its worker has exited now (cleanly, lock file removed): the trial is orphaned
    assert reap_dead_trials(study, url) == 1


def test_own_trials_and_other_hosts_are_never_reaped(journal):
    url, study = journal
    mine = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    claim(mine, url)
    elsewhere = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    study._storage.set_trial_system_attr(elsewhere._trial_id, OWNER_ATTR, "other-host:/nope")
    assert reap_dead_trials(study, url) == 0
    assert {t.state.name for t in study.get_trials()} == {"RUNNING"}


def dead_trials(url: str, n: int) -> list[optuna.trial.FrozenTrial]:
    for _ in range(n):
        subprocess.run([sys.executable, "-c", CHILD, url, "die"], check=True, capture_output=True)
    return optuna.load_study(study_name="s", storage=open_storage(url)).get_trials()


def record(trial, **fields) -> dict:
    return {"trial": trial.number, "seed": 7, "params": dict(trial.params), **fields}


def test_a_dead_trial_with_its_record_is_finished_from_it_not_retried(journal):
    url, _ = journal
    complete, failed, nan, other_seed, unrecorded = dead_trials(url, 5)
    records = [
        record(complete, state="COMPLETE", objective=0.75),
        record(failed, state="FAIL", fail_reason="ValueError: bad"),
        record(nan, state="COMPLETE", objective=float("nan")),
        {**record(other_seed, state="COMPLETE", objective=0.5), "seed": 8},  # not this trial
    ]
    study = optuna.load_study(study_name="s", storage=open_storage(url))
    assert settle_recorded_trials(study, url, lambda: records) == 3
    assert settle_recorded_trials(study, url, lambda: records) == 0
    trials = study.get_trials()
    assert trials[complete.number].state.name == "COMPLETE"
    assert trials[complete.number].value == 0.75
    assert trials[failed.number].state.name == "FAIL"
    assert trials[failed.number].user_attrs["fail_reason"] == "ValueError: bad"
    assert trials[nan.number].state.name == "FAIL"
    assert all(trials[t.number].user_attrs["settled_from_record"] for t in (complete, failed, nan))
    assert reap_dead_trials(study, url) == 2  # the other two: failed and retried
    retried = {retried_trial_number(t) for t in study.get_trials()}
    assert retried - {None} == {other_seed.number, unrecorded.number}


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_records_are_read_only_when_a_worker_is_dead(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.set_user_attr("seed", 7)
    storage.record_heartbeat(trial._trial_id)

    def unreadable():
        raise AssertionError("read while every worker is alive")

    assert settle_recorded_trials(study, url, unreadable) == 0
    time.sleep(2.2)  # past the grace period: the heartbeat is stale
    frozen = study.get_trials()[0]
    done = [record(frozen, state="PRUNED")]
    assert settle_recorded_trials(study, url, lambda: done) == 1
    assert study.get_trials()[0].state.name == "PRUNED"
