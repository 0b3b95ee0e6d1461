"""The tracr suite: every task loads from the package's files without JAX, its model
computes what the program's plain-Python reference says, its derived circuits are
faithful on the test split and equal the committed ones, and its data splits behave."""

import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys

import pytest
import torch

import harness.tasks
from harness.cli import main
from harness.tasks import get_task_spec, suite_tasks
from harness.tasks.base import check_task_options
from harness.tasks.tracr.compile import load_compiled
from harness.tasks.tracr.data import all_inputs, make_splits
from harness.tasks.tracr.tasks import (
    circuits_payload,
    derive_program_circuits,
    necessary_alone_counts,
)
from harness.tasks.tracr.weight_files import (
    PACKAGED_DIR,
    packaged_path,
    packaged_summary,
    read_payload,
)
from tests.tracr_checks import clean_and_ablated_outputs

SUITE = suite_tasks("tracr-suite")
PROGRAMS = [slug.removeprefix("tracr-") for slug in SUITE]
# sha256 prefixes of the train and test batches (clean, corrupt, answers, wrong answers,
# positions, keys) measured with the code before the suite (commit b57eb31)
LEGACY_DIGESTS = {
    ("reverse", 0, None, None): ("ae6c2881fc5d6be9", "c27d8c9b5b6af252"),
    ("reverse", 3, 20, 8): ("6d8988f9d84ef419", "74fd4eb41fce8937"),
    ("proportion", 0, None, None): ("51ea655e6a366cd6", "8f3769b61fcbbd74"),
    ("proportion", 3, 20, 8): ("3becb014eab625ee", "f117c9a47d0567d8"),
}


@pytest.fixture(scope="module")
def tasks():
    return {slug: harness.tasks.load(slug, device="cpu") for slug in SUITE}


def _digest(batches):
    digest = hashlib.sha256()
    for b in batches:
        for tensor in (b.clean, b.corrupt, b.answers, b.wrong_answers):
            digest.update(tensor.contiguous().numpy().tobytes())
        digest.update(str(b.output_positions).encode())
        digest.update(b.key.encode())
    return digest.hexdigest()[:16]


def test_suite_is_registered_and_varied(tasks):
    assert len(SUITE) >= 20 and SUITE[:2] == ["tracr-reverse", "tracr-proportion"]
    assert len(set(SUITE)) == len(SUITE)
    layers = {t.model.cfg.n_layers for t in tasks.values()}
    heads = {t.model.cfg.n_heads for t in tasks.values()}
    assert min(layers) == 1 and max(layers) >= 6 and max(heads) >= 3
    numerical = sum(get_task_spec(slug).numerical_output for slug in SUITE)
    assert 3 <= numerical < len(SUITE) - 3
    with pytest.raises(ValueError, match="did you mean 'tracr-suite'"):
        suite_tasks("tracr-suit")


@pytest.mark.parametrize("slug", SUITE)
def test_circuits_are_proper_and_nonempty(tasks, slug):
    """AUC needs both classes: every ground truth is nonempty and not the whole graph."""
    task = tasks[slug]
    n_edges = task.patchable.n_edges
    zero, resample = task.official_edges("zero"), task.official_edges("resample")
    assert 0 < len(resample) <= len(zero) < n_edges
    assert task.default_ground_truth == "resample"
    assert task.info["derivation"]["resample_start"] == "zero"
    assert resample <= zero


@pytest.mark.parametrize("slug", SUITE)
def test_model_equals_the_plain_python_reference(tasks, slug):
    """On every split, the compiled model's output is the reference's (answers come from
    the reference, never from the model)."""
    task = tasks[slug]
    for batch in task.train + task.validation + task.test:
        with torch.no_grad():
            out = batch.output_logits(task.model(batch.clean))  # [batch, n_out, d_out]
        if batch.is_regression:
            assert (out[..., 0] - batch.answers).abs().max() < 1e-4  # measured: <= 3e-6
        else:
            assert torch.equal(out.argmax(-1), batch.answers[..., 0])


@pytest.mark.parametrize("slug", SUITE)
@pytest.mark.parametrize("ablation", ("zero", "resample"))
def test_ablating_everything_outside_a_circuit_keeps_the_output(tasks, slug, ablation):
    task = tasks[slug]
    circuit = task.official_edges(ablation)
    outside = [e.name for e in task.patchable.edges if e.name not in circuit]
    clean, ablated = clean_and_ablated_outputs(task, ablation, outside)
    assert (ablated - clean).abs().max() < 1e-4  # float32 on the test split
    if not task.test[0].is_regression:
        assert torch.equal(ablated.argmax(-1), clean.argmax(-1))


# re-deriving the programs of more than 100 edges takes 5-40 s each: slow
DERIVATION_CASES = [
    pytest.param(p, marks=pytest.mark.slow) if packaged_summary(p)["edges"] > 100 else p
    for p in PROGRAMS
]


@pytest.mark.parametrize("program", DERIVATION_CASES)
def test_committed_circuits_equal_the_derivation(program):
    """The circuits shipped with the weights are what the derivation gives on them now
    (no JAX: the derivation reads the weights), necessary-alone counts included."""
    compiled = load_compiled(program)
    shipped = dict(compiled.derived)
    necessary = shipped.pop("necessary_alone")
    unshipped = dataclasses.replace(compiled, derived=None)
    assert circuits_payload(derive_program_circuits(unshipped)) == shipped
    assert necessary_alone_counts(unshipped) == necessary
    assert 0 < necessary["resample"] <= len(shipped["resample"])


def test_load_is_offline_fast_and_imports_no_jax():
    code = (
        "import sys, time\n"
        "start = time.perf_counter()\n"
        "import harness.tasks as t\n"
        "tasks = [t.load(s, device='cpu') for s in t.suite_tasks('tracr-suite')]\n"
        "seconds = time.perf_counter() - start\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'tracr', 'haiku'))\n"
        "print(len(tasks), seconds, loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    n, seconds, loaded = out.stdout.split(" ", 2)
    assert int(n) == len(SUITE) and loaded.strip() == "[]", out.stderr
    assert float(seconds) < 30  # measured about 3 s on a busy 2-core machine


def test_shipped_files_are_small():
    files = sorted(PACKAGED_DIR.glob("tracr-*.pt.gz"))
    assert [f.name for f in files] == sorted(packaged_path(p).name for p in PROGRAMS)
    assert sum(f.stat().st_size for f in files) < 512 * 1024


@pytest.mark.parametrize("key", sorted(LEGACY_DIGESTS, key=str))
def test_reverse_and_proportion_keep_their_data(key):
    program, seed, n, batch_size = key
    task = harness.tasks.load(
        f"tracr-{program}", device="cpu", seed=seed, n_examples=n, batch_size=batch_size
    )
    assert (_digest(task.train), _digest(task.test)) == LEGACY_DIGESTS[key]


@pytest.mark.parametrize("slug", SUITE)
def test_splits_are_disjoint_where_it_matters(tasks, slug):
    task = tasks[slug]

    def rows(batches):
        return {tuple(r) for b in batches for r in b.clean.tolist()}

    train, validation, test = rows(task.train), rows(task.validation), rows(task.test)
    assert not train & test and not validation & test
    sizes = task.info["splits"]
    assert sizes["train"] == sizes["test"] == len(train) and sizes["validation"] == len(validation)
    if slug not in ("tracr-reverse", "tracr-proportion"):
        assert not train & validation and sizes == {"train": 64, "validation": 64, "test": 64}
    valid = {tuple(r) for r in all_inputs(load_compiled(slug.removeprefix("tracr-"))).tolist()}
    for batch in task.train + task.validation + task.test:
        assert not (batch.clean == batch.corrupt).all(-1).any()  # never the clean prompt
        assert {tuple(r) for r in batch.corrupt.tolist()} <= valid  # e.g. distinct values


def test_validation_of_reverse_and_proportion():
    """Their default splits use up the inputs (243: 121 + 121; 1024: 512 + 512): the
    validation split takes what is left, then train inputs, never test's."""
    reverse = harness.tasks.load("tracr-reverse", device="cpu")
    test_rows = {tuple(r) for b in reverse.test for r in b.clean.tolist()}
    validation_rows = [tuple(r) for b in reverse.validation for r in b.clean.tolist()]
    assert len(validation_rows) == len(set(validation_rows)) == 121
    assert not test_rows & set(validation_rows)
    small = harness.tasks.load("tracr-reverse", device="cpu", n_examples=60, n_validation=100)
    rows = [{tuple(r) for b in s for r in b.clean.tolist()} for s in (small.train, small.test)]
    validation = {tuple(r) for b in small.validation for r in b.clean.tolist()}
    assert len(validation) == 100 and not validation & (rows[0] | rows[1])


def test_split_options():
    compiled = load_compiled("hist")
    first, again = make_splits(compiled, seed=5), make_splits(compiled, seed=5)
    assert all(_digest(a) == _digest(b) for a, b in zip(first, again, strict=True))
    assert _digest(make_splits(compiled, seed=6).train) != _digest(first.train)
    sized = make_splits(compiled, n_examples=50, n_validation=20, batch_size=16)
    assert [b.size for b in sized.validation] == [16, 4]
    assert [b.size for b in sized.train] == [16, 16, 16, 2]
    assert make_splits(compiled, n_validation=0).validation == ()
    with pytest.raises(ValueError, match=r"n_validation must be in 0\.\.179"):
        make_splits(compiled, n_validation=200)
    with pytest.raises(ValueError, match=r"n_examples must be in 1\.\.121"):
        make_splits(compiled, n_examples=122)
    check_task_options(get_task_spec("tracr-hist"), {"n_validation": 3})
    task = harness.tasks.load("tracr-hist", device="cpu", n_validation=10, seed=1)
    assert sum(b.size for b in task.validation) == 10


def test_bad_split_sizes_are_refused_before_anything_runs(tmp_path, capsys):
    """A study whose task_options ask for sizes the inputs cannot give stops in one line,
    exit 2, before a trial runs (it used to run and record every trial as FAIL)."""
    config = tmp_path / "bad.yaml"
    config.write_text(
        "version: 1\nname: bad-sizes\ntask: tracr-hist\n"
        "task_options: {device: cpu, n_validation: 999}\nground_truth: resample\n"
        "algorithm: random\nsearch_space: {}\nn_trials: 1\nwandb: {mode: disabled}\n"
    )
    for command in (["validate", str(config)], ["run", str(config), "--runs-dir", str(tmp_path)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "task_options: n_validation must be in 0..179" in err
    assert not (tmp_path / "bad-sizes").exists()
    for options in ({"n_examples": 0}, {"n_examples": 2.5}, {"batch_size": 0}):
        with pytest.raises(ValueError, match="task_options: (n_examples|batch_size)"):
            check_task_options(get_task_spec("tracr-reverse"), options)


def test_ls_tasks_lists_the_suite(capsys):
    assert main(["ls", "tasks"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    for slug in SUITE:
        assert slug in lines
    assert lines["tracr-reverse"].split()[1:6] == ["4", "1", "77", "resample", "(2),"]
    assert "acdc-zero (10)" in lines["tracr-reverse"]


def test_build_refuses_an_unknown_program_in_one_line(capsys):
    assert main(["tasks", "build", "--check", "tracr-histt"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'tracr-hist'?" in err


@pytest.mark.slow
def test_build_check_passes_and_names_a_tampered_file(tmp_path, capsys):
    """Recompiles with tracr (JAX): the committed files are identical; a file whose
    weights moved by one ulp is named, exit 1."""
    pytest.importorskip("tracr")
    programs = ["reverse", "hist", "running-max"]
    assert main(["tasks", "build", "--check", *programs]) == 0
    for program in programs:
        shutil.copy(packaged_path(program), packaged_path(program, tmp_path))
    payload = read_payload(packaged_path("hist", tmp_path))
    weight = payload["state_dict"]["blocks.0.attn.W_Q"]
    weight.view(-1)[0] = torch.nextafter(weight.view(-1)[0], torch.tensor(1.0))
    from harness.tasks.tracr.weight_files import write_payload

    write_payload(payload, packaged_path("hist", tmp_path))
    capsys.readouterr()
    assert main(["tasks", "build", "--check", "--dir", str(tmp_path), *programs]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tracr-hist: state_dict.blocks.0.attn.W_Q" in err
    assert "tracr-reverse" not in err
    json.dumps(read_payload(packaged_path("reverse"))["derived"])  # plain data
