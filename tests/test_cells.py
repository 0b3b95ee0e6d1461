"""Cells of comparisons and transfers: --jobs, --shard, claims, kinds of places, changed
configs, duplicates. The situations are made for real: processes started together, a
real study before a comparison of its name, a config edited between runs."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.benchmark.cells import Cell, in_shard, parse_shard
from harness.benchmark.compare import compare_cells, comparison_table, run_compare
from harness.configs.compare import load_compare_config
from harness.records.claims import claimed, is_claimed
from harness.records.selection import cell_key
from harness.records.store import read_records
from tests.test_faults import one_line, quick_study, small_filesystem
from tests.test_study import ROOT, harness, run_args, start_run, wait_for_records

FAST = {
    "version": 1,
    "kind": "compare",
    "name": "cells",
    "tasks": ["tracr-count-a", "tracr-hist"],
    "task_options": {"device": "cpu"},
    "ablations": ["resample"],
    "seeds": [0, 1],
    "methods": {"eap": {}, "random": {}},
    "bootstrap_samples": 200,
}


def write(tmp_path: Path, name: str = "cells", **changes) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**FAST, "name": name, **changes}))
    return path


def compare_args(path: Path, tmp_path: Path, *more: str) -> list[str]:
    runs, reports = str(tmp_path / "runs"), str(tmp_path / "reports")
    return [
        *("compare", str(path), "--runs-dir", runs, "--report-dir", reports, "--no-progress"),
        *more,
    ]


def cells_of(records: list[dict]) -> collections.Counter:
    return collections.Counter(cell_key(r) for r in records)


def without_time(record: dict) -> dict:
    drop = {"seconds", "peak_memory_mb", "peak_memory_kind", "git_commit", "versions"}
    return {k: v for k, v in record.items() if k not in drop}


# --- cells, shards and claims -----------------------------------------------------------


def test_shards_split_the_cells_and_stay_put_when_seeds_are_added(tmp_path):
    before = compare_cells(load_compare_config(write(tmp_path)))
    after = compare_cells(load_compare_config(write(tmp_path, seeds=[0, 1, 2, 3])))
    for count in (2, 3):
        shares = [[c.key for c in after if in_shard(c, (i, count))] for i in range(count)]
        assert sorted(k for share in shares for k in share) == sorted(c.key for c in after)
        for cell in before:
            assert [in_shard(cell, (i, count)) for i in range(count)].count(True) == 1
            moved = next(c for c in after if c.key == cell.key)
            assert all(in_shard(cell, (i, count)) == in_shard(moved, (i, count)) for i in (0, 1))
    with pytest.raises(ValueError, match="I/N"):
        parse_shard("0/0")


def test_a_claim_of_a_killed_process_is_free_again(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    assert is_claimed(tmp_path, "cell")
    with claimed(tmp_path, "cell") as mine:
        assert not mine  # a live process holds it
    holder.kill()
    holder.wait()
    with claimed(tmp_path, "cell") as mine:
        assert mine  # the kernel released the dead process's lock


HOLD = """
import sys, time
from pathlib import Path
from harness.records.claims import claimed
with claimed(Path(sys.argv[1]), "cell") as mine:
    print("held" if mine else "not held", flush=True)
    time.sleep(600)
"""


def test_the_table_counts_a_duplicate_record_once(tmp_path):
    config = load_compare_config(write(tmp_path, tasks=["tracr-count-a"], seeds=[0]))
    records = run_compare(config, tmp_path / "runs", progress=False)
    path = tmp_path / "runs" / "cells" / "trials.jsonl"
    with path.open("a") as handle:  # what two writers without claims would leave
        handle.write(json.dumps(records[0]) + "\n")
    assert len(read_records(path)) == len(records) + 1
    table = comparison_table(read_records(path), 200)
    assert set(table["seeds"]) == {1}
    again = run_compare(config, tmp_path / "runs", progress=False)
    assert len(read_records(path)) == len(records) + 1  # nothing ran again
    assert sorted(again, key=lambda r: r["trial"]) == records  # one record a cell


# --- --jobs -----------------------------------------------------------------------------


@pytest.mark.slow  # worker processes import torch
def test_jobs_2_writes_the_records_of_a_serial_run(tmp_path):
    path = write(tmp_path, methods={"eap": {}, "sp": {"params": {"epochs": 3}}})
    config = load_compare_config(path)
    serial = run_compare(config, tmp_path / "serial", progress=False)
    parallel = run_compare(config, tmp_path / "parallel", progress=False, jobs=2)
    assert len(serial) == len(parallel) == 8
    by_cell = {cell_key(r): without_time(r) for r in parallel}
    assert [without_time(r) for r in serial] == [by_cell[cell_key(r)] for r in serial]


@pytest.mark.slow
def test_a_killed_jobs_worker_costs_only_its_cells(tmp_path):
    path = write(tmp_path, tasks=["tracr-count-a"], seeds=[0, 1, 2], methods=SLOW_SP)
    proc = start_run(compare_args(path, tmp_path, "--jobs", "2"), tmp_path)
    records_file = tmp_path / "runs" / "cells" / "trials.jsonl"
    wait_for_records(records_file, 1)
    workers = [p for p in _children(proc.pid) if "popen_loky" in _cmdline(p)]
    os.kill(workers[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "a worker process died" in one_line(err)
    assert set(cells_of(read_records(records_file)).values()) == {1}
    assert len(read_records(records_file)) == 3


@pytest.mark.slow
def test_ctrl_c_with_jobs_is_one_line_and_resume_runs_only_the_rest(tmp_path):
    path = write(tmp_path, tasks=["tracr-count-a"], seeds=[0, 1, 2], methods=SLOW_SP)
    proc = start_run(compare_args(path, tmp_path, "--jobs", "2"), tmp_path, new_session=True)
    records_file = tmp_path / "runs" / "cells" / "trials.jsonl"
    wait_for_records(records_file, 1)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert one_line(err) == "harness: interrupted"
    kept = read_records(records_file)
    assert 1 <= len(kept) < 3
    result = harness(*compare_args(path, tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    after = read_records(records_file)
    assert after[: len(kept)] == kept and len(after) == 3  # only the missing cells ran
    assert set(cells_of(after).values()) == {1}


SLOW_SP = {"sp": {"params": {"epochs": 400, "tree_optimisation": True}}}


@pytest.mark.slow
def test_a_full_disk_stops_jobs_workers_in_one_line(tmp_path):
    path = write(tmp_path, tasks=["tracr-count-a"], seeds=[0, 1, 2, 3])
    with small_filesystem(tmp_path / "runs", "64k"):
        filler = tmp_path / "runs" / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1k", "count=56"], check=True)
        result = harness(*compare_args(path, tmp_path, "--jobs", "2"), cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        line = one_line(result.stderr)
        assert line.startswith("harness: error: cannot") and "No space left" in line
        kept = read_records(tmp_path / "runs" / "cells" / "trials.jsonl")
        filler.unlink()
        again = harness(*compare_args(path, tmp_path), cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        after = read_records(tmp_path / "runs" / "cells" / "trials.jsonl")
        assert after[: len(kept)] == kept and set(cells_of(after).values()) == {1}


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# --- processes at once ------------------------------------------------------------------


def _together(commands: list[list[str]], tmp_path: Path) -> list[subprocess.CompletedProcess]:
    procs = [start_run(args, tmp_path) for args in commands]
    results = []
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, "", err))
    return results


@pytest.mark.slow  # three processes import torch at once
def test_three_shards_at_once_run_exactly_the_cells_of_a_serial_run(tmp_path):
    path = write(tmp_path, seeds=[0, 1, 2])
    shards = [compare_args(path, tmp_path, "--shard", f"{i}/3") for i in range(3)]
    shards.append(compare_args(path, tmp_path, "--shard", "1/3"))  # an overlapping one
    for result in _together(shards, tmp_path):
        assert result.returncode == 0, result.stderr
    records = read_records(tmp_path / "runs" / "cells" / "trials.jsonl")
    config = load_compare_config(path)
    serial = run_compare(config, tmp_path / "serial", progress=False)
    assert cells_of(records) == cells_of(serial)  # the same cells, each once
    assert sorted(r["trial"] for r in records) == list(range(12))


@pytest.mark.slow
def test_two_comparisons_at_once_run_each_cell_once(tmp_path):
    path = write(tmp_path, seeds=[0, 1, 2])
    for result in _together([compare_args(path, tmp_path)] * 2, tmp_path):
        assert result.returncode == 0, result.stderr
    records = read_records(tmp_path / "runs" / "cells" / "trials.jsonl")
    assert len(records) == 12 and set(cells_of(records).values()) == {1}
    table = (tmp_path / "reports" / "cells" / "comparison.csv").read_text()
    assert ",3," in table and ",6," not in table  # three seeds, not six


# --- places and configs -----------------------------------------------------------------


@pytest.mark.slow  # a real study first
def test_a_comparison_never_takes_a_study_s_place_nor_the_reverse(tmp_path):
    study = quick_study(tmp_path, "shared")
    assert harness(*run_args(study, tmp_path), cwd=tmp_path).returncode == 0
    study_records = (tmp_path / "runs" / "shared" / "trials.jsonl").read_bytes()
    result = harness(*compare_args(write(tmp_path, "shared"), tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "'shared' is taken by a study" in one_line(result.stderr)
    assert (tmp_path / "runs" / "shared" / "trials.jsonl").read_bytes() == study_records

    other = write(tmp_path, "mine", tasks=["tracr-count-a"], seeds=[0])
    assert harness(*compare_args(other, tmp_path), cwd=tmp_path).returncode == 0
    result = harness(*run_args(quick_study(tmp_path, "mine"), tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "'mine' is taken by a comparison" in one_line(result.stderr)


@pytest.mark.slow  # four commands in subprocesses
def test_a_changed_config_is_refused_unless_allowed_and_then_runs_again(tmp_path):
    base = {"tasks": ["tracr-count-a"], "seeds": [0]}
    path = write(tmp_path, **base, methods={"eap": {}, "acdc": {"params": {"thresholds": [0.1]}}})
    assert harness(*compare_args(path, tmp_path), cwd=tmp_path).returncode == 0
    records_file = tmp_path / "runs" / "cells" / "trials.jsonl"
    first = read_records(records_file)
    write(tmp_path, **base, methods={"eap": {}, "acdc": {"params": {"thresholds": [0.5]}}})
    result = harness(*compare_args(path, tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "acdc on tracr-count-a (resample, seed 0)" in one_line(result.stderr)
    assert read_records(records_file) == first  # nothing ran
    result = harness(*compare_args(path, tmp_path, "--allow-config-change"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    after = read_records(records_file)
    assert len(after) == 3 and after[2]["params"]["thresholds"] == [0.5]  # acdc only, again
    assert "| acdc | 1 |" in result.stdout  # the new run replaces the old one
    methods = {"eap": {}, "acdc": {"params": {"thresholds": [0.5]}}}
    added = write(tmp_path, **{**base, "seeds": [0, 1]}, methods=methods)
    assert harness(*compare_args(added, tmp_path), cwd=tmp_path).returncode == 0  # new cells only


def test_bad_cell_options_are_one_line(tmp_path):
    path = write(tmp_path)
    for more, text in (
        (("--shard", "3/3"), "--shard I/N needs 0 <= I < N"),
        (("--shard", "x"), "--shard I/N"),
        (("--jobs", "0"), "--jobs must be >= 1"),
    ):
        result = harness(*compare_args(path, tmp_path, *more), cwd=tmp_path)
        assert result.returncode == 2 and text in one_line(result.stderr)
    assert not (tmp_path / "runs").exists()


def test_cells_name_themselves():
    cell = Cell(("sp", "t", "zero", 0, 1), 0, {})
    assert cell.describe() == "sp on t (zero, seed 0, fold 1)"
    assert cell.name != Cell(("sp", "t", "zero", 1, 1), 0, {}).name


def test_a_cell_another_process_holds_is_waited_for_then_run_here(tmp_path):
    """A cell claimed elsewhere is waited for, then taken if its holder left no record."""
    path = write(tmp_path, tasks=["tracr-count-a"], seeds=[0], methods={"random": {}})
    config = load_compare_config(path)
    cell = compare_cells(config)[0]
    claims = tmp_path / "runs" / "cells" / "claims"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD.replace('"cell"', repr(cell.name)), str(claims)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    time.sleep(0.1)
    subprocess.Popen(["sh", "-c", f"sleep 3; kill -9 {holder.pid}"])
    started = time.monotonic()
    records = run_compare(config, tmp_path / "runs", progress=False)
    holder.wait()
    assert time.monotonic() - started >= 2.5  # it waited for the holder
    assert len(records) == 1 and records[0]["state"] == "COMPLETE"
