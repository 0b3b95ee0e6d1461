"""Reliability, second round (issue 22): each fault or hostile input is made for real (a
password with ``?#`` on a real command line, HTML in a real record, a module file in a real
child's working directory, a FIFO, a symlink) and the harness must refuse it in one line
(exit 2) or keep it harmless."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from harness.study.runtime.guard import ID_FILE, bind_records
from harness.study.runtime.storage_urls import mask_password
from harness.study.wandb_mirror import find_offline_runs
from tests.test_study import ROOT, harness, write_study

# SQLAlchemy takes each of these unencoded in a URL's password
NASTY_PASSWORDS = ["pa?ss#word", "pass word!", "it's\"quoted", "a@b?c#d e'f"]


def test_passwords_with_url_characters_are_masked():
    for password in NASTY_PASSWORDS:
        url = f"postgresql://bob:{password}@db:5432/optuna?sslmode=require"
        assert mask_password(url) == "postgresql://bob:***@db:5432/optuna?sslmode=require"
        quoted = f"cannot open storage {url!r}: refused"
        assert password not in mask_password(quoted)
        query = f"postgresql://bob@db/optuna?password={password}&sslmode=require"
        assert mask_password(query) == "postgresql://bob@db/optuna?password=***&sslmode=require"


def test_run_and_status_never_print_a_password_with_url_characters(tmp_path: Path):
    path = write_study(tmp_path)
    password = "pa?ss#wo'rd x"
    url = f"postgresql://bob:{password}@127.0.0.1:1/optuna?password={password}"
    for command in (["run", str(path), "--no-progress"], ["status", str(path)]):
        result = harness(*command, "--storage", url, "--runs-dir", "runs", cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "cannot open storage 'postgresql://bob:***@127.0.0.1:1/optuna?" in result.stderr
        assert "pa?ss" not in result.stdout + result.stderr


def test_records_id_keeps_no_password_with_url_characters(tmp_path: Path):
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(study_name="s", storage=storage)
    url = "postgresql://bob:pa?ss#wo'rd x@db/optuna"
    bind_records(study, tmp_path / "trials.jsonl", mask_password(url))
    stored = json.loads((tmp_path / ID_FILE).read_text())
    assert stored["storage"] == "postgresql://bob:***@db/optuna"


def hostile_record(trial: int, state: str) -> dict:
    """A study's record as the harness writes it, with HTML in every text a report shows:
    the task, a parameter's name and value, and (failed) the reason."""
    complete = state == "COMPLETE"
    return {
        "record_version": 1,
        "study": "evil",
        "trial": trial,
        "state": state,
        "algorithm": "sp",
        "task": "<svg onload=alert('task')>",
        "seed": 0,
        "direction": "maximize",
        "objective": 0.7 if complete else None,
        "params": {"epochs": trial + 1, "<b>name</b>": f"<img src=x onerror=alert({trial})>"},
        "auc": {"resample": {"score-trapezoid": 0.7, "sweep-pessimistic": 0.0}} if complete else {},
        "roc": {},
        "sweep_roc": {},
        "ground_truth": None,
        "circuit_size": 3,
        "seconds": 1.0,
        "faithfulness": {},
        "faithfulness_curve": [],
        "history": {},
        "per_task": {},
        "fail_reason": None if complete else "<script>alert('reason')</script>",
    }


def test_index_html_escapes_text_from_records(tmp_path: Path):
    records = tmp_path / "runs" / "evil" / "trials.jsonl"
    records.parent.mkdir(parents=True)
    lines = [json.dumps(hostile_record(n, s)) for n, s in enumerate(["COMPLETE", "FAIL"])]
    records.write_text("\n".join(lines) + "\n")
    env = {"BROWSER_PATH": "/nonexistent/chrome", "XDG_DATA_HOME": str(tmp_path / "xdg")}
    result = harness("report", "evil", "--runs-dir", "runs", "--out", "out", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "out" / "index.html").read_text()
    for markup in ("<script>alert", "<img src=x", "<b>name", "<svg onload"):
        assert markup not in page
    assert "&lt;script&gt;alert(&#39;reason&#39;)&lt;/script&gt;" in page
    assert "&lt;b&gt;name&lt;/b&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page


HOSTILE_MODULE = """import os, sys
open(os.path.join(os.path.dirname(os.path.abspath(__file__)), f"RAN-{os.getpid()}"), "w").close()
raise SystemExit("selectors.py of the working directory ran")
"""


def launched_like_a_console_script(tmp_path: Path, code: str, *args: str, env: dict | None = None):
    """``code`` run as the ``harness`` console script runs: a script outside the working
    directory, which holds a ``selectors.py`` (imported by subprocess, multiprocessing and
    asyncio, so by every child). Returns (result, files the module left)."""
    work, bin_dir = tmp_path / "work", tmp_path / "bin"
    work.mkdir(exist_ok=True)
    bin_dir.mkdir(exist_ok=True)
    (work / "selectors.py").write_text(HOSTILE_MODULE)
    (bin_dir / "launch.py").write_text(code)
    result = subprocess.run(
        [sys.executable, str(bin_dir / "launch.py"), *args],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    return result, sorted(p.name for p in work.glob("RAN-*"))


def test_jobs_workers_do_not_run_a_module_file_of_the_working_directory(tmp_path: Path):
    code = (
        "import os\n"
        "from harness.study.runtime.processes import start_blocked\n"
        "if __name__ == '__main__':\n"
        "    process = start_blocked(os.getpid, ())\n"
        "    process.join(60)\n"
        "    print(process.exitcode)\n"
    )
    result, ran = launched_like_a_console_script(tmp_path, code)
    assert ran == [] and result.stdout.strip() == "0", result.stderr


def test_static_export_child_does_not_run_a_module_file_of_the_working_directory(tmp_path):
    records = tmp_path / "work" / "runs" / "evil" / "trials.jsonl"
    records.parent.mkdir(parents=True)
    records.write_text(json.dumps(hostile_record(0, "COMPLETE")) + "\n")
    browser = tmp_path / "fake-chrome"  # an executable, so the export process starts
    browser.write_text("#!/bin/sh\nexit 1\n")
    browser.chmod(0o755)
    env = {
        "BROWSER_PATH": str(browser),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "HARNESS_STATIC_TIMEOUT": "10",
    }
    code = "import sys\nfrom harness.cli import main\nsys.exit(main())\n"
    args = ("report", "evil", "--runs-dir", "runs", "--out", "out")
    result, ran = launched_like_a_console_script(tmp_path, code, *args, env=env)
    assert result.returncode == 0, result.stderr
    assert ran == [], result.stderr
    assert "selectors.py" not in result.stderr


def refused(tmp_path: Path, *args: str) -> str:
    """The one line of a command that must refuse at once (a blocking read would time out)."""
    result = harness(*args, cwd=tmp_path, timeout=60)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    return lines[0]


def test_a_fifo_or_a_device_as_an_input_is_refused_in_one_line(tmp_path: Path):
    os.mkfifo(tmp_path / "s.yaml")
    os.mkfifo(tmp_path / "c.json")
    records = tmp_path / "runs" / "fifo-study" / "trials.jsonl"
    records.parent.mkdir(parents=True)
    os.mkfifo(records)
    fifo = "is a FIFO, not a regular file"
    assert f"config 's.yaml' {fifo}" in refused(tmp_path, "validate", "s.yaml")
    assert f"config 's.yaml' {fifo}" in refused(tmp_path, "run", "s.yaml")
    device = "config '/dev/zero' is a character device, not a regular file"
    assert device in refused(tmp_path, "validate", "/dev/zero")
    mib = ("score", "--task", "tracr-reverse", "--mib-in")
    assert f"MIB circuit file 'c.json' {fifo}" in refused(tmp_path, *mib, "c.json")
    assert "MIB circuit file '/dev/zero' is a character" in refused(tmp_path, *mib, "/dev/zero")
    line = refused(tmp_path, "report", "fifo-study", "--runs-dir", "runs", "--out", "out")
    assert f"records file 'runs/fifo-study/trials.jsonl' {fifo}" in line
    assert not (tmp_path / "out").exists()


def test_a_config_over_one_mib_is_refused_unread(tmp_path: Path):
    big = write_study(tmp_path)
    with big.open("a") as handle:
        handle.write("# padding\n" * 110_000)  # valid YAML, 1.1 MB
    line = refused(tmp_path, "validate", big.name)
    assert line.startswith(f"harness: error: config '{big.name}' is larger than 1 MiB")


def test_a_report_does_not_write_through_a_symlinked_output(tmp_path: Path):
    records = tmp_path / "runs" / "evil" / "trials.jsonl"
    records.parent.mkdir(parents=True)
    records.write_text(json.dumps(hostile_record(0, "COMPLETE")) + "\n")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep\n")
    out = tmp_path / "out"
    (out / "tables").mkdir(parents=True)
    args = ("report", "evil", "--runs-dir", "runs", "--out", "out")
    for link in (out / "report.md", out / "tables" / "trials-evil.md"):
        link.symlink_to(victim)
        line = refused(tmp_path, *args)
        assert f"{link.relative_to(tmp_path)} is a symbolic link (to {victim})" in line
        assert victim.read_text() == "keep\n"
        link.unlink()
    assert sorted(p.name for p in out.rglob("*")) == ["tables"]  # nothing written


def test_jobs_and_threads_are_capped_in_one_line(tmp_path: Path):
    path = write_study(tmp_path)
    line = refused(tmp_path, "run", path.name, "--jobs", "100000", "--runs-dir", "runs")
    assert "--jobs must be at most" in line and "per CPU" in line and "got 100000" in line
    assert not (tmp_path / "runs").exists()
    line = refused(tmp_path, "--threads", "100000", "validate", path.name)
    assert "--threads must be at most" in line and "got 100000" in line


# --- round two ---------------------------------------------------------------------------


def write_records(tmp_path: Path, study: str, n: int = 1) -> None:
    records = tmp_path / "runs" / study / "trials.jsonl"
    records.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({**hostile_record(i, "COMPLETE"), "study": study}) for i in range(n)]
    records.write_text("\n".join(lines) + "\n")


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a report folder, but the hidden one a report is built in."""
    files = (p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): p.read_bytes() for p in files if ".building-" not in str(p)}


def test_a_report_killed_mid_way_leaves_the_old_report_whole(tmp_path: Path):
    """Issue 22: a report rebuilt over an old one and killed (SIGKILL) while its figures
    render left the old report.md beside the new tables, looking complete."""
    no_browser = {"BROWSER_PATH": "/nonexistent/chrome", "XDG_DATA_HOME": str(tmp_path / "xdg")}
    write_records(tmp_path, "old")
    args = ("--runs-dir", "runs", "--out", "out")
    first = harness("report", "old", *args, cwd=tmp_path, env=no_browser)
    assert first.returncode == 0, first.stderr
    out = tmp_path / "out"
    (out / "notes.txt").write_text("the user's own\n")  # not the report's: left alone
    before = snapshot(out)
    assert "tables/trials-old.md" in before
    started = tmp_path / "browser-started"
    browser = tmp_path / "hung-chrome"  # starts, says so, never answers
    browser.write_text(f"#!/bin/sh\ntouch {started}\nexec sleep 600\n")
    browser.chmod(0o755)
    write_records(tmp_path, "new", 2)
    hung = {**no_browser, "BROWSER_PATH": str(browser), "HARNESS_STATIC_TIMEOUT": "120"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "report", "new", *args],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT), **hung},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.time() + 120
    while not started.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert started.exists(), "the report never reached its static figures"
    os.killpg(proc.pid, signal.SIGKILL)  # the harness, its export child and the browser
    proc.wait()
    assert snapshot(out) == before  # every old file as it was, nothing new among them
    (building,) = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert building == f".building-{proc.pid}"  # the half-built report, out of the way
    again = harness("report", "new", *args, cwd=tmp_path, env=no_browser)
    assert again.returncode == 0, again.stderr
    after = snapshot(out)
    assert "tables/trials-new.md" in after and "tables/trials-old.md" not in after
    assert "trials-new" in after["report.md"].decode()
    assert after["notes.txt"] == b"the user's own\n"
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # none left over


def write_config(tmp_path: Path, text: str, name: str = "c.yaml") -> str:
    (tmp_path / name).write_text(text)
    return name


EAP_STUDY = "name: {name}\ntask: tracr-reverse\nalgorithm: eap\n{extra}\n"


def test_a_name_of_300_characters_is_refused_at_validate(tmp_path: Path):
    """Before: validate said ok, and run failed on a file name too long for the disk."""
    path = write_config(tmp_path, EAP_STUDY.format(name="a" * 300, extra=""))
    for command in (["validate", path], ["run", path, "--runs-dir", "runs"]):
        line = refused(tmp_path, *command)
        assert "name: String should have at most 100 characters" in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ("task_options: {device: meta}", "device 'meta' cannot run a model"),
        ("task_options: {seed: 99999999999999999999}", "task_options: seed must be an integer"),
        ('n_trials: "5"', "n_trials: a number, not the string '5'"),
    ],
)
def test_a_study_every_trial_of_which_would_fail_is_refused_at_validate(tmp_path, extra, said):
    """Before: validate passed, every trial failed, and the run exited 0 (a quoted
    n_trials was taken, a quoted epochs refused)."""
    path = write_config(tmp_path, EAP_STUDY.format(name="s", extra=extra))
    assert said in refused(tmp_path, "validate", path)
    assert said in refused(tmp_path, "run", path, "--runs-dir", "runs", "--no-progress")
    assert not (tmp_path / "runs").exists()


def test_score_writes_its_files_into_folders_that_do_not_exist_yet(tmp_path: Path):
    """Before: the run finished, then its result was lost in a FileNotFoundError."""
    out = ("--out", "new/scores.csv", "--mib-out", "other/new/circuit.json")
    result = harness("score", "--task", "tracr-reverse", "--algo", "eap", *out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "new" / "scores.csv").read_text().startswith("edge,score")
    assert json.loads((tmp_path / "other" / "new" / "circuit.json").read_text())["edges"]


def test_mib_files_nested_too_deeply_or_out_of_range_are_one_line(tmp_path: Path):
    edge = '{"cfg": {}, "nodes": {}, "edges": {"input->logits": {"score": %s}}}'
    files = {
        "deep.json": "[" * 100_000 + "]" * 100_000,  # RecursionError before
        "digits.json": edge % ("1" * 5000),  # more digits than Python reads
        "huge.json": edge % ("9" * 400),  # an int no float holds (OverflowError)
    }
    said = {
        "deep.json": "JSON nested too deeply",
        "digits.json": "Exceeds the limit (4300 digits)",
        "huge.json": "has a score out of range (an integer of 400 digits)",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        line = refused(tmp_path, "score", "--task", "tracr-reverse", "--mib-in", name)
        assert f"{name}: " in line and said[name] in line, line


@pytest.mark.parametrize("from_study", ["{0}", "{name}", "/etc", "../other"])
def test_from_study_must_be_a_study_name(tmp_path: Path, from_study: str):
    """Before: "{0}" raised IndexError (a traceback) after the comparison had started, and
    an absolute path read records outside --runs-dir."""
    method = f"  eap: {{from_study: '{from_study}'}}"
    text = f"kind: compare\nname: c\ntasks: tracr-reverse\nmethods:\n{method}\n"
    path = write_config(tmp_path, text)
    line = refused(tmp_path, "compare", path, "--runs-dir", "runs", "--no-progress")
    assert "methods.eap.from_study: a study name" in line and repr(from_study) in line


def test_a_report_source_that_is_a_path_but_no_config_is_refused(tmp_path: Path):
    line = refused(tmp_path, "report", "/etc", "--runs-dir", "runs", "--out", "out")
    assert "report source '/etc' is neither a config file nor a study name" in line
    assert not (tmp_path / "out").exists()


TASK_FILES = {
    "exits.py": ("import sys\nsys.exit(0)\n", "called sys.exit(0): a task file registers"),
    "suite.py": (
        "from harness.tasks import TracrProgram, register_tracr_program\n"
        "register_tracr_program(TracrProgram('suite', (1, 2), 3, lambda: None))\n",
        "tracr program name 'suite': tracr-suite is the suite's name",
    ),
    "big.py": (
        "from harness.tasks import TracrProgram, register_tracr_program\n"
        "register_tracr_program(TracrProgram('big', tuple(range(10_000)), 5, lambda: None))\n",
        "tracr-big: a vocabulary of 10000 tokens; at most 100 compile in reasonable time",
    ),
    "long.py": (
        "from harness.tasks import TracrProgram, register_tracr_program\n"
        "register_tracr_program(TracrProgram('long', (1, 2, 3, 4), 12, lambda: None))\n",
        "tracr-long: 4^12 = 1.68e+07 inputs, each enumerated; at most 100,000",
    ),
}


@pytest.mark.parametrize("name", sorted(TASK_FILES))
def test_a_task_file_that_exits_is_too_large_or_takes_the_suites_name_is_one_line(tmp_path, name):
    """Before: sys.exit(0) in a task file ended ``harness`` quietly with exit 0; a program
    named ``suite`` made a task ``tracr-suite`` that the suite's name hid; a 10,000-token
    vocabulary registered, then compiled for ever (vocabulary 1,000 x length 5 had not
    loaded after 120 s)."""
    text, said = TASK_FILES[name]
    (tmp_path / name).write_text(text)
    assert said in refused(tmp_path, "--tasks-from", name, "ls", "tasks")


# --- the machine's faults: exit 1 -------------------------------------------------------

HUNGRY_TASK = '''"""tracr-reverse, whose loader reserves 2 GiB of address space (never touched)."""
import dataclasses
import numpy as np
from harness.tasks import get_task_spec, register

reverse = get_task_spec("tracr-reverse")


def load_hungry(**options):
    workspace = np.empty(2**28)  # 2 GiB of float64
    del workspace
    return reverse.loader(**options)


register(dataclasses.replace(reverse, slug="hungry-reverse", loader=load_hungry))
'''

UNDER_AN_ADDRESS_SPACE_LIMIT = """
import resource, sys
import optuna, pandas, torch  # what a run maps anyway, before the limit
import harness.evaluation.mib, harness.study.driver
from harness.cli import main
in_use = next(int(line.split()[1]) for line in open("/proc/self/status") if "VmSize" in line)
limit = in_use * 1024 + int(sys.argv[1]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow  # 23 s
def test_memory_running_out_in_a_trial_stops_the_run_with_exit_1(tmp_path: Path):
    """A real MemoryError: numpy's allocation of 2 GiB under an RLIMIT_AS of 768 MiB more
    than the process had. Before: every trial failed the same way, each with a FAIL
    record, and the run exited 0."""
    (tmp_path / "hungry.py").write_text(HUNGRY_TASK)
    path = write_study(
        tmp_path, name="hungry", task="hungry-reverse", ground_truth="resample", n_trials=2,
        enqueue=[], sampler={"type": "random"}, search_space={
            "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
            "epochs": {"type": "int", "low": 2, "high": 3},
        },
    )  # fmt: skip
    args = ["--tasks-from", "hungry.py", "run", path.name, "--runs-dir", "runs", "--no-progress"]
    limited = subprocess.run(
        [sys.executable, "-c", UNDER_AN_ADDRESS_SPACE_LIMIT, "768", *args, "--no-heldout"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert limited.returncode == 1, limited.stderr
    line = refused_line(limited.stderr)
    assert line.startswith("harness: error: trial 0 ran out of memory: MemoryError: Unable")
    records = tmp_path / "runs" / "hungry" / "trials.jsonl"
    assert not records.exists() or records.read_text() == ""  # no FAIL record: no result
    ascii_status = harness(
        "--tasks-from", "hungry.py", "status", path.name, "--runs-dir", "runs",
        cwd=tmp_path, env={"PYTHONIOENCODING": "ascii"},
    )  # fmt: skip
    assert ascii_status.returncode == 1  # the terminal's encoding, not the input (was 2)
    assert refused_line(ascii_status.stderr) == (
        "harness: error: cannot write '\\u2013' in the output's encoding 'ascii': "
        "set PYTHONIOENCODING=utf-8"
    )
    status = harness("--tasks-from", "hungry.py", "status", path.name, "--runs-dir", "runs",
                     cwd=tmp_path)  # fmt: skip
    assert "no result: trial 0 ran out of memory" in status.stdout
    assert "runs again as trial" in status.stdout
    resumed = harness(*args, cwd=tmp_path)  # no limit: the same trial runs again
    assert resumed.returncode == 0, resumed.stderr
    kept = [json.loads(line) for line in records.read_text().splitlines()]
    assert [r["state"] for r in kept] == ["COMPLETE", "COMPLETE"]
    assert kept[0]["retry_of"] == 0


def refused_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_a_full_disk_under_an_output_is_exit_1(tmp_path: Path):
    """/dev/full answers every write with ENOSPC. Before: exit 2, as if the input were bad;
    a full stdout printed Python's "Exception ignored" lines and exited 120."""
    scored = harness("score", "--task", "tracr-reverse", "--algo", "eap", "--out", "/dev/full",
                     cwd=tmp_path)  # fmt: skip
    assert scored.returncode == 1
    assert refused_line(scored.stderr) == "harness: error: No space left on device"
    with open("/dev/full", "w") as full:
        listed = subprocess.run(
            [sys.executable, "-m", "harness.cli", "ls", "tasks"], stdout=full,
            stderr=subprocess.PIPE, text=True, cwd=tmp_path, timeout=120,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    assert listed.returncode == 1
    assert refused_line(listed.stderr) == "harness: error: No space left on device"


# --- W&B on a hostile machine -----------------------------------------------------------

LOG_ONE_TRIAL = """
import sys, time
from harness.configs.study import StudyConfig
from harness.records.schema import TrialRecord
from harness.study.wandb_mirror import log_trial
from harness.util.notices import one_line_warnings
one_line_warnings()
config = StudyConfig.model_validate(
    {"name": "s", "task": "tracr-reverse", "wandb": {"mode": sys.argv[1]}})
record = TrialRecord("s", 0, "COMPLETE", "sp", "tracr-reverse", None, {"x": 1}, 0)
for _ in range(2):  # a problem is said once, not once per trial
    start = time.monotonic()
    print(log_trial(record, config, sys.argv[2]), round(time.monotonic() - start, 1))
"""


@pytest.fixture
def read_only_dir(tmp_path: Path):
    """A folder on a read-only tmpfs (as root, chmod would not stop a write)."""
    path = tmp_path / "ro"
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.strip()}")
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


def log_two_trials(tmp_path: Path, mode: str, directory: Path, env: dict, drop=()):
    """Two trials mirrored to W&B by a real child process; (run ids, seconds, stderr)."""
    child_env = {k: v for k, v in os.environ.items() if k not in drop}
    child_env.update(PYTHONPATH=str(ROOT), **env)
    for key in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        child_env.pop(key, None)
    result = subprocess.run(
        [sys.executable, "-c", LOG_ONE_TRIAL, mode, str(directory)], capture_output=True,
        text=True, cwd=tmp_path, env=child_env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    return [r[0] for r in rows], [float(r[1]) for r in rows], result.stderr


def test_wandb_with_an_unset_or_read_only_home_is_silent(tmp_path, read_only_dir):
    """Before: 20 lines of W&B's core service logging (unset HOME), 18 (read-only HOME)."""
    for label, env, drop in (("unset", {}, ("HOME",)), ("ro", {"HOME": str(read_only_dir)}, ())):
        directory = tmp_path / f"wandb-{label}"
        ids, _, stderr = log_two_trials(tmp_path, "offline", directory, env, drop)
        assert stderr == "" and "None" not in ids
        assert len(find_offline_runs(directory)) == 2


def test_wandb_in_a_read_only_folder_is_off_with_one_warning(tmp_path, read_only_dir):
    """Before: W&B wrote, silently, under a shared folder of the system's temporary directory."""
    ids, _, stderr = log_two_trials(tmp_path, "offline", read_only_dir, {})
    assert ids == ["None", "None"]
    line = refused_line(stderr)
    assert f"W&B folder {read_only_dir} is not writable (Read-only file system)" in line


def test_wandb_online_without_a_server_logs_offline_at_once(tmp_path):
    """Before: about 90 s per trial, Ctrl-C and SIGTERM taking effect as late."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"WANDB_BASE_URL": f"http://127.0.0.1:{port}", "WANDB_API_KEY": "x" * 40}
    ids, seconds, stderr = log_two_trials(tmp_path, "online", tmp_path / "wandb", env)
    assert "None" not in ids and max(seconds) < 30
    line = refused_line(stderr)
    assert "W&B server unreachable (Connection refused): logging offline under" in line
    assert len(find_offline_runs(tmp_path / "wandb")) == 2
