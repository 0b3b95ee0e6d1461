"""EAP: equal to an independent autograd gradient and to finite differences, float64."""

import pytest
import torch

from harness.algorithms import eap_prune_scores as eap
from harness.algorithms import get_algorithm
from harness.engine.ablation import ablation_activations
from harness.engine.batches import PromptBatch
from harness.engine.faithfulness import logit_difference
from harness.engine.patching import PatchableModel
from tests.conftest import random_model


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one thread is faster, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def setup():
    """A float64 model with LayerNorm and MLPs, and two batches with wrong answers."""
    patchable = PatchableModel.wrap(random_model())
    generator = torch.Generator().manual_seed(2)
    batches = []
    for i, size in enumerate((4, 3)):
        clean, corrupt = torch.randint(0, 20, (2, size, 6), generator=generator)
        answers, wrong = torch.randint(0, 20, (2, size, 2, 2), generator=generator)
        batches.append(PromptBatch.create(f"b{i}", clean, corrupt, answers, wrong, (-2, -1)))
    return patchable, batches


def mean_loss(patchable, batches, patches, weights):
    """Mean over all examples of −logit difference, with every edge at ``weights``."""
    total = 0
    for batch in batches:
        logits = patchable.forward_patched(batch.clean, patches[batch.key], weights)
        total = total - logit_difference(batch.output_logits(logits), batch).sum()
    return total / sum(b.size for b in batches)


@pytest.mark.parametrize("ablation", ["resample", "mean", "zero"])
def test_scores_are_the_gradient_at_the_clean_model(setup, ablation):
    patchable, batches = setup
    patches = ablation_activations(patchable, batches, ablation)
    weights = torch.zeros(1, patchable.n_edges, dtype=torch.float64, requires_grad=True)
    (expected,) = torch.autograd.grad(mean_loss(patchable, batches, patches, weights), weights)
    scores = eap(patchable, batches, ablation=ablation)
    assert scores.edge_names == patchable.graph.edge_names
    torch.testing.assert_close(scores.scores, expected[0], rtol=1e-12, atol=1e-14)
    assert (scores.scores != 0).sum() > patchable.n_edges // 2


def test_scores_match_finite_differences(setup):
    patchable, batches = setup
    patches = ablation_activations(patchable, batches, "resample")
    scores = eap(patchable, batches)
    eps = 1e-6
    picked = [name for name, _ in scores.ranked()[:4]] + list(patchable.graph.edge_names[::97])
    with torch.no_grad():
        base = mean_loss(patchable, batches, patches, patchable.edge_weights([]))
        for name in picked:
            nudged = mean_loss(patchable, batches, patches, patchable.edge_weights([name], eps))
            estimate = float((nudged - base) / eps)
            assert estimate == pytest.approx(scores.as_dict()[name], rel=1e-4, abs=1e-8), name


def test_model_weights_untouched(setup):
    patchable, batches = setup
    eap(patchable, batches)
    params = list(patchable.model.parameters())
    assert all(p.requires_grad and p.grad is None for p in params)


def test_planted_only_planted_edges_score(planted):
    scores = eap(planted.patchable, planted.batches)
    nonzero = {name for name, value in scores.as_dict().items() if value != 0}
    assert nonzero == set(planted.edges)


def test_regression_default_is_the_output_value():
    """A numerical output has no wrong answers: ``auto`` differentiates −output."""
    task_free = random_model(d_vocab_out=1)
    patchable = PatchableModel.wrap(task_free)
    generator = torch.Generator().manual_seed(3)
    clean, corrupt = torch.randint(0, 20, (2, 5, 6), generator=generator)
    batch = PromptBatch.create("r", clean, corrupt, torch.rand(5, generator=generator))
    patches = ablation_activations(patchable, [batch], "zero")
    weights = torch.zeros(1, patchable.n_edges, dtype=torch.float64, requires_grad=True)
    logits = patchable.forward_patched(clean, patches["r"], weights)
    loss = -batch.output_logits(logits)[..., 0].mean()
    (expected,) = torch.autograd.grad(loss, weights)
    scores = eap(patchable, [batch], ablation="zero")
    torch.testing.assert_close(scores.scores, expected[0], rtol=1e-12, atol=1e-14)
    assert torch.equal(scores.scores, eap(patchable, [batch], "e", "zero", "answer").scores)
    assert eap(patchable, [batch], metric="mse").scores.abs().max() > 0


def test_tracr_reverse_ranks_the_resample_circuit_first():
    from harness.evaluation.roc import score_roc
    from harness.tasks import load

    task = load("tracr-reverse", device="cpu")
    scores = eap(task.patchable, task.train)
    assert score_roc(scores, task.official_edges("resample")).auc == 1.0
    assert get_algorithm("eap").label == "Edge Attribution Patching"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "kl_div"}, "'kl_div' has zero gradient at the clean model"),
        ({"metric": "mse"}, "'mse' of batch 'b0' compares with the clean logits"),
        ({"metric": "l1"}, "metric 'l1' is not one of auto, logit_diff, answer, mse, kl_div"),
        ({"ablation": "noise"}, "ablation 'noise' is not one of resample, mean, zero"),
    ],
)
def test_bad_input(setup, kwargs, message):
    patchable, batches = setup
    with pytest.raises(ValueError, match=message):
        eap(patchable, batches, **kwargs)


def test_bad_data(setup):
    patchable, batches = setup
    with pytest.raises(ValueError, match="dataloader is empty"):
        eap(patchable, [])
    first = batches[0]
    no_wrong = PromptBatch.create(
        "nw", first.clean, first.corrupt, first.answers, None, first.output_positions
    )
    with pytest.raises(ValueError, match="'logit_diff' needs wrong answers, and batch 'nw'"):
        eap(patchable, [no_wrong], metric="logit_diff")
    assert eap(patchable, [no_wrong]).scores.abs().max() > 0  # auto: the answers' logit
