"""SP with default arguments computes what the reference (auto-circuit 1.0.1) computes.

The reference's training loop is restated here on plain transformer_lens hooks (nothing
imported from the harness but the edge names and the batches): mask logits start at
``+init_val`` in tree mode and ``−init_val`` otherwise, every batch's sources are patched
toward the token-wise mean of all corrupt prompts, the base run is the clean prompts in
tree mode and the corrupt prompts otherwise, the loss is the faithfulness term plus
``λ ·`` (edges kept or patched) / n_edges (plus the avoid penalty), Adam steps once per
batch, and the scores are ``|extreme logit| ± logit``. Masks are deterministic
(``sigmoid`` or raw logits), so the two trainings must agree to float64 rounding.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from harness.algorithms import subnetwork_probing_prune_scores as sp
from harness.engine.batches import PromptBatch
from tests.conftest import random_model
from tests.test_patching import prepared, reference_patched, source_value

TOLERANCE = 1e-8
INIT_VAL = math.log(5.0)  # the reference's default init_val


def make_batches(n_vocab_out: int) -> list[PromptBatch]:
    generator = torch.Generator().manual_seed(7)
    batches = []
    for i in range(2):
        clean = torch.randint(0, 20, (3, 5), generator=generator)
        corrupt = torch.randint(0, 20, (3, 5), generator=generator)
        if n_vocab_out == 1:  # a numerical output: float targets
            answers = torch.randn(3, generator=generator, dtype=torch.float64)
            batches.append(PromptBatch.create(f"b{i}", clean, corrupt, answers))
        else:
            answers = torch.randint(0, n_vocab_out, (3,), generator=generator)
            wrong = torch.randint(0, n_vocab_out, (3,), generator=generator)
            batches.append(PromptBatch.create(f"b{i}", clean, corrupt, answers, wrong))
    return batches


def reference_sp(
    reference,
    edge_names,
    batches,
    *,
    tree,
    target,
    mask_fn,
    epochs,
    learning_rate=0.1,
    regularize_lambda=10.0,
    init_val=INIT_VAL,
    avoid=(),
    avoid_lambda=1.0,
):
    """The reference's SP, restated on plain hooks; returns its scores per edge."""
    reference.requires_grad_(False)  # the masks are the only parameters
    sources = sorted({e.split("->")[0] for e in edge_names})
    corrupt = torch.cat([b.corrupt for b in batches])
    _, cache = reference.run_with_cache(corrupt)
    mean = {s: source_value(cache, s).mean(0, keepdim=True) for s in sources}
    clean_logits = {b.key: reference(b.clean)[:, -1] for b in batches}  # [batch, vocab]

    logits = torch.full(
        (len(edge_names),), init_val if tree else -init_val, dtype=torch.float64
    ).requires_grad_(True)
    optimiser = torch.optim.Adam([logits], lr=learning_rate)
    avoid_index = [edge_names.index(e) for e in avoid]
    for _ in range(epochs):
        for batch in batches:
            masks = torch.sigmoid(logits) if mask_fn == "sigmoid" else logits
            weights = list(masks.unbind())
            run = batch.clean if tree else batch.corrupt
            out = reference_patched(reference, run, mean, list(edge_names), weights)[:, -1]
            if target == "kl_div":
                faith = (
                    F.kl_div(
                        F.log_softmax(out, -1),
                        F.log_softmax(clean_logits[batch.key], -1),
                        reduction="sum",
                        log_target=True,
                    )
                    / out.shape[0]
                )
            else:  # mse of the single numerical output against the answers
                faith = F.mse_loss(out, batch.answers)
            on = masks.sum()
            regularize = (len(edge_names) - on if tree else on) / len(edge_names)
            for i in avoid_index:
                penalty = logits[i]
                if mask_fn == "sigmoid":
                    penalty = torch.sigmoid(penalty)
                regularize = regularize + (-1 if tree else 1) * avoid_lambda / len(avoid) * penalty
            loss = faith + regularize * regularize_lambda
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    final = logits.detach()
    if tree:
        return final.max().abs() - final
    return final.min().abs() + final


CASES = [
    pytest.param(True, "kl_div", "sigmoid", (), id="tree-kl-sigmoid"),
    pytest.param(False, "kl_div", "sigmoid", (), id="nontree-kl-sigmoid"),
    pytest.param(True, "mse", "none", (), id="tree-mse-none"),
    pytest.param(False, "mse", "sigmoid", (), id="nontree-mse-sigmoid"),
    pytest.param(True, "kl_div", "none", ("A0.1->MLP 1", "A1.0->Resid End"), id="tree-avoid"),
    pytest.param(False, "kl_div", "sigmoid", ("A0.1->MLP 1",), id="nontree-avoid"),
]


@pytest.mark.parametrize("tree,target,mask_fn,avoid", CASES)
def test_defaults_equal_the_reference(tree, target, mask_fn, avoid):
    n_vocab_out = 1 if target == "mse" else 20
    model = random_model(n_layers=2, n_heads=2, d_vocab_out=n_vocab_out)
    patchable, reference = prepared(model)
    batches = make_batches(n_vocab_out)
    # only the parameters the comparison needs to make deterministic are set
    ours = sp(
        patchable,
        batches,
        tree_optimisation=tree,
        faithfulness_target=target,
        mask_fn=mask_fn,
        epochs=4,
        regularize_lambda=0.5,  # λ 10 drowns the faithfulness gradient in 4 epochs
        avoid_edges=set(avoid) or None,
        progress=False,
    )
    expected = reference_sp(
        reference,
        list(patchable.graph.edge_names),
        batches,
        tree=tree,
        target=target,
        mask_fn=mask_fn,
        epochs=4,
        regularize_lambda=0.5,
        avoid=avoid,
    )
    assert ours.semantics == ("tree" if tree else "corrupt-run")
    spread = float(expected.max() - expected.min())
    assert spread > 1e-3, "the training must move the masks for the check to mean anything"
    worst = float((ours.scores - expected).abs().max())
    print(f"max |ours - reference| = {worst:.2e} (score spread {spread:.3f})")
    assert worst < TOLERANCE


def test_the_old_restore_mode_is_an_explicit_option_and_differs():
    """``restore_clean=True`` restores clean activations into the ablated run: another
    computation than the reference's, named in the result."""
    model = random_model(n_layers=2, n_heads=2)
    patchable, _ = prepared(model)
    batches = make_batches(20)
    options = dict(mask_fn="sigmoid", epochs=3, regularize_lambda=0.5, progress=False)
    default = sp(patchable, batches, **options)
    restored = sp(patchable, batches, restore_clean=True, **options)
    assert (default.semantics, restored.semantics) == ("corrupt-run", "restore-clean")
    assert float((default.scores - restored.scores).abs().max()) > 1e-3


def test_resample_without_tree_optimisation_is_refused():
    model = random_model(n_layers=1, n_heads=2)
    patchable, _ = prepared(model)
    with pytest.raises(ValueError, match="every mask is a no-op"):
        sp(patchable, make_batches(20), ablation="resample", progress=False)
