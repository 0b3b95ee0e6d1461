"""Cross-task transfer: search on train tasks, score on disjoint test tasks."""

from __future__ import annotations

import pytest
import yaml

from harness.benchmark.transfer import search_config, splits
from harness.configs.study import load_config
from harness.configs.transfer import load_transfer_config
from harness.evaluation.run_one import run_algorithm
from harness.records.store import read_records
from harness.tasks import load
from tests.test_study import harness

pytestmark = pytest.mark.slow  # two searches and 8 scored runs in subprocesses

TRANSFER = {
    "version": 1,
    "kind": "transfer",
    "name": "xfer",
    "train_tasks": ["tracr-reverse"],
    "test_tasks": ["tracr-proportion"],
    "task_options": {"device": "cpu", "n_examples": 16},
    "params": {"tree_optimisation": True},
    "search_space": {
        "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
        "epochs": {"type": "int", "low": 2, "high": 3},
    },
    "n_trials": 2,
    "sampler": {"type": "random"},
    "seeds": [0, 1],
    "baselines": {"random": {}},
    "bootstrap_samples": 200,
}


def write(tmp_path, **changes):
    path = tmp_path / "xfer.yaml"
    path.write_text(yaml.safe_dump({**TRANSFER, **changes}))
    return path


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("transfer")
    path = write(tmp_path)
    args = ["transfer", str(path), "--runs-dir", str(tmp_path / "runs"), "--no-progress"]
    result = harness(*args, "--report-dir", str(tmp_path / "reports"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return {
        "tmp": tmp_path,
        "path": path,
        "args": args,
        "stdout": result.stdout,
        "lines": read_records(tmp_path / "runs" / "xfer" / "transfer.jsonl"),
        "search": read_records(tmp_path / "runs" / "xfer-search" / "trials.jsonl"),
    }


def test_every_method_and_seed_is_scored_on_the_test_task(ran):
    lines = ran["lines"]
    assert sorted((r["method"], r["seed"]) for r in lines) == [
        ("random", 0),
        ("random", 1),
        ("sp-default", 0),
        ("sp-default", 1),
        ("sp-transfer", 0),
        ("sp-transfer", 1),
    ]
    assert all(r["state"] == "COMPLETE" and r["task"] == "tracr-proportion" for r in lines)
    assert {r["task"] for r in ran["search"]} == {"tracr-reverse"}  # never the test task


def test_transferred_settings_are_the_train_search_best(ran):
    config = load_transfer_config(ran["path"])
    best = min(ran["search"], key=lambda r: (r["objective"], r["trial"]))  # faithfulness: min
    transferred = [r for r in ran["lines"] if r["method"] == "sp-transfer"]
    for line in transferred:
        expected = {**best["params"], "ablation": config.ablation}
        assert line["params"] == expected
    task = load("tracr-proportion", **config.task_options)
    line = transferred[1]
    run = run_algorithm(task, "sp", line["params"], line["seed"])  # recomputed directly
    assert line["auc"]["resample"]["score-trapezoid"] == pytest.approx(
        run.rocs["resample"].auc, abs=1e-12
    )
    default = next(r for r in ran["lines"] if r["method"] == "sp-default")
    assert default["params"] == {"tree_optimisation": True, "ablation": "resample"}


def test_the_table_names_methods_and_a_rerun_adds_nothing(ran):
    for method in ("sp-default", "sp-transfer", "random"):
        assert f"| {method}" in ran["stdout"]
    assert (ran["tmp"] / "reports" / "xfer" / "transfer.md").is_file()
    again = harness(*ran["args"], cwd=ran["tmp"])
    assert again.returncode == 0, again.stderr
    assert len(read_records(ran["tmp"] / "runs" / "xfer" / "transfer.jsonl")) == 6


def test_a_resume_with_other_task_options_is_refused_in_one_line(ran):
    changed = {**TRANSFER, "task_options": {"device": "cpu", "n_examples": 8}}
    path = ran["tmp"] / "xfer-changed.yaml"
    path.write_text(yaml.safe_dump(changed))
    records = (ran["tmp"] / "runs" / "xfer" / "transfer.jsonl").read_bytes()
    result = harness("transfer", str(path), *ran["args"][2:], cwd=ran["tmp"])
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "transfer 'xfer' was run with another config" in line
    assert "--allow-config-change" in line
    assert (ran["tmp"] / "runs" / "xfer" / "transfer.jsonl").read_bytes() == records


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"test_tasks": ["tracr-reverse"]}, "'tracr-reverse' is both a train and a test task"),
        ({"folds": 2, "test_tasks": []}, "2 folds need at least 2 tasks"),
        ({"test_tasks": ["tracr-proportio"]}, "did you mean 'tracr-proportion'"),
        ({"baselines": {"acdc": {"treshold": 1}}}, "takes no parameter 'treshold'"),
        ({"ablation": "bogus"}, "ablation"),
    ],
)
def test_bad_transfers_are_one_line(tmp_path, changes, message):
    result = harness("transfer", str(write(tmp_path, **changes)), cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert message in line, line
    assert not (tmp_path / "runs").exists()


def test_folds_deal_tasks_and_each_search_sees_only_its_train_tasks(tmp_path):
    tasks = ["tracr-reverse", "tracr-proportion"]
    config = load_transfer_config(write(tmp_path, train_tasks=tasks, test_tasks=[], folds=2))
    assert splits(config) == [
        (0, ["tracr-proportion"], ["tracr-reverse"]),
        (1, ["tracr-reverse"], ["tracr-proportion"]),
    ]
    study = search_config(config, "s", ["tracr-reverse", "tracr-proportion"])
    assert study.task_names() == tasks and study.objective.metric == "faithfulness"
    assert load_config  # the search is an ordinary study config
