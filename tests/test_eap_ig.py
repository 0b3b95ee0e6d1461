"""EAP-IG: one path point is EAP; completeness as the path gets finer; CPU and CUDA."""

from __future__ import annotations

import pytest
import torch

from harness.algorithms import eap_ig_prune_scores, eap_prune_scores, get_algorithm
from harness.algorithms.edge_attribution import eap_loss
from harness.engine.ablation import ablation_activations
from harness.engine.patching import PatchableModel
from harness.testing.planted import planted_circuit
from tests.conftest import random_model

STEPS = (1, 2, 5, 10, 20, 50)
FAST_STEPS = (1, 4, 16)


@pytest.fixture(scope="module")
def planted():
    return planted_circuit(dtype=torch.float64, n_batches=1, batch_size=8)


@pytest.fixture(scope="module")
def nonlinear():
    """A random float64 model with LayerNorm, GELU MLPs and real attention patterns."""
    from harness.engine.batches import PromptBatch

    model = random_model(seed=3, n_layers=2)
    g = torch.Generator().manual_seed(0)
    clean, corrupt = torch.randint(0, 20, (2, 8, 6), generator=g)
    answers, wrong = torch.randint(0, 20, (2, 8), generator=g)
    batch = PromptBatch.create("nl", clean, corrupt, answers, wrong)
    return PatchableModel.wrap(model), [batch]


@pytest.mark.parametrize("variant", ["inputs", "activations"])
@pytest.mark.parametrize("ablation", ["resample", "mean", "zero"])
def test_one_point_is_eap(nonlinear, variant, ablation):
    patchable, batches = nonlinear
    ig = eap_ig_prune_scores(patchable, batches, steps=1, variant=variant, ablation=ablation)
    eap = eap_prune_scores(patchable, batches, ablation=ablation)
    assert torch.equal(ig.scores, eap.scores)
    assert ig.scores.abs().max() > 0


def total_change(patchable, batches, ablation):
    """loss(every edge ablated) − loss(clean), mean over examples."""
    patches = ablation_activations(patchable, batches, ablation)
    n = sum(b.size for b in batches)
    change = 0.0
    with torch.no_grad():
        for b in batches:
            clean = b.output_logits(patchable.model(b.clean))
            ablated = b.output_logits(
                patchable.forward_patched(
                    b.clean, patches[b.key], torch.ones(1, patchable.n_edges, dtype=torch.float64)
                )
            )
            change += float(
                (eap_loss("auto", ablated, clean, b) - eap_loss("auto", clean, clean, b)).sum()
            )
    return change / n


def relative_errors(patchable, batches, variant, steps_list, ablation="resample", edges=None):
    """|sum of scores − total change| / |total change| for each number of steps."""
    total = total_change(patchable, batches, ablation)
    errors = []
    for steps in steps_list:
        scores = eap_ig_prune_scores(
            patchable, batches, steps=steps, variant=variant, ablation=ablation
        )
        picked = scores.scores if edges is None else scores.scores[edges]
        errors.append(abs(float(picked.sum()) - total) / abs(total))
    return errors


def embedding_edges(patchable):
    return [e.index for e in patchable.edges if e.src.name == "Resid Start"]


def test_completeness_of_the_activations_path(nonlinear):
    """A left Riemann sum of d loss / dt: the error falls like 1 / steps (a random model
    with LayerNorm, GELU and real attention)."""
    patchable, batches = nonlinear
    errors = relative_errors(patchable, batches, "activations", FAST_STEPS)
    assert errors[0] > 1, errors  # one point (EAP) is far off on this model
    assert errors[1] < errors[0] / 3 and errors[2] < errors[1] / 3, errors


def test_completeness_of_the_inputs_path_on_the_embedding_edges(nonlinear):
    """IG on the input embedding: the scores of the edges out of Resid Start add up to
    the total change; summed over every edge, the inputs path does not (it counts a
    source's effect both on its own edges and on its inputs')."""
    patchable, batches = nonlinear
    errors = relative_errors(
        patchable, batches, "inputs", FAST_STEPS, edges=embedding_edges(patchable)
    )
    assert errors[1] < errors[0] / 3 and errors[2] < errors[1] / 3, errors


@pytest.mark.slow
def test_completeness_table(planted, nonlinear):
    """The measurement quoted in harness/algorithms/eap_ig.py (run with -s to see it)."""
    models = {"planted": (planted.patchable, planted.batches), "random-LN": nonlinear}
    rows = []
    for name, (patchable, batches) in models.items():
        for variant in ("activations", "inputs"):
            errors = relative_errors(patchable, batches, variant, STEPS)
            rows.append((name, variant, "all edges", errors))
        errors = relative_errors(
            patchable, batches, "inputs", STEPS, edges=embedding_edges(patchable)
        )
        rows.append((name, "inputs", "Resid Start edges", errors))
    print("\nmodel variant edges " + " ".join(f"{s:>7}" for s in STEPS))
    for name, variant, edges, errors in rows:
        print(f"{name} {variant} {edges} " + " ".join(f"{e:7.4f}" for e in errors))
    activations = [r[3] for r in rows if r[1] == "activations"]
    assert all(e[-1] < e[0] / 20 for e in activations), activations
    embedding = [r[3] for r in rows if r[2] == "Resid Start edges"]
    assert all(e[-1] < e[0] / 20 for e in embedding), embedding


def test_bad_parameters_are_refused_in_one_line(planted):
    spec = get_algorithm("eap-ig")
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got 0"):
        spec.check({"steps": 0})
    with pytest.raises(ValueError, match="variant"):
        spec.check({"variant": "embeddings"})
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        eap_ig_prune_scores(planted.patchable, planted.batches, steps=0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("variant", ["inputs", "activations"])
def test_runs_on_cuda_as_on_cpu(variant):
    cpu = planted_circuit(dtype=torch.float64, n_batches=1, batch_size=8)
    gpu = planted_circuit(dtype=torch.float64, n_batches=1, batch_size=8, device="cuda")
    a = eap_ig_prune_scores(cpu.patchable, cpu.batches, steps=4, variant=variant)
    b = eap_ig_prune_scores(gpu.patchable, gpu.batches, steps=4, variant=variant)
    assert torch.allclose(a.scores, b.scores, rtol=1e-9, atol=1e-12)
