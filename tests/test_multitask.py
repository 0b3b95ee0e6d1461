"""Studies over several tasks: one setting per trial, run on every task, aggregated."""

from __future__ import annotations

import pytest

from harness.configs.study import load_config
from harness.evaluation.run_one import run_algorithm
from harness.records.store import read_records
from harness.study.driver import run_study
from harness.tasks import load
from tests.test_study import harness, run_args, write_study

TWO = ["tracr-reverse", "tracr-proportion"]


def two_task_study(tmp_path, **changes):
    settings = {
        "name": "two",
        "task": TWO,
        "ground_truth": "resample",
        "task_options": {"device": "cpu", "n_examples": 16},
        "n_trials": 2,
        **changes,
    }
    return write_study(tmp_path, **settings)


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("multitask")
    config = load_config(two_task_study(tmp_path, heldout={"seeds": 1}))
    run_study(config, runs_dir=tmp_path / "runs", progress=False)
    runs = tmp_path / "runs" / "two"
    return config, read_records(runs / "trials.jsonl"), read_records(runs / "heldout.jsonl")


def test_each_trial_runs_on_every_task_and_is_their_mean(two):
    _, records, _ = two
    assert [r["state"] for r in records] == ["COMPLETE", "COMPLETE"]
    for record in records:
        assert record["task"] == "tracr-reverse+tracr-proportion"
        assert set(record["per_task"]) == set(TWO)
        per_task = [record["per_task"][t]["auc"]["resample"]["score-trapezoid"] for t in TWO]
        assert record["auc"]["resample"]["score-trapezoid"] == pytest.approx(sum(per_task) / 2)
        assert record["objective"] == pytest.approx(sum(per_task) / 2)
        assert set(record["auc"]) == {"resample", "acdc-zero"}  # its alias zero: not twice


def test_per_task_numbers_equal_separate_runs(two):
    """Recomputed one task at a time, outside the study."""
    config, records, _ = two
    record = records[1]
    for name in TWO:
        task = load(name, **config.task_options)
        run = run_algorithm(task, "sp", record["params"], record["seed"], "resample")
        expected = run.rocs["resample"].auc
        assert record["per_task"][name]["auc"]["resample"]["score-trapezoid"] == pytest.approx(
            expected, abs=1e-12
        )


def test_heldout_runs_cover_every_task(two):
    _, records, heldout = two
    (line,) = heldout
    best = max(records, key=lambda r: r["objective"])
    assert line["trial"] == best["trial"] and set(line["per_task"]) == set(TWO)
    per_task = [line["per_task"][t]["objective"] for t in TWO]
    assert line["objective"] == pytest.approx(sum(per_task) / 2)


def test_worst_task_aggregate(tmp_path):
    config = load_config(
        two_task_study(tmp_path, name="worst", aggregate="worst", n_trials=1, heldout={"seeds": 0})
    )
    run_study(config, runs_dir=tmp_path / "runs", progress=False)
    (record,) = read_records(tmp_path / "runs" / "worst" / "trials.jsonl")
    per_task = [record["per_task"][t]["objective"] for t in TWO]
    assert record["objective"] == min(per_task)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ground_truth": None}, "needs a ground_truth that every task has"),
        ({"ground_truth": "acdc"}, "task 'tracr-reverse' has no ground truth 'acdc'"),
        ({"task": ["tracr-reverse", "tracr-revers"]}, "did you mean 'tracr-reverse'"),
        ({"aggregate": "median"}, "aggregate"),
    ],
)
def test_bad_multitask_studies_are_one_line(tmp_path, changes, message):
    path = two_task_study(tmp_path, **changes)
    result = harness("validate", str(path), cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert message in line, line
    assert not (tmp_path / "runs").exists()


def test_a_multitask_study_runs_from_the_command_line(tmp_path):
    path = two_task_study(tmp_path, name="cli", n_trials=1, heldout={"seeds": 0})
    result = harness(*run_args(path, tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "study cli: 1 finished trials" in result.stdout


def test_min_size_objective_is_the_smallest_faithful_fraction(tmp_path):
    """The ground-truth-free objective 'smallest circuit that reaches a faithfulness target',
    recomputed here from the record's own MIB curve (absolute ranking)."""
    from harness.evaluation.mib import MIB_FRACTIONS

    path = write_study(
        tmp_path,
        name="small",
        n_trials=2,
        heldout={"seeds": 0},
        objective={"metric": "min_size", "target": 0.8},
        task_options={"device": "cpu", "n_examples": 16},
    )
    run_study(load_config(path), runs_dir=tmp_path / "runs", progress=False)
    for record in read_records(tmp_path / "runs" / "small" / "trials.jsonl"):
        curve = record["mib"]["cmd_faithfulness"]
        reached = [p for p, f in zip(MIB_FRACTIONS, curve, strict=True) if f >= 0.8]
        assert record["objective"] == (reached[0] if reached else 1.0)
