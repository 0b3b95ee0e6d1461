"""A researcher's own RASP program as a task: registered from Python or with
``harness --tasks-from FILE``, compiled by tracr at its first load, checked against tracr's
own compiled model and RASP interpreter, with derived ground truths that hold."""

from __future__ import annotations

import itertools
import textwrap

import numpy as np
import pytest
import torch

import harness.tasks
from harness.tasks import TracrProgram, register_tracr_program
from harness.tasks.tracr.compile import compile_rasp, load_compiled
from harness.tasks.tracr.data import all_inputs
from harness.tasks.tracr.program import BOS
from harness.tasks.tracr.rasp_graph import program_digest
from harness.tasks.tracr.tasks import forget_tracr_program
from harness.tasks.tracr.weight_files import cache_path
from tests.test_study import harness as run_harness
from tests.tracr_checks import clean_and_ablated_outputs


def _build_running_min():
    """Not in the suite: the smallest token so far (a prefix aggregate of a one-hot min)."""
    from tracr.rasp import rasp

    prefix = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ)
    is_one = rasp.numerical(rasp.Map(lambda x: 1 if x == 1 else 0, rasp.tokens))
    seen_one = rasp.numerical(rasp.Aggregate(prefix, is_one, default=0))
    return rasp.Map(lambda f: 1 if f > 0 else 2, seen_one)


def _build_fraction_b():
    from tracr.compiler import lib
    from tracr.rasp import rasp

    return lib.make_frac_prevs(rasp.tokens == "b")


def _build_shift():
    from tracr.compiler import lib
    from tracr.rasp import rasp

    return lib.shift_by(1, rasp.tokens)


def _build_raising():
    raise RuntimeError("typo in the program")


def _build_negative_map():
    """tracr's categorical-to-numerical MLP ends in a ReLU: -1.25 compiles to 0."""
    from tracr.rasp import rasp

    return rasp.numerical(rasp.Map(lambda x: {"a": 0.5, "b": -1.25}[x], rasp.tokens))


def _build_mean_of_indices():
    """A categorical mean of indices: the interpreter gives 1.5, not an output class."""
    from tracr.rasp import rasp

    same = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ)
    return rasp.Aggregate(same, rasp.indices)


def _build_prefix_mean_of_values():
    """Attention in tracr averages only 0/1 values: tracr refuses to compile it."""
    from tracr.rasp import rasp

    prefix = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ)
    values = rasp.numerical(rasp.Map(lambda x: x, rasp.tokens))
    return rasp.numerical(rasp.Aggregate(prefix, values, default=0))


RUNNING_MIN = TracrProgram("user-seen-one", (1, 2), 4, _build_running_min)
FRACTION_B = TracrProgram("user-frac-b", ("a", "b", "c"), 4, _build_fraction_b, numerical=True)


@pytest.fixture(scope="module")
def user_tasks():
    names = [register_tracr_program(RUNNING_MIN), register_tracr_program(FRACTION_B)]
    yield {name: harness.tasks.load(name, device="cpu") for name in names}
    for program in (RUNNING_MIN, FRACTION_B):
        forget_tracr_program(program.name)


def test_registered_programs_are_tasks(user_tasks):
    specs = harness.tasks.task_specs()
    assert specs["tracr-user-seen-one"].numerical_output is False
    assert specs["tracr-user-frac-b"].numerical_output is True
    task = user_tasks["tracr-user-seen-one"]
    # 2**4 = 16 inputs: a third each for train and test, the rest for validation
    assert [b.size for b in task.train + task.test + task.validation] == [5, 5, 6]
    assert set(task.circuits) == {"resample", "zero"}
    assert task.faithfulness_target == "kl_div"
    assert user_tasks["tracr-user-frac-b"].faithfulness_target == "mse"


@pytest.mark.parametrize("name", ["user-seen-one", "user-frac-b"])
def test_converted_model_equals_tracr_and_the_rasp_interpreter(user_tasks, name):
    """On every valid input, our transformer_lens model's output equals tracr's own compiled
    JAX model's (decoded) and the RASP interpreter's; the task's answers are the latter."""
    from tracr.rasp import rasp

    from harness.tasks.tracr.rasp_graph import build_program

    compiled = load_compiled(name)
    assembled = compile_rasp(name)
    output = build_program(name)
    model = compiled.to_model("cpu")
    tokens = all_inputs(compiled)  # [n_inputs, 1 + max_seq_len]
    decode = {token: value for value, token in compiled.input_encoding.items()}
    with torch.no_grad():
        ours = model(tokens)[:, 1:]  # [n_inputs, max_seq_len, d_vocab_out]
    for row, out in zip(tokens.tolist(), ours, strict=True):
        values = [decode[t] for t in row[1:]]
        expected = rasp.evaluate(output, values)
        from_tracr = assembled.apply([BOS, *values])
        if compiled.output_encoding is None:  # numerical: the one output dimension
            np.testing.assert_allclose(out[:, 0].numpy(), expected, atol=1e-5)
            tracr_values = np.asarray(from_tracr.decoded[1:], dtype=float)  # output dim.
            np.testing.assert_allclose(out[:, 0].numpy(), tracr_values, atol=1e-5)
        else:
            classes = [compiled.output_encoding[v] for v in expected]
            assert out.argmax(-1).tolist() == classes
            assert from_tracr.decoded[1:] == expected
    task = user_tasks[f"tracr-{name}"]
    for batch in task.train + task.test:
        with torch.no_grad():
            logits = batch.output_logits(task.model(batch.clean))
        if batch.is_regression:
            assert (logits[..., 0] - batch.answers).abs().max() < 1e-5
        else:
            assert torch.equal(logits.argmax(-1), batch.answers[..., 0])


@pytest.mark.parametrize("name", ["tracr-user-seen-one", "tracr-user-frac-b"])
@pytest.mark.parametrize("ablation", ["zero", "resample"])
def test_derived_ground_truths_hold(user_tasks, name, ablation):
    """Ablating everything outside the derived circuit keeps the output; ablating every
    edge does not."""
    task = user_tasks[name]
    circuit = task.official_edges(ablation)
    assert 0 < len(circuit) < task.patchable.n_edges
    outside = [e.name for e in task.patchable.edges if e.name not in circuit]
    clean, ablated = clean_and_ablated_outputs(task, ablation, outside)
    assert (ablated - clean).abs().max() < 1e-4
    _, everything = clean_and_ablated_outputs(
        task, ablation, [e.name for e in task.patchable.edges]
    )
    assert (everything - clean).abs().max() > 0.1


def test_the_cache_is_keyed_by_the_program(tmp_path, user_tasks):
    """With a cache directory the compiled weights are written under the program's digest;
    a changed program under the same name gets another file, never the stale one."""
    path = cache_path("user-seen-one", tmp_path)
    assert program_digest("user-seen-one") in path.name
    first = load_compiled("user-seen-one", tmp_path)
    assert path.exists()
    assert torch.equal(load_compiled("user-seen-one", tmp_path).state_dict["embed.W_E"],
                       first.state_dict["embed.W_E"])  # fmt: skip

    def build_other():
        from tracr.rasp import rasp

        prefix = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ)
        is_two = rasp.numerical(rasp.Map(lambda x: 1 if x == 2 else 0, rasp.tokens))
        seen = rasp.numerical(rasp.Aggregate(prefix, is_two, default=0))
        return rasp.Map(lambda f: 1 if f > 0 else 2, seen)

    try:
        register_tracr_program(TracrProgram("user-seen-one", (1, 2), 4, build_other))
        assert cache_path("user-seen-one", tmp_path) != path
    finally:
        register_tracr_program(RUNNING_MIN)


@pytest.mark.parametrize(
    ("program", "message"),
    [
        (TracrProgram("hist", ("a",), 3, _build_shift), "is one of the suite's"),
        (TracrProgram("Bad Name", ("a",), 3, _build_shift), "use lower-case letters"),
        (TracrProgram("user-x", ("a", BOS), 3, _build_shift), "vocab must be distinct"),
        (TracrProgram("user-x", ("a", "a"), 3, _build_shift), "vocab must be distinct"),
        (TracrProgram("user-x", ("a",), 0, _build_shift), "max_seq_len must be a positive"),
        (TracrProgram("user-x", ("a", "b"), 3, lambda: 3), "build returned int, not a RASP SOp"),
        (TracrProgram("user-x", ("a", "b", "c"), 3, _build_fraction_b), "set numerical=True"),
        (TracrProgram("user-x", ("a",), True, _build_shift), "max_seq_len must be a positive"),
        (TracrProgram("user-x", None, 3, _build_shift), "vocab must be a tuple of hashable"),
        (TracrProgram("user-x", ([1], [2]), 3, _build_shift), "vocab must be a tuple of hash"),
        (TracrProgram("user-x", ("a",), 2, _build_shift), "has 1 valid input.*needs 2 or more"),
        (TracrProgram("user-x", ("a", "b"), 3, _build_raising), "build raised RuntimeError: typo"),
    ],
)
def test_bad_programs_are_refused_in_one_line(program, message):
    with pytest.raises(ValueError, match=message) as error:
        register_tracr_program(program)
    assert "\n" not in str(error.value)
    assert "tracr-user-x" not in harness.tasks.task_specs()


def test_an_output_the_program_leaves_undefined_is_named(tmp_path):
    """shift_by leaves its first position undefined: loading says which and what to do;
    with output_positions it loads."""
    try:
        register_tracr_program(TracrProgram("user-shift", ("a", "b"), 4, _build_shift))
        with pytest.raises(ValueError, match=r"no output at position\(s\) \[1\].*output_positions"):
            harness.tasks.load("tracr-user-shift", device="cpu")
        register_tracr_program(
            TracrProgram("user-shift", ("a", "b"), 4, _build_shift, output_positions=(2, 3, 4))
        )
        task = harness.tasks.load("tracr-user-shift", device="cpu")
        assert task.train[0].output_positions == (2, 3, 4)
    finally:
        forget_tracr_program("user-shift")


def test_a_program_with_an_empty_ground_truth_is_refused_at_load():
    """make_length reads only the length, equal in every clean/corrupt pair: its resample
    ground truth is empty, and loading says so instead of failing at the first ROC."""

    def build_length():
        from tracr.compiler import lib

        return lib.make_length()

    try:
        register_tracr_program(TracrProgram("user-length", ("a", "b"), 4, build_length))
        with pytest.raises(ValueError, match="derived 'resample' ground truth is empty"):
            harness.tasks.load("tracr-user-length", device="cpu")
    finally:
        forget_tracr_program("user-length")


@pytest.mark.parametrize(
    ("program", "message"),
    [
        (
            TracrProgram("user-negative", ("a", "b"), 3, _build_negative_map, numerical=True),
            r"tracr-user-negative: the compiled model does not compute the program on \d+ of "
            r"\d+ prompts \(e\.g\. input \[.*\], position \d: model 0\.0, program -1\.25\)",
        ),
        (
            TracrProgram("user-negative", ("a", "b"), 3, _build_mean_of_indices),
            r"the program outputs 1\.5 at position \d of input \[.*\], a value the compiled "
            r"model cannot output \(its output values: \[0, 1, 2\]\)",
        ),
        (
            TracrProgram(
                "user-negative", (0, 1, 2), 3, _build_prefix_mean_of_values, numerical=True
            ),
            "tracr-user-negative: tracr cannot compile it: NotImplementedError: Attention "
            "patterns can currently only average binary variables. Not: {0, 1, 2}",
        ),
    ],
)
def test_a_program_tracr_compiles_wrongly_or_not_at_all_is_refused_at_load(program, message):
    """Before: the first loaded and scored against answers its model does not give (AUC
    1.0, exit 0), the second was a KeyError traceback, the third tracr's own error."""
    try:
        register_tracr_program(program)
        with pytest.raises(ValueError, match=message) as error:
            harness.tasks.load("tracr-user-negative", device="cpu")
        assert "\n" not in str(error.value)
    finally:
        forget_tracr_program("user-negative")


TASK_FILE = textwrap.dedent(
    """
    import itertools

    from harness.tasks import TracrProgram, register_tracr_program


    def build():
        from tracr.compiler import lib
        from tracr.rasp import rasp

        return lib.make_sort_unique(rasp.tokens, rasp.tokens)


    register_tracr_program(
        TracrProgram(
            "file-sort", (1, 2, 3, 4), 3, build,
            inputs=lambda: list(itertools.permutations((1, 2, 3, 4), 3)),
        )
    )
    """
)


def test_tasks_from_a_file_on_the_command_line(tmp_path):
    task_file = tmp_path / "my_tasks.py"
    task_file.write_text(TASK_FILE)
    result = run_harness(
        "--threads", "1", "--tasks-from", str(task_file),
        "score", "--task", "tracr-file-sort", "--algo", "eap", "--param", "ablation=zero",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line}
    assert rows["resample"][1] == "6" and rows["zero"][1] == "9"  # circuit edges
    assert 0.0 <= float(rows["zero"][2]) <= 1.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "--tasks-from {path}: no such file"),
        ("directory", "--tasks-from {path}: not a file"),
        ("raise RuntimeError('broken program')", "RuntimeError: broken program"),
        ("import harness.tasks\nharness.tasks.register_tracr_program(3)", "got int"),
    ],
)
def test_a_bad_task_file_is_one_line_and_exit_2(tmp_path, content, message):
    path = tmp_path / "tasks.py"
    if content == "directory":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    result = run_harness("--tasks-from", str(path), "ls", "tasks", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert message.format(path=path) in result.stderr


@pytest.mark.slow
def test_jobs_workers_read_the_task_file(tmp_path):
    """A study on a user's task with ``--jobs 2``: the spawned workers run the task file
    too (through HARNESS_TASKS_FROM) and every trial completes."""
    import yaml

    from harness.records.store import read_records

    task_file = tmp_path / "my_tasks.py"
    task_file.write_text(TASK_FILE)
    study = {
        "version": 1,
        "name": "user-jobs",
        "task": "tracr-file-sort",
        "task_options": {"device": "cpu"},
        "ground_truth": "resample",
        "algorithm": "sp",
        "params": {"tree_optimisation": True, "epochs": 3},
        "search_space": {"learning_rate": {"type": "float", "low": 0.01, "high": 0.3}},
        "n_trials": 2,
        "wandb": {"mode": "disabled"},
        "heldout": {"seeds": 0},
    }
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    result = run_harness(
        "--threads", "1", "--tasks-from", str(task_file), "run", str(tmp_path / "study.yaml"),
        "--runs-dir", str(tmp_path / "runs"), "--no-progress", "--jobs", "2",
        "--report-dir", str(tmp_path / "reports"),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = read_records(tmp_path / "runs" / "user-jobs" / "trials.jsonl")
    assert len(records) == 2 and {r["state"] for r in records} == {"COMPLETE"}
    assert {r["task"] for r in records} == {"tracr-file-sort"}


def test_inputs_of_a_user_program_can_be_constrained():
    """``inputs`` restricts the prompts (here: permutations only)."""
    program = TracrProgram(
        "user-perm", (1, 2, 3), 3, _build_shift,
        inputs=lambda: list(itertools.permutations((1, 2, 3))), output_positions=(2, 3),
    )  # fmt: skip
    try:
        register_tracr_program(program)
        task = harness.tasks.load("tracr-user-perm", device="cpu", n_examples=2, n_validation=1)
        for batch in task.train + task.test:
            for row in batch.clean[:, 1:].tolist():
                assert len(set(row)) == 3
    finally:
        forget_tracr_program("user-perm")
