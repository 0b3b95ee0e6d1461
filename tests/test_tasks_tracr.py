"""The tracr tasks: conversion against tracr itself, the weight cache, batches, and the
meaning of the ground truths (ablating every other edge leaves the output unchanged)."""

import importlib.metadata
import itertools
import subprocess
import sys

import numpy as np
import pytest
import torch

import harness.tasks
from harness.engine.ablation import ablation_activations
from harness.tasks.tracr import compile as tracr_compile
from harness.tasks.tracr.compile import compile_rasp, load_compiled
from harness.tasks.tracr.convert import convert
from harness.tasks.tracr.data import all_inputs, expected_outputs, make_batches
from harness.tasks.tracr.programs import builtin_programs
from harness.tasks.tracr.tasks import GROUND_TRUTH_ABLATIONS
from harness.tasks.tracr.tracr_pypi import tracr_version
from harness.tasks.tracr.weight_files import cache_path

PROGRAMS = ("reverse", "proportion")
SHAPES = {  # n_layers, d_model, d_head, d_mlp, d_vocab, d_vocab_out (the official files)
    "reverse": (4, 41, 12, 30, 5, 3),
    "proportion": (2, 14, 7, 1, 6, 1),
}
GRAPH = {"reverse": (77, 2, 10), "proportion": (23, 3, 5)}  # edges, resample, acdc-zero


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("harness-cache")


@pytest.fixture(scope="module")
def tasks(cache_dir):
    return {
        p: harness.tasks.load(f"tracr-{p}", device="cpu", cache_dir=cache_dir) for p in PROGRAMS
    }


@pytest.mark.parametrize("program", PROGRAMS)
def test_converted_model_equals_tracr(program):
    assembled = compile_rasp(program)
    compiled = convert(program, assembled)
    model = compiled.to_model("cpu")
    assert (
        model.cfg.n_layers,
        model.cfg.d_model,
        model.cfg.d_head,
        model.cfg.d_mlp,
        model.cfg.d_vocab,
        model.cfg.d_vocab_out,
    ) == SHAPES[program]
    vocab = builtin_programs()[program].vocab
    generator = np.random.default_rng(0)
    samples = [list(generator.choice(vocab, size=n)) for n in (1, 2, 3, 4, 5) for _ in range(6)]
    samples = [[v.item() for v in s] for s in samples]
    decode_class = {c: v for v, c in (compiled.output_encoding or {}).items()}
    worst = 0.0
    for values in samples:
        reference = assembled.apply(["BOS", *values])
        tokens = torch.tensor([compiled.encode(values)])  # [1, pos]
        with torch.no_grad():
            logits, cache = model.run_with_cache(tokens)  # [1, pos, d_vocab_out]
        resid = cache[f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"][0].numpy()
        tracr_resid = np.asarray(reference.transformer_output[0])  # [pos, d_model]
        tracr_logits = tracr_resid @ model.W_U.detach().numpy()
        worst = max(
            worst, np.abs(resid - tracr_resid).max(), np.abs(logits[0].numpy() - tracr_logits).max()
        )
        if compiled.output_encoding is None:
            predicted = logits[0, 1:, 0].tolist()
        else:
            predicted = [decode_class[int(c)] for c in logits[0, 1:].argmax(-1)]
        assert predicted == reference.decoded[1:]
    assert worst == 0.0


def test_known_outputs(tasks):
    reverse = tasks["reverse"]
    tokens = torch.tensor([[3, 0, 1, 2]])  # BOS 1 2 3
    assert reverse.model(tokens)[0, 1:].argmax(-1).tolist() == [2, 1, 0]  # 3 2 1
    proportion = tasks["proportion"]
    tokens = torch.tensor([[0, 3, 2, 2, 3]])  # BOS x w w x
    out = proportion.model(tokens)[0, 1:, 0]
    torch.testing.assert_close(out, torch.tensor([1.0, 0.5, 1 / 3, 0.5]))


@pytest.mark.parametrize("program", PROGRAMS)
def test_graph_and_official_circuits(tasks, program):
    task = tasks[program]
    n_edges, n_resample, n_zero = GRAPH[program]
    assert task.patchable.n_edges == n_edges
    assert task.ground_truths == ("resample", "acdc-zero")
    assert task.default_ground_truth == "resample"
    assert len(task.official_edges()) == n_resample
    assert len(task.official_edges("acdc-zero")) == n_zero
    assert task.official_edges("resample") < task.official_edges("acdc-zero")
    assert all(e in task.patchable.graph for c in task.circuits.values() for e in c)
    assert task.faithfulness_target == ("kl_div" if program == "reverse" else "mse")
    assert task.info["tracr"] == "tracr-pypi 1.0.0"
    assert set(task.info["ground_truths"]) == {"resample", "acdc-zero"}


def test_cache_written_and_reused(tmp_path, monkeypatch):
    first = load_compiled("proportion", tmp_path)
    path = cache_path("proportion", tmp_path)
    assert path.exists() and path.name == "tracr-proportion-tracr-pypi-1.0.0.pt"

    def no_compiling(name):
        raise AssertionError("compiled again despite the cache")

    monkeypatch.setattr(tracr_compile, "compile_program", no_compiling)
    again = load_compiled("proportion", tmp_path)
    assert again.residual_labels == first.residual_labels
    assert all(torch.equal(again.state_dict[k], v) for k, v in first.state_dict.items())
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    assert cache_path("proportion") == path
    harness.tasks.load("tracr-proportion", device="cpu")  # from $HARNESS_CACHE_DIR


def test_cached_load_without_tracr_installed(cache_dir, tasks, tmp_path, monkeypatch):
    """A machine given only the cache (no tracr-pypi) loads the pinned version's weights,
    and without them says in one line what to install."""
    real_version = importlib.metadata.version

    def version(name):
        if name == "tracr-pypi":
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    with pytest.raises(ImportError):
        tracr_version()
    loaded = harness.tasks.load("tracr-reverse", device="cpu", cache_dir=cache_dir)
    assert loaded.patchable.n_edges == tasks["reverse"].patchable.n_edges
    with pytest.raises(ImportError, match="pip install tracr-pypi==1.0.0"):
        load_compiled("reverse", tmp_path)


def test_cached_load_imports_no_jax(cache_dir, tasks):
    code = (
        "import sys, harness.tasks as t\n"
        f"t.load('tracr-reverse', device='cpu', cache_dir={str(cache_dir)!r})\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'jax', 'tracr', 'haiku'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_reverse_batches(tasks):
    task = tasks["reverse"]
    (train,), (test,) = task.train, task.test
    assert train.output_positions == (1, 2, 3, 4, 5)
    assert tuple(train.clean.shape) == tuple(train.corrupt.shape) == (121, 6)
    assert tuple(train.answers.shape) == (121, 5, 1) and train.answers.dtype == torch.long
    assert tuple(train.wrong_answers.shape) == (121, 5, 2)
    assert not (train.wrong_answers == train.answers).any()
    assert (train.clean != train.corrupt).any(1).all()
    assert (train.clean[:, 0] == 3).all() and (train.corrupt[:, 0] == 3).all()
    clean_rows = {tuple(r) for r in train.clean.tolist()}
    assert len(clean_rows) == 121 and not clean_rows & {tuple(r) for r in test.clean.tolist()}
    logits = task.model(train.clean)  # the model solves its own task
    assert torch.equal(train.output_logits(logits).argmax(-1), train.answers[..., 0])


def test_proportion_batches_and_options(tasks, cache_dir):
    task = tasks["proportion"]
    assert len(task.train) == len(task.test) == 1
    batch = task.train[0]
    assert batch.is_regression and tuple(batch.answers.shape) == (512, 5)
    out = batch.output_logits(task.model(batch.clean))[..., 0]  # [batch, n_out]
    assert (out - batch.answers).abs().max() < 1e-6
    compiled = load_compiled("proportion", cache_dir)
    train, test = make_batches(compiled, seed=1, n_examples=100, batch_size=32)
    assert [b.size for b in train] == [32, 32, 32, 4] and len(test) == 4
    again, _ = make_batches(compiled, seed=1, n_examples=100, batch_size=32)
    assert torch.equal(train[0].clean, again[0].clean)
    other, _ = make_batches(compiled, seed=2, n_examples=100, batch_size=32)
    assert not torch.equal(train[0].clean, other[0].clean)
    with pytest.raises(ValueError, match="n_examples"):
        make_batches(compiled, n_examples=600)
    assert all_inputs(compiled).shape == (1024, 6)
    assert expected_outputs(compiled, all_inputs(compiled)).dtype == torch.float32


CHECKS = [(p, gt) for p, gt in itertools.product(PROGRAMS, ("resample", "acdc-zero"))]


@pytest.mark.parametrize(("program", "ground_truth"), CHECKS)
def test_ground_truth_reproduces_clean_output(tasks, program, ground_truth):
    """Ablating every edge outside a ground truth (with the ablation it was defined for)
    leaves the output at every output position as it was; ablating all edges does not."""
    task = tasks[program]
    patchable = task.patchable
    ablation = GROUND_TRUTH_ABLATIONS[ground_truth]
    outside = [e.name for e in patchable.edges if e.name not in task.official_edges(ground_truth)]
    for batch in task.train + task.test:
        with torch.no_grad():
            clean = batch.output_logits(task.model(batch.clean))  # [batch, n_out, d_vocab_out]
            if ablation == "resample":
                logits = patchable.run_patched(batch.clean, batch.corrupt, outside)
            else:
                patch = ablation_activations(patchable, [batch], "zero")[batch.key]
                logits = patchable.forward_patched(
                    batch.clean, patch, patchable.edge_weights(outside)
                )
            patched = batch.output_logits(logits)
            everything = patchable.run_patched(batch.clean, batch.corrupt, patchable.edges)
        assert (patched - clean).abs().max() < 1e-5  # measured: 0 (resample), 6e-7 (zero)
        assert (batch.output_logits(everything) - clean).abs().max() > 0.5
        if not batch.is_regression:
            assert torch.equal(patched.argmax(-1), clean.argmax(-1))
