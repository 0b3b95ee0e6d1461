"""Bad input, table-driven: each row is a command line (and the files it needs) that must end
with exit code 2, exactly one line on stderr naming the problem, no traceback, no password
in the output, and nothing created or changed on disk.

Rows run in this process through :func:`harness.cli.main` (an exception escaping ``main``
is the traceback a user would see); rows marked ``process`` run ``python -m harness.cli``
for real, under a memory and time bound. Read-only directories are a read-only tmpfs
mount (root ignores chmod); where mounting is not allowed those rows are skipped.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import resource
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]
SECRET = "hunter2secret"
DELETE = object()

STUDY: dict[str, Any] = {
    "version": 1,
    "name": "bad",
    "task": "tracr-reverse",
    "task_options": {"device": "cpu"},
    "algorithm": "sp",
    "params": {"tree_optimisation": True},
    "search_space": {
        "learning_rate": {"type": "float", "low": 0.01, "high": 1.0, "log": True},
        "epochs": {"type": "int", "low": 1, "high": 3},
        "init_val": {"type": "float", "low": 0.5, "high": 4.0},
    },
    "n_trials": 1,
    "wandb": {"mode": "disabled"},
    "heldout": {"seeds": 0},
}


def study(**changes: Any) -> str:
    """STUDY as YAML with dotted-key changes (``params__epochs=0`` sets params.epochs)."""
    data = json.loads(json.dumps(STUDY))
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return yaml.safe_dump(data, sort_keys=False)


@dataclass
class Row:
    id: str
    argv: list[str]
    message: str
    files: dict[str, str] = field(default_factory=dict)
    setup: str | None = None  # a name in SETUPS
    process: bool = False  # run in a real process under a memory and time bound
    secrets: tuple[str, ...] = ()


VALIDATE = ["validate", "{tmp}/s.yaml"]
RUN = [
    "run",
    "{tmp}/s.yaml",
    "--runs-dir",
    "{tmp}/runs",
    "--report-dir",
    "{tmp}/reports",
    "--no-progress",
]

# (id, study YAML, message): each is refused by `validate` and by `run`, the latter
# before it creates a storage, a runs directory or a report directory.
CONFIGS = [
    ("nan-bound", study(search_space__init_val__low=float("nan")), "low must be a finite"),
    ("inf-bound", study(search_space__init_val__high=float("inf")), "high must be a finite"),
    ("float-step-0", study(search_space__init_val__step=0.0), "step must be a finite number > 0"),
    ("int-step-neg", study(search_space__epochs__step=-1), "step must be an integer >= 1"),
    (
        "int-log-step",
        study(search_space__epochs={"type": "int", "low": 1, "high": 8, "log": True, "step": 2}),
        "cannot have both log: true and a step",
    ),
    ("task-option", study(task_options__n_exampels=8), "takes no option 'n_exampels'"),
    ("task-device", study(task_options__device="bogus"), "'bogus' is not a torch device"),
    (
        "epochs-0",
        study(params__epochs=0, search_space__epochs=DELETE),
        "epochs must be an integer >= 1, got 0",
    ),
    (
        "epochs-float",
        study(params__epochs=2.5, search_space__epochs=DELETE),
        "epochs must be an integer >= 1, got 2.5",
    ),
    (
        "lr-nan",
        study(params__learning_rate=float("nan"), search_space__learning_rate=DELETE),
        "learning_rate must be a finite number > 0, got nan",
    ),
    ("dropout-1", study(params__dropout_p=1.0), "dropout_p must be a finite number in [0, 1)"),
    ("ablation", study(params__ablation="bogus"), "ablation must be one of 'resample'"),
    ("mask-fn", study(params__mask_fn="bogus"), "mask_fn must be one of 'hard_concrete'"),
    ("target", study(params__faithfulness_target="bogus"), "faithfulness_target must be one of"),
    ("bool", study(params__tree_optimisation="yes please"), "must be true or false"),
    ("circuit-size", study(params__circuit_size=-5), "circuit_size must be an integer >= 1"),
    (
        "space-below-range",
        study(search_space__learning_rate={"type": "float", "low": -1.0, "high": 1.0}),
        "learning_rate must be a finite number > 0, got low -1.0",
    ),
    (
        "space-int-as-float",
        study(search_space__epochs={"type": "float", "low": 1, "high": 3}),
        "epochs is an integer: use type: int",
    ),
    (
        "space-choice",
        study(search_space__ablation={"type": "categorical", "choices": ["mean", "bogus"]}),
        "ablation must be one of",
    ),
    ("seed-negative", study(seed=-1), "seed: Input should be greater than or equal to 0"),
    ("seed-huge", study(seed=2**40), "seed: Input should be less than or equal to 2147483647"),
    (
        "enqueue-outside",
        study(enqueue=[{"learning_rate": 5.0, "epochs": 2}]),
        "enqueue[0]: learning_rate 5.0 is outside the search space",
    ),
    (
        "enqueue-off-step",
        study(
            search_space__epochs={"type": "int", "low": 2, "high": 10, "step": 2},
            enqueue=[{"epochs": 3}],
        ),
        "enqueue[0]: epochs 3 is outside the search space",
    ),
    (
        "enqueue-not-searched",
        study(enqueue=[{"regularize_lambda": 1.0}]),
        "enqueue[0]: 'regularize_lambda' is not searched",
    ),
    (
        "enqueue-bad-value",
        study(enqueue=[{}, {"learning_rate": "banana"}]),
        "enqueue[1]: sp parameter learning_rate must be a finite number > 0, got 'banana'",
    ),
    (
        "acdc-thresholds",
        study(algorithm="acdc", params={"thresholds": [0.1, -1]}, search_space={}),
        "thresholds must be a finite number > 0",
    ),
    (
        "eap-metric",
        study(algorithm="eap", params={"metric": "bogus"}, search_space={}),
        "metric must be one of 'auto'",
    ),
    ("duplicate-key", study() + "n_trials: 5\n", "duplicate key 'n_trials'"),
    (
        "deep-nesting",
        study() + "description: " + "[" * 20000 + "]" * 20000 + "\n",
        "refused: collections nested too deeply",
    ),
    ("not-utf8", study().replace("name: bad", "name: b\udcffd"), "not UTF-8 text"),
    ("nul-byte", study().replace("name: bad", "name: b\x00d"), "unacceptable character #x0000"),
    ("n_trials-true", study(n_trials=True), "n_trials: a number, not true"),
    (
        "range-bound-false",
        study(search_space__init_val={"type": "float", "low": False, "high": 1.0}),
        "low: a number, not false",
    ),
    (
        "nested-duplicate",
        study().replace("  tree_optimisation: true\n", "  dropout_p: 0.1\n  dropout_p: 0.2\n"),
        "duplicate key 'dropout_p'",
    ),
]

ROWS: list[Row] = []
for name, text, message in CONFIGS:
    ROWS.append(Row(f"validate-{name}", VALIDATE, message, {"s.yaml": text}))
    ROWS.append(Row(f"run-{name}", RUN, message, {"s.yaml": text}))

COMPARE = """version: 1
kind: compare
name: cmp
tasks: [tracr-reverse]
task_options: {device: cpu}
seeds: [0]
methods:
  sp: {params: {epochs: 1}, sweep: {regularize_lambda: [1.0, -3.0]}}
"""
SCORE = ["score", "--task", "tracr-reverse", "--device", "cpu", "--algo"]
PG = "postgresql://user:" + SECRET + "@127.0.0.1:{port}/db"

ROWS += [
    # --set, --param: values typed and ranged before anything runs
    Row(
        "set-avoid-lambda",
        [*RUN, "--set", "params.avoid_lambda=-3"],
        "avoid_lambda must be a finite number >= 0, got -3",
        {"s.yaml": study()},
    ),
    Row(
        "set-bad-yaml",
        [*VALIDATE, "--set", "params={a: [1"],
        "cannot read the value of 'params'",
        {"s.yaml": study()},
    ),
    Row(
        "compare-sweep",
        ["validate", "{tmp}/c.yaml"],
        "sweep: sp parameter regularize_lambda must be a finite number >= 0, got -3.0",
        {"c.yaml": COMPARE},
    ),
    Row(
        "compare-seed",
        ["validate", "{tmp}/c.yaml"],
        "seeds must be an integer in [0, 2147483647], got -1",
        {"c.yaml": COMPARE.replace("seeds: [0]", "seeds: [0, -1]")},
    ),
    Row(
        "compare-seed-twice",
        ["validate", "{tmp}/c.yaml"],
        "seeds: 0 is given twice",
        {"c.yaml": COMPARE.replace("seeds: [0]", "seeds: [0, 1, 0]")},
    ),
    Row(
        "compare-seed-true",
        ["validate", "{tmp}/c.yaml"],
        "seeds: numbers, not true",
        {"c.yaml": COMPARE.replace("seeds: [0]", "seeds: [true]")},
    ),
    Row(
        "compare-from-missing-study",
        ["compare", "{tmp}/c.yaml", "--runs-dir", "{tmp}/runs"],
        "methods.sp.from_study: study 'sp-nowhere-tracr-reverse' has no complete trials",
        {
            "c.yaml": COMPARE.replace(
                "regularize_lambda: [1.0, -3.0]}",
                "regularize_lambda: [1.0]}, from_study: 'sp-nowhere-{task}'",
            )
        },
    ),
    Row(
        "param-banana",
        [*SCORE, "sp", "--param", "learning_rate=banana"],
        "sp parameter learning_rate must be a finite number > 0, got 'banana'",
    ),
    Row(
        "param-banana-process",
        [*SCORE, "sp", "--param", "learning_rate=banana"],
        "learning_rate must be a finite number > 0, got 'banana'",
        process=True,
    ),
    Row(
        "param-epochs-float",
        [*SCORE, "sp", "--param", "epochs=2.5"],
        "epochs must be an integer >= 1, got 2.5",
    ),
    Row(
        "param-lr-inf",
        [*SCORE, "sp", "--param", "learning_rate=.inf"],
        "learning_rate must be a finite number > 0, got inf",
    ),
    Row(
        "param-dropout",
        [*SCORE, "sp", "--param", "dropout_p=1"],
        "dropout_p must be a finite number in [0, 1), got 1",
    ),
    Row(
        "param-bool",
        [*SCORE, "sp", "--param", "tree_optimisation=1"],
        "tree_optimisation must be true or false, got 1",
    ),
    Row("param-mask-fn", [*SCORE, "sp", "--param", "mask_fn=gumbel"], "mask_fn must be one of"),
    Row(
        "param-acdc",
        [*SCORE, "acdc", "--param", "thresholds=[]"],
        "thresholds must be a finite number > 0 or a non-empty list",
    ),
    Row(
        "param-eap",
        [*SCORE, "eap", "--param", "ablation=resampel"],
        "ablation must be one of 'resample'",
    ),
    Row(
        "param-metric-for-task",
        [
            "score",
            "--task",
            "tracr-proportion",
            "--algo",
            "sp",
            "--param",
            "faithfulness_target=kl_div",
        ],
        "faithfulness_target 'kl_div' is not supported by task 'tracr-proportion'",
    ),
    Row(
        "score-seed",
        [*SCORE, "random", "--seed", "-1"],
        "--seed must be an integer in [0, 2147483647], got -1",
    ),
    Row(
        "score-seed-huge",
        [*SCORE, "random", "--seed", str(2**33)],
        "--seed must be an integer in [0, 2147483647]",
    ),
    # devices
    Row(
        "device-bogus",
        ["score", "--task", "tracr-reverse", "--algo", "random", "--device", "bogus"],
        "device 'bogus' is not a torch device",
    ),
    # YAML that would exhaust memory: refused in one line, under a 4 GB address-space bound
    Row(
        "alias-bomb",
        RUN,
        "expands to more than 100,000 values",
        {"s.yaml": None},
        setup="bomb",
        process=True,
    ),
    # storage URLs
    Row(
        "sqlite-memory",
        [*RUN, "--storage", "sqlite:///"],
        "is an in-memory database",
        {"s.yaml": study()},
    ),
    Row(
        "sqlite-memory-named",
        [*RUN, "--storage", "sqlite:///:memory:"],
        "is an in-memory database",
        {"s.yaml": study()},
    ),
    Row(
        "pg-userinfo",
        [*RUN, "--storage", PG],
        "cannot open storage 'postgresql://user:***@127.0.0.1",
        {"s.yaml": study()},
        secrets=(SECRET,),
    ),
    Row(
        "pg-query",
        [
            "status",
            "{tmp}/s.yaml",
            "--storage",
            "postgresql://user@127.0.0.1:{port}/db?sslmode=disable&password=" + SECRET,
        ],
        "password=***",
        {"s.yaml": study()},
        secrets=(SECRET,),
    ),
    Row(
        "pg-raw-at",
        [*RUN, "--storage", "postgresql://user:p@" + SECRET + "@127.0.0.1:{port}/db"],
        "raw '@' in its user name or password",
        {"s.yaml": study()},
        secrets=(SECRET,),
    ),
    Row(
        "pg-worker",
        [
            "worker",
            "{tmp}/s.yaml",
            "--runs-dir",
            "{tmp}/runs",
            "--storage",
            PG + "?password=" + SECRET,
        ],
        "Connection refused",
        {"s.yaml": study()},
        secrets=(SECRET,),
    ),
    # broken files the harness reads
    Row(
        "corrupt-sqlite",
        ["status", "{tmp}/s.yaml", "--runs-dir", "{tmp}/runs"],
        "file is not a database",
        {"s.yaml": study(), "runs/bad/study.db": "garbage " * 600},
    ),
    Row(
        "record-list-status",
        ["status", "{tmp}/s.yaml", "--runs-dir", "{tmp}/runs"],
        "trials.jsonl:2: not a trial record",
        setup="records:[1,2]",
    ),
    Row("record-list-run", RUN, "trials.jsonl:2: not a trial record", setup="records:[1,2]"),
    Row(
        "record-object-report",
        ["report", "{tmp}/s.yaml", "--runs-dir", "{tmp}/runs", "--out", "{tmp}/reports"],
        'trials.jsonl:2: not a trial record (a JSON object with study, trial and state): {"foo"',
        setup='records:{"foo": 1}',
    ),
    Row(
        "record-torn-middle",
        ["status", "{tmp}/s.yaml", "--runs-dir", "{tmp}/runs"],
        "trials.jsonl:2: not a JSON line (corrupt in the middle of the file)",
        setup='records:{"study": "bad", "tri',
    ),
    # unwritable directories, refused before any work
    Row(
        "score-out-readonly",
        [*SCORE, "random", "--out", "{ro}/scores.csv"],
        "cannot write to --out '{ro}': Read-only file system",
    ),
    Row(
        "score-out-is-a-dir",
        [*SCORE, "random", "--out", "{tmp}"],
        "--out '{tmp}' is a directory: give a CSV file name",
    ),
    Row(
        "run-report-dir-readonly",
        [*RUN[:-3], "--report-dir", "{ro}/reports", "--no-progress"],
        "cannot write to --report-dir '{ro}/reports/bad': Read-only file system",
        {"s.yaml": study()},
    ),
    Row(
        "run-runs-dir-readonly",
        [
            *RUN[:2],
            "--runs-dir",
            "{ro}/runs",
            "--storage",
            "sqlite:///{tmp}/elsewhere.db",
            "--report-dir",
            "{tmp}/reports",
        ],
        "cannot write to the runs directory '{ro}/runs/bad': Read-only file system",
        {"s.yaml": study()},
    ),
    Row(
        "run-runs-dir-under-file",
        [
            *RUN[:2],
            "--runs-dir",
            "{tmp}/a-file/runs",
            "--storage",
            "sqlite:///{tmp}/elsewhere.db",
            "--report-dir",
            "{tmp}/reports",
        ],
        "cannot write to the runs directory '{tmp}/a-file/runs/bad': Not a directory",
        {"s.yaml": study(), "a-file": "x"},
    ),
    Row(
        "report-out-readonly",
        ["report", "{tmp}/s.yaml", "--runs-dir", "{tmp}/runs", "--out", "{ro}/report"],
        "cannot write to the report directory '{ro}/report': Read-only file system",
        setup="records:",
    ),
    # argparse: one line, not a usage block
    Row(
        "argparse-missing",
        ["score"],
        "harness: error: the following arguments are required: --task",
    ),
    Row(
        "score-no-algorithm",
        ["score", "--task", "tracr-reverse"],
        "harness: error: give --algo ALGORITHM, or --mib-in FILE to score an MIB circuit",
    ),
    Row(
        "argparse-type",
        ["score", "--task", "tracr-reverse", "--algo", "sp", "--seed", "abc"],
        "argument --seed: invalid int value: 'abc'",
    ),
    Row("argparse-command", ["frobnicate"], "argument command: invalid choice: 'frobnicate'"),
    Row(
        "argparse-process",
        ["run"],
        "harness: error: the following arguments are required: study",
        process=True,
    ),
]

BOMB = """version: 1
name: bad
task: tracr-reverse
task_options:
  a: &a [x, x, x, x, x, x, x, x, x]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
  i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""
# 9**9 = 387 million strings once expanded: before the fix, `run` hashed the config, ran
# out of a 4 GB bound ("memory allocation failed") and was still going after 60 s.


def _record(trial: int) -> str:
    return json.dumps(
        {
            "study": "bad",
            "trial": trial,
            "state": "FAIL",
            "algorithm": "sp",
            "task": "tracr-reverse",
            "ground_truth": None,
            "params": {},
            "seed": trial,
            "fail_reason": "ValueError: test",
        }
    )


def _setup(row: Row, tmp: Path) -> None:
    if row.setup == "bomb":
        (tmp / "s.yaml").write_text(BOMB)
    elif row.setup and row.setup.startswith("records:"):
        # a real (empty) study in storage and a records file whose second line is bad
        from harness.configs.study import validate_config
        from harness.study.driver import load_or_create_study

        (tmp / "s.yaml").write_text(study())
        config = validate_config(STUDY)
        load_or_create_study(config, f"sqlite:///{tmp}/runs/bad/study.db")
        bad = row.setup.removeprefix("records:")
        lines = [_record(0), bad, _record(1)] if bad else [_record(0)]
        if bad.startswith("[") or '"foo"' in bad:
            lines = lines[:2]  # JSON that is not a record is refused wherever it is
        (tmp / "runs" / "bad" / "trials.jsonl").write_text("\n".join(lines) + "\n")


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for directories)."""
    return {
        str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def readonly_dir(tmp_path: Path):
    """A directory on a read-only tmpfs (as root, chmod would not stop a write)."""
    path = tmp_path / "ro"
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def _limit_memory() -> None:
    limit = 4 * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _run(argv: list[str], process: bool, capsys) -> tuple[int, str, str]:
    if process:
        result = subprocess.run(
            [sys.executable, "-m", "harness.cli", *argv],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
            timeout=60,
            preexec_fn=_limit_memory,
        )
        return result.returncode, result.stdout, result.stderr
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    row: Row, tmp_path: Path, request, capsys
):
    tmp = tmp_path / "w"
    tmp.mkdir()
    values = {"tmp": str(tmp), "port": str(_closed_port())}
    if any("{ro}" in a for a in row.argv):
        values["ro"] = str(request.getfixturevalue("readonly_dir"))
    for name, text in row.files.items():
        if text is not None:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(text.encode("utf-8", errors="surrogateescape"))
    _setup(row, tmp)
    argv = [_fill(a, values) for a in row.argv]
    before = _snapshot(tmp_path)
    start = time.monotonic()
    code, out, err = _run(argv, row.process, capsys)
    lines = err.strip().splitlines()
    assert code == 2, (code, err[-2000:])
    assert len(lines) == 1, err[-2000:]
    assert lines[0].startswith("harness: error: "), lines
    assert _fill(row.message, values) in lines[0], lines
    assert "Traceback" not in err
    for secret in row.secrets:
        assert secret not in out + err
    assert _snapshot(tmp_path) == before, "the command created or changed files"
    assert time.monotonic() - start < 30


@pytest.fixture(scope="module")
def tracr_task():
    from harness.tasks import load

    return load("tracr-reverse", device="cpu")


@pytest.mark.parametrize(
    ("algorithm", "params", "message"),
    [
        ("sp", {"learning_rate": "banana"}, "learning_rate must be a finite number > 0"),
        ("sp", {"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        ("sp", {"regularize_lambda": float("nan")}, "regularize_lambda must be a finite number"),
        ("acdc", {"metric": "l2"}, "metric must be one of 'auto', 'kl_div', 'mse', 'logit_diff'"),
        ("eap", {"ablation": None}, "ablation must be one of"),
    ],
)
def test_the_python_api_refuses_bad_values_naming_parameter_value_and_range(
    tracr_task, algorithm, params, message
):
    from harness.algorithms import get_algorithm
    from harness.evaluation.run_one import run_algorithm

    with pytest.raises(ValueError, match=re.escape(message)):
        run_algorithm(tracr_task, algorithm, params)
    with pytest.raises(ValueError, match=re.escape(message)):
        get_algorithm(algorithm).check(params)
    with pytest.raises(ValueError, match="seed must be an integer"):
        run_algorithm(tracr_task, "random", {}, seed=-1)


def test_every_algorithm_parameter_has_a_spec_that_accepts_its_default():
    from harness.algorithms import ALGORITHMS
    from harness.algorithms.params import PARAMETERS
    from harness.algorithms.sp_batched import PER_TRIAL, subnetwork_probing_batched
    from harness.evaluation.run_one import algorithm_parameters

    for slug, spec in ALGORITHMS.items():
        for name, default in algorithm_parameters(spec).items():
            assert name in PARAMETERS[slug], f"{slug} parameter {name} has no type and range"
            assert PARAMETERS[slug][name].accepts(default), (slug, name, default)
    batched = inspect.signature(subnetwork_probing_batched).parameters
    shared = [n for n, p in batched.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    for name in [*PER_TRIAL, *shared]:
        assert name in PARAMETERS["sp"] or name in ("seed", "callbacks", "max_pass_bytes"), name
    assert PARAMETERS["sp"]["restore_clean"].describe() == "true or false"


def test_an_error_that_is_not_bad_input_keeps_its_traceback(monkeypatch):
    import errno

    import harness.cli as cli
    import harness.cli.ls as ls_command

    for error in (RuntimeError("a bug"), KeyError("k"), FileNotFoundError(errno.ENOENT, "gone")):

        def broken(args, error=error):
            raise error

        monkeypatch.setattr(ls_command, "command", broken)
        with pytest.raises(type(error)):
            cli.main(["ls", "tasks"])


POSTGRES_URL = os.environ.get("HARNESS_TEST_POSTGRES_URL")


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="HARNESS_TEST_POSTGRES_URL is not set")
def test_a_postgres_password_never_shows_on_success(tmp_path: Path):
    """A password in the query (ignored by a trust server) never reaches the output,
    the records or the status table."""
    url = POSTGRES_URL + ("&" if "?" in POSTGRES_URL else "?") + f"password={SECRET}"
    name = f"pw-{uuid.uuid4().hex[:8]}"
    (tmp_path / "s.yaml").write_text(
        study(name=name, params__epochs=1, search_space={}, task_options__n_examples=8)
    )
    common = ["--storage", url, "--runs-dir", str(tmp_path / "runs")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    outputs = []
    for command in (
        ["run", str(tmp_path / "s.yaml"), *common, "--report-dir", str(tmp_path / "r"),
         "--no-progress"],
        ["status", str(tmp_path / "s.yaml"), *common],
    ):  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-m", "harness.cli", *command],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
    assert "password=***" in outputs[0] and "password=***" in outputs[1]
    written = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())
    assert SECRET not in "".join(outputs) + written


def test_a_warning_is_one_stderr_line():
    """Python's default format adds the source line: two lines per warning on stderr.
    (In a process of its own: pytest records warnings instead of printing them.)"""
    script = (
        "import sys, warnings\n"
        "import harness.cli as cli\n"
        "import harness.cli.ls as ls_command\n"
        "def warns(args):\n"
        "    warnings.warn('first part\\nsecond part', UserWarning)\n"
        "    return 0\n"
        "ls_command.command = warns\n"
        "sys.exit(cli.main(['ls', 'tasks']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "always", "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: warning: first part second part")
