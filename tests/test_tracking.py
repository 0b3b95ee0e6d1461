"""W&B mirrors of trial records: logged offline, read back from the run files."""

from __future__ import annotations

import json
import os
import shutil
import sys
import warnings
from dataclasses import asdict

import pytest

from harness.configs.study import StudyConfig
from harness.records.schema import TrialRecord
from harness.study.wandb_mirror import (
    find_offline_runs,
    log_study_summary,
    log_trial,
    read_offline_run,
)

pytest.importorskip("wandb")

BIG = "x" * 70_000  # a config value spanning several 32 KiB blocks (FIRST/MIDDLE/LAST)


def make_config(mode: str = "offline") -> StudyConfig:
    data = {"name": "s", "task": "tracr-reverse", "wandb": {"mode": mode}}
    return StudyConfig.model_validate(data)


def complete_record() -> TrialRecord:
    return TrialRecord(
        study="s",
        trial=3,
        state="COMPLETE",
        algorithm="sp",
        task="tracr-reverse",
        ground_truth="canonical",
        params={"learning_rate": 0.05, "epochs": 3, "note": BIG},
        seed=11,
        objective=0.875,
        auc={
            "canonical": {"score-trapezoid": 0.875, "sweep-pessimistic": 0.75},
            "other": {"score-trapezoid": 0.5},
        },
        roc={
            "canonical": {"fpr": [0.0, 0.25, 1.0], "tpr": [0.0, 0.9, 1.0]},
            "other": {"fpr": [0.0, 1.0], "tpr": [0.0, 1.0]},
        },
        faithfulness={"kl_div": 0.125, "n_edges": 10, "ablation": "resample"},
        circuit_size=7,
        n_edges_total=40,
        history={"epoch_loss": [3.0, 2.0, 1.5], "epoch_faithfulness": [0.5, 0.25, 0.125]},
        seconds=1.25,
        config_hash="abc123",
    )


def failed_record() -> TrialRecord:
    return TrialRecord(
        study="s",
        trial=4,
        state="FAIL",
        algorithm="sp",
        task="tracr-reverse",
        ground_truth=None,
        params={"learning_rate": 2.0},
        seed=12,
        fail_reason="RuntimeError: loss is NaN at epoch 0",
        config_hash="abc123",
    )


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """Two trials and a study summary logged offline once; env as the test suite has it."""
    root = tmp_path_factory.mktemp("wandb")
    config = make_config()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "disabled")  # the suite's default: the config's mode wins
        mp.setenv("WANDB_DIR", str(root / "elsewhere"))
        mp.setenv("WANDB_SILENT", "true")
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            ids = {
                "complete": log_trial(complete_record(), config, root),
                "fail": log_trial(failed_record(), config, root),
                "summary": log_study_summary(
                    config, [asdict(complete_record()), asdict(failed_record())], root
                ),
            }
        env_after = os.environ["WANDB_MODE"]
    runs = {}
    for run_dir in find_offline_runs(root):
        data = read_offline_run(run_dir)
        runs[data["run"]["id"]] = (run_dir, data)
    return {"ids": ids, "runs": runs, "root": root, "env_after": env_after}


def test_every_call_makes_one_offline_run(logged):
    assert all(logged["ids"].values())
    assert set(logged["runs"]) == set(logged["ids"].values())
    assert [data["exit_code"] for _, data in logged["runs"].values()] == [0, 0, 0]
    assert logged["env_after"] == "disabled"  # the environment is restored
    assert not (logged["root"] / "elsewhere").exists()


def test_complete_trial_round_trip(logged):
    record = complete_record()
    run_dir, data = logged["runs"][logged["ids"]["complete"]]
    assert data["run"] | {"id": None} == {
        "id": None,
        "group": "s",
        "job_type": "trial",
        "tags": ["sp", "tracr-reverse", "canonical", "COMPLETE"],
        "name": "s-trial-3",
        "project": "circuit-harness",
    }
    assert data["config"] == {**record.params, "seed": 11, "trial": 3, "config_hash": "abc123"}
    summary = data["summary"]
    for gt, by_convention in record.auc.items():
        for convention, value in by_convention.items():
            assert summary[f"auc/{gt}/{convention}"] == value
    assert summary["faithfulness/kl_div"] == 0.125
    assert summary["faithfulness/ablation"] == "resample"
    assert summary["state"] == "COMPLETE"
    assert summary["objective"] == 0.875
    assert (summary["circuit_size"], summary["n_edges_total"]) == (7, 40)
    assert summary["fail_reason"] is None
    epochs = [row for row in data["history"] if "epoch/loss" in row]
    assert [row["_step"] for row in epochs] == [0, 1, 2]
    assert [row["epoch/loss"] for row in epochs] == record.history["epoch_loss"]
    assert [row["epoch/faithfulness"] for row in epochs] == record.history["epoch_faithfulness"]
    for gt in record.roc:
        media = summary[f"roc/{gt}"]
        assert media["_type"] == "plotly-file"
        figure = json.loads((run_dir / "files" / media["path"]).read_text())
        assert figure["data"][0]["x"] == record.roc[gt]["fpr"]


def test_failed_trial_round_trip(logged):
    _, data = logged["runs"][logged["ids"]["fail"]]
    assert data["run"]["tags"] == ["sp", "tracr-reverse", "FAIL"]
    assert data["run"]["name"] == "s-trial-4"
    assert data["summary"]["state"] == "FAIL"
    assert data["summary"]["fail_reason"] == "RuntimeError: loss is NaN at epoch 0"
    assert data["summary"]["objective"] is None
    assert not [row for row in data["history"] if "epoch/loss" in row]
    assert not [key for key in data["summary"] if key.startswith("roc/")]


def test_study_summary_table(logged):
    run_dir, data = logged["runs"][logged["ids"]["summary"]]
    assert data["run"]["job_type"] == "study-summary"
    assert data["run"]["group"] == "s"
    assert (data["summary"]["best/trial"], data["summary"]["best/objective"]) == (3, 0.875)
    table = data["summary"]["trials"]
    assert table["_type"] == "table-file"
    content = json.loads((run_dir / "files" / table["path"]).read_text())
    rows = [dict(zip(content["columns"], row, strict=True)) for row in content["data"]]
    assert [(r["number"], r["state"]) for r in rows] == [(3, "COMPLETE"), (4, "FAIL")]
    assert rows[0]["auc/canonical"] == 0.875
    assert rows[0]["faithfulness/kl_div"] == 0.125
    assert json.loads(rows[1]["params"]) == {"learning_rate": 2.0}
    assert rows[1]["fail_reason"].startswith("RuntimeError")


def test_torn_run_file_reads_its_prefix(logged, tmp_path):
    run_dir, whole = logged["runs"][logged["ids"]["complete"]]
    (source,) = run_dir.glob("run-*.wandb")
    torn = tmp_path / source.name
    torn.write_bytes(source.read_bytes()[:40_000])  # inside the multi-block run record
    assert read_offline_run(torn)["history"] == []
    assert read_offline_run(torn)["exit_code"] is None
    shutil.copy(source, torn)
    assert read_offline_run(torn)["summary"] == whole["summary"]


def test_disabled_imports_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # any import of wandb would now fail
    config = make_config("disabled")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert log_trial(complete_record(), config, tmp_path / "w") is None
        assert log_study_summary(config, [asdict(complete_record())], tmp_path / "w") is None
    assert list(tmp_path.iterdir()) == []


def test_broken_wandb_only_warns(tmp_path, monkeypatch):
    import wandb

    def refuse(*args, **kwargs):
        raise ConnectionError("no route to host\nsecond line")

    monkeypatch.setattr(wandb, "init", refuse)
    with pytest.warns(RuntimeWarning) as caught:
        assert log_trial(complete_record(), make_config(), tmp_path) is None
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "\n" not in message
    assert "ConnectionError: no route to host" in message


def test_failure_inside_a_run_still_finishes_it(tmp_path, monkeypatch):
    import wandb

    def broken(*args, **kwargs):
        raise ValueError("cannot draw")

    monkeypatch.setattr(wandb, "Plotly", broken)
    with pytest.warns(RuntimeWarning, match="cannot draw"):
        assert log_trial(complete_record(), make_config(), tmp_path) is None
    (run_dir,) = find_offline_runs(tmp_path)
    data = read_offline_run(run_dir)
    assert len([row for row in data["history"] if "epoch/loss" in row]) == 3
    assert data["exit_code"] == 1
    assert wandb.run is None  # finished, not left open
