"""Ctrl-C is held during storage calls and raised between them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

import optuna
import pytest
import yaml

from harness.study.runtime.interrupts import (
    Terminated,
    catching_interrupts,
    check,
    interruptible,
    redelivering_lost_stops,
    uninterruptible,
)

ROOT = Path(__file__).resolve().parents[1]


def ctrl_c() -> None:
    signal.raise_signal(signal.SIGINT)


def test_held_outside_interruptible_blocks_and_raised_at_the_next_safe_point():
    with catching_interrupts():
        ctrl_c()  # held: storage calls may be running here
        with pytest.raises(KeyboardInterrupt):
            check()
        check()  # raised once
        ctrl_c()
        with pytest.raises(KeyboardInterrupt), interruptible():
            pytest.fail("a held Ctrl-C raises on entry")


def test_raised_at_once_inside_interruptible_blocks_and_held_in_uninterruptible_ones():
    reached = []
    with catching_interrupts():
        with pytest.raises(KeyboardInterrupt), interruptible():
            ctrl_c()
            reached.append("after")
        assert reached == []
        with pytest.raises(KeyboardInterrupt), interruptible():
            with uninterruptible():
                ctrl_c()
                reached.append("storage call finished")
            reached.append("after the storage block")
        assert reached == ["storage call finished"]


def test_a_second_ctrl_c_while_one_is_held_raises_at_once():
    with catching_interrupts():
        ctrl_c()
        with pytest.raises(KeyboardInterrupt):
            ctrl_c()
        check()  # nothing held any more


def test_sigterm_takes_ctrl_c_s_path_and_is_told_apart():
    """SIGTERM is held outside interruptible blocks like Ctrl-C and raised as Terminated
    (a KeyboardInterrupt: every Ctrl-C path handles it); a Ctrl-C after it stays plain."""
    before = signal.getsignal(signal.SIGTERM)
    with catching_interrupts():
        signal.raise_signal(signal.SIGTERM)  # held
        with pytest.raises(Terminated):
            check()
        with pytest.raises(Terminated), interruptible():
            signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before
    with catching_interrupts():
        ctrl_c()
        with pytest.raises(KeyboardInterrupt) as stop:
            check()
        assert not isinstance(stop.value, Terminated)


def test_the_previous_handler_comes_back():
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a terminal's state
    signal.signal(signal.SIGINT, signal.default_int_handler)
    before = signal.getsignal(signal.SIGINT)
    with catching_interrupts():
        assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(KeyboardInterrupt):
        ctrl_c()  # Python's default again


class Thing: ...


def stop_in_a_weakref_callback() -> None:
    """A real Ctrl-C whose KeyboardInterrupt is raised inside a weakref callback, where
    Python cannot propagate it (it goes to ``sys.unraisablehook``)."""

    def on_collect(ref) -> None:
        ctrl_c()
        for _ in range(10**5):  # the handler runs, and raises, in here
            pass

    thing = Thing()
    ref = weakref.ref(thing, on_collect)  # noqa: F841 (the callback needs it alive)
    del thing


def spin_until_interrupted(seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass
    pytest.fail("the lost stop was not delivered again")


def test_a_stop_lost_in_a_weakref_callback_is_raised_at_once_in_an_interruptible_block():
    with catching_interrupts(), pytest.raises(KeyboardInterrupt), interruptible():
        stop_in_a_weakref_callback()
        spin_until_interrupted()


def test_a_stop_lost_during_storage_calls_is_held_for_the_next_safe_point():
    with catching_interrupts():
        stop_in_a_weakref_callback()  # depth 0: storage calls may be running
        time.sleep(0.2)  # nothing raises here
        with pytest.raises(KeyboardInterrupt):
            check()


def test_a_stop_lost_outside_a_study_is_sent_again():
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a terminal's state
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with redelivering_lost_stops(), pytest.raises(KeyboardInterrupt):
            stop_in_a_weakref_callback()
            spin_until_interrupted()
    finally:
        signal.signal(signal.SIGINT, previous)


def test_other_lost_exceptions_still_reach_the_previous_hook(monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: seen.append(unraisable))

    def on_collect(ref) -> None:
        raise ValueError("from a callback")

    with redelivering_lost_stops():
        thing = Thing()
        ref = weakref.ref(thing, on_collect)  # noqa: F841
        del thing
    assert [type(u.exc_value) for u in seen] == [ValueError]
    assert sys.unraisablehook is not None and seen


# CPython sets its "unhandled KeyboardInterrupt" flag when one leaves code run by exec of
# a string, even if it is caught later, and a ``python -m`` process then kills itself with
# SIGINT after returning cleanly (seen in CI: "harness: interrupted", exit -2).
CAUGHT_INSIDE_EXEC = """
import sys
from harness.study.runtime.interrupts import forget_unhandled_interrupt
try:
    exec("raise KeyboardInterrupt")
except KeyboardInterrupt:
    if sys.argv[1] == "forget":
        forget_unhandled_interrupt()
    sys.exit(130)
"""


@pytest.mark.parametrize(("how", "code"), [("forget", 130), ("keep", -signal.SIGINT)])
def test_a_stop_caught_after_exec_exits_130_once_forgotten(tmp_path, how, code):
    """``keep`` is the premise: without the helper the exit is -2."""
    (tmp_path / "caught_inside_exec.py").write_text(CAUGHT_INSIDE_EXEC)
    result = subprocess.run(
        [sys.executable, "-m", "caught_inside_exec", how], cwd=tmp_path, timeout=60,
        env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"},
    )  # fmt: skip
    assert result.returncode == code


CTRL_C_IN_A_STORAGE_CALL = """
import signal, sys
from pathlib import Path
from optuna.storages import RDBStorage
import harness.study.driver as study
from harness.configs.study import load_config

original = RDBStorage.set_trial_intermediate_value
calls = []

def interrupted_write(self, trial_id, step, value):
    calls.append(step)
    if len(calls) == 2:
        signal.raise_signal(signal.SIGINT)  # Ctrl-C while the write is under way
    return original(self, trial_id, step, value)

RDBStorage.set_trial_intermediate_value = interrupted_write
config, runs = load_config(sys.argv[1]), Path(sys.argv[2])
try:
    study.run_worker(config, config.storage_url(runs), runs_dir=runs)
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_ctrl_c_during_a_storage_write_lets_the_write_finish_then_stops(tmp_path):
    config = {
        "version": 1,
        "name": "held",
        "task": "tracr-reverse",
        "task_options": {"device": "cpu"},
        "algorithm": "sp",
        "search_space": {"epochs": {"type": "int", "low": 5, "high": 5}},
        "n_trials": 2,
        "wandb": {"mode": "disabled"},
    }
    path = tmp_path / "held.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-c", CTRL_C_IN_A_STORAGE_CALL, str(path), str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 130, result.stderr
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = f"sqlite:///{tmp_path / 'runs' / 'held' / 'study.db'}"
    trial, again = optuna.load_study(study_name="held", storage=storage).trials
    assert sorted(trial.intermediate_values) == [0, 1]  # the interrupted write landed
    assert trial.state.name == "FAIL" and trial.user_attrs["interrupted"] is True
    assert again.state.name == "WAITING"  # it runs again on resume, with the same parameters
    assert again.system_attrs["fixed_params"] == trial.params
    assert not (tmp_path / "runs" / "held" / "trials.jsonl").exists()  # no half result
