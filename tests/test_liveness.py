"""Dead workers of journal-file studies: found by their released file locks."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest

from harness.liveness import OWNER_ATTR, claim, reap_dead_trials
from harness.study import open_storage, retried_trial_number

CHILD = """
import os, sys, optuna
from harness.liveness import claim
from harness.study import open_storage
url = sys.argv[1]
study = optuna.load_study(study_name="s", storage=open_storage(url))
trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
claim(trial, url)
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
    assert retry.params == trials[number].params


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
