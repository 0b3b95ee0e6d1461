"""Ground truths derived from the compiled models (harness.tasks.tracr.derive): they equal the
official circuits, they are faithful on the test split, and the derivation is generic."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import harness.tasks
from harness.engine.patching import PatchableModel
from harness.tasks.tracr.compile import load_compiled
from harness.tasks.tracr.derive import (
    DerivationData,
    derive_circuits,
    float64_model,
    information_flow_edges,
    necessary_alone,
    prune_edges,
    residual_spaces,
)
from harness.tasks.tracr.tasks import necessary_alone_counts
from tests.tracr_checks import clean_and_ablated_outputs

PROGRAMS = ("reverse", "proportion")
# The official sets, as the harness typed them in before the derivation (auto-circuit's
# resample circuits, the ACDC paper's zero-ablation circuits): the expectations here.
OFFICIAL = {
    "reverse": {
        "resample": {"Resid Start->A3.0.V", "A3.0->Resid End"},
        "zero": {
            "Resid Start->A0.0.V",
            "Resid Start->MLP 0",
            "Resid Start->MLP 1",
            "Resid Start->A3.0.K",
            "Resid Start->A3.0.V",
            "A0.0->MLP 0",
            "MLP 0->MLP 1",
            "MLP 1->MLP 2",
            "MLP 2->A3.0.Q",
            "A3.0->Resid End",
        },
    },
    "proportion": {
        "resample": {"Resid Start->MLP 0", "MLP 0->A1.0.V", "A1.0->Resid End"},
        "zero": {
            "Resid Start->MLP 0",
            "Resid Start->A1.0.Q",
            "Resid Start->A1.0.K",
            "MLP 0->A1.0.V",
            "A1.0->Resid End",
        },
    },
}
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "circuits"
SHARED_FILES = {"resample": "autocircuit", "zero": "acdc"}
# Measured: edges that change the output when ablated alone (test split, float64).
NECESSARY_ALONE = {"reverse": {"resample": 2, "zero": 8}, "proportion": {"resample": 3, "zero": 5}}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("harness-cache")


@pytest.fixture(scope="module")
def tasks(cache_dir):
    return {
        p: harness.tasks.load(f"tracr-{p}", device="cpu", cache_dir=cache_dir) for p in PROGRAMS
    }


@pytest.mark.parametrize("program", PROGRAMS)
def test_derived_circuits_equal_the_official_ones(tasks, program):
    task = tasks[program]
    assert task.ground_truths == ("resample", "acdc-zero")  # "zero" is not scored twice
    assert task.default_ground_truth == "resample"
    for name in ("resample", "zero"):
        assert task.official_edges(name) == OFFICIAL[program][name], name
    assert task.official_edges("acdc-zero") == task.official_edges("zero")
    assert task.official_edges("resample") < task.official_edges("zero")
    assert task.info["ground_truths"]["acdc-zero"]["source"].startswith("derived by")
    assert task.info["derivation"]["resample_start"] == "zero"
    assert task.info["derivation"]["structural_edges"] == {"reverse": 13, "proportion": 5}[program]


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/circuits is not on this machine")
@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("ground_truth", ("resample", "zero"))
def test_derived_circuits_equal_the_shared_files(tasks, program, ground_truth):
    path = SHARED / f"tracr-{program}_{SHARED_FILES[ground_truth]}.json"
    official = json.loads(path.read_text())
    assert len(official["edges"]) == official["n_edges_official"]
    assert tasks[program].official_edges(ground_truth) == set(official["edges"])
    labels = tuple(official["model"]["residual_labels"])
    assert load_compiled(program, _cache(tasks)).residual_labels == labels


def _cache(tasks):
    return Path(tasks["reverse"].info["weights_cache"]).parent


@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("ground_truth", ("zero", "resample"))
def test_ablating_everything_outside_a_derived_circuit_keeps_the_output(
    tasks, program, ground_truth
):
    """Outside ``zero`` with zeros, outside ``resample`` with the corrupt prompt: the
    output is unchanged to float precision; ablating the circuit too changes it."""
    task = tasks[program]
    circuit = task.official_edges(ground_truth)
    outside = [e.name for e in task.patchable.edges if e.name not in circuit]
    clean, ablated = clean_and_ablated_outputs(task, ground_truth, outside)
    assert (ablated - clean).abs().max() < 1e-5  # measured: <= 6e-7 (float32)
    if not task.test[0].is_regression:
        assert torch.equal(ablated.argmax(-1), clean.argmax(-1))
    every_edge = [e.name for e in task.patchable.edges]
    _, everything = clean_and_ablated_outputs(task, ground_truth, every_edge)
    assert (everything - clean).abs().max() > 0.1


@pytest.mark.parametrize("program", PROGRAMS)
def test_individually_necessary_edges(tasks, program, capsys):
    """How many circuit edges change the output when ablated alone, on the test split;
    reverse's length head is needed in ``zero`` but constant on full-length prompts."""
    task = tasks[program]
    compiled = load_compiled(program, _cache(tasks))
    counts = necessary_alone_counts(compiled, task.test)
    with capsys.disabled():
        print(f"\ntracr-{program} necessary alone (test split): {counts}")
    assert counts == NECESSARY_ALONE[program]
    patchable = PatchableModel.wrap(float64_model(task.model))
    data = DerivationData.from_batches(task.test)
    changes = necessary_alone(patchable, task.official_edges("zero"), data, "zero")
    unneeded = sorted(e for e, change in changes.items() if change <= 1e-5)
    expected = ["A0.0->MLP 0", "Resid Start->A0.0.V"] if program == "reverse" else []
    assert unneeded == expected


def test_structural_edges_from_weights_of_any_model():
    """The read/write derivation on a hand-built model (not tracr): each block reads and
    writes chosen residual dimensions; the edges are exactly the overlaps."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(
        n_layers=2, n_heads=2, d_model=6, d_head=2, d_mlp=3, n_ctx=4, d_vocab=5,
        act_fn="relu", normalization_type=None, init_weights=False,
    )  # fmt: skip
    model = HookedTransformer(cfg)
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
        model.embed.W_E[:, 0] = 1.0  # Resid Start writes d0
        model.blocks[0].attn.W_V[1, 0, 0] = 1.0  # A0.1.V reads d0
        model.blocks[0].attn.W_O[1, 0, 2] = 1.0  # A0.1 writes d2
        model.blocks[0].mlp.W_in[2, 0] = 1.0  # MLP 0 reads d2 (and nothing else)
        model.blocks[0].mlp.W_out[0, 3] = 1.0  # MLP 0 writes d3
        model.blocks[1].attn.W_K[0, 3, 1] = 1.0  # A1.0.K reads d3
        model.blocks[1].attn.W_Q[0, 0, 1] = 1.0  # A1.0.Q reads d0
        model.blocks[1].attn.W_O[0, 1, 5] = 1.0  # A1.0 writes d5
        model.unembed.W_U[5, 0] = 1.0  # Resid End reads d5
    labels = [f"x{i}" for i in range(6)]
    spaces = residual_spaces(model, labels)
    assert spaces.writes["MLP 1"] == frozenset() and spaces.reads["A1.0"] == {0, 3}
    assert information_flow_edges(model, labels) == {
        "Resid Start->A0.1.V": ("x0",),
        "A0.1->MLP 0": ("x2",),
        "Resid Start->A1.0.Q": ("x0",),
        "MLP 0->A1.0.K": ("x3",),
        "A1.0->Resid End": ("x5",),
    }
    combined = information_flow_edges(model, labels, separate_qkv=False)
    assert set(combined) == {
        "Resid Start->A0.1",
        "A0.1->MLP 0",
        "Resid Start->A1.0",
        "MLP 0->A1.0",
        "A1.0->Resid End",
    }


def test_pruning_refuses_an_unfaithful_start(tasks):
    task = tasks["proportion"]
    patchable = PatchableModel.wrap(float64_model(task.model))
    data = DerivationData.from_batches(task.test)
    with pytest.raises(ValueError, match="starting circuit is not faithful under zero"):
        prune_edges(patchable, {"A1.0->Resid End"}, data, "zero")


def test_derivation_is_deterministic_and_independent_of_the_loaded_seed(tasks, cache_dir):
    task = tasks["reverse"]
    compiled = load_compiled("reverse", cache_dir)
    again = harness.tasks.load(
        "tracr-reverse", device="cpu", cache_dir=cache_dir, seed=3, n_examples=20
    )
    assert again.circuits == task.circuits
    data = DerivationData.from_batches(task.test)
    first = derive_circuits(compiled.to_model(), data, compiled.residual_labels)
    second = derive_circuits(compiled.to_model(), data, compiled.residual_labels)
    assert first == second
    assert (first.zero, first.resample) == (task.circuits["acdc-zero"], task.circuits["resample"])
    # the three structural edges zero drops: the TRUE selector's Q/K, tracr's BOS query term
    assert set(first.structural) - first.zero == {
        "Resid Start->A0.0.Q",
        "Resid Start->A0.0.K",
        "Resid Start->A3.0.Q",
    }
    assert first.structural["Resid Start->A3.0.Q"] == ("one",)


def test_cached_load_derives_without_jax(tasks, cache_dir):
    code = (
        "import sys, harness.tasks as t\n"
        f"task = t.load('tracr-reverse', device='cpu', cache_dir={str(cache_dir)!r})\n"
        "print(len(task.official_edges('zero')), len(task.official_edges('resample')))\n"
        "print(sorted(m for m in sys.modules if m == 'jax' or m.startswith(('jax.', 'tracr'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["10 2", "[]"], out.stderr


@pytest.mark.parametrize("program", PROGRAMS)
def test_weight_spaces_agree_with_tracr_spaces(tasks, program):
    """Writes read from the weights equal tracr's declared output spaces; reads are a
    subset of tracr's input spaces (tracr declares dimensions it multiplies by zero)."""
    pytest.importorskip("tracr")
    from harness.tasks.tracr.spaces import tracr_block_spaces

    compiled = load_compiled(program, _cache(tasks))
    spaces = residual_spaces(compiled.to_model(), compiled.residual_labels)
    declared_reads, declared_writes = tracr_block_spaces(program)

    def labels(indices):
        return frozenset(spaces.labels[i] for i in indices)

    for node, declared in declared_writes.items():
        assert labels(spaces.writes[node]) == declared, node
    for node, declared in declared_reads.items():
        assert labels(spaces.reads[node]) <= declared, node
        assert labels(spaces.reads[node]), node  # a compiled block reads something
    # blocks tracr left empty read and write nothing in the weights
    empty = [n for n in spaces.writes if n != "Resid Start" and n not in declared_writes]
    assert all(not spaces.writes[n] for n in empty)
    assert empty == (["A1.0", "A2.0", "MLP 3"] if program == "reverse" else ["A0.0", "MLP 1"])


def test_resample_pruning_falls_back_to_the_structural_start():
    """A query read that zeros leave harmless (a zero query attends uniformly, as every
    clean query here does) but a corrupt query does not: ``zero`` drops it, so
    ``resample`` is pruned from the structural circuit instead, and keeps it."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(
        n_layers=1, n_heads=1, d_model=4, d_head=1, n_ctx=4, d_vocab=2, attn_only=True,
        normalization_type=None, init_weights=False, dtype=torch.float64,
    )  # fmt: skip
    model = HookedTransformer(cfg)
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
        model.embed.W_E[:, 0] = torch.tensor([0.0, 3.0])  # d0: the token
        model.pos_embed.W_pos[:, 1] = torch.arange(4.0)  # d1: the position (keys)
        model.pos_embed.W_pos[:, 2] = torch.arange(4.0)  # d2: the position (values)
        model.blocks[0].attn.W_Q[0, 0, 0] = 1.0
        model.blocks[0].attn.W_K[0, 1, 0] = 1.0
        model.blocks[0].attn.W_V[0, 2, 0] = 1.0
        model.blocks[0].attn.W_O[0, 0, 3] = 1.0
        model.unembed.W_U[3, 0] = 1.0
    clean = torch.tensor([[1, 0, 1, 0], [0, 1, 1, 0]])  # token 0 last: uniform attention
    corrupt = torch.tensor([[0, 0, 1, 1], [1, 1, 0, 1]])  # token 1 last: attends late
    derived = derive_circuits(model, DerivationData(clean, corrupt, (-1,)))
    assert set(derived.structural) == {
        "Resid Start->A0.0.Q",
        "Resid Start->A0.0.K",
        "Resid Start->A0.0.V",
        "A0.0->Resid End",
    }
    assert derived.zero == {"Resid Start->A0.0.V", "A0.0->Resid End"}
    assert derived.resample_start == "structural"
    assert derived.resample == {"Resid Start->A0.0.Q", "A0.0->Resid End"}
