"""Exactness of edge patching against independent computations with plain hooks."""

import copy

import pytest
import torch

from harness.engine.ablation import ablation_activations
from harness.engine.batches import PromptBatch
from harness.engine.patching import PatchableModel
from tests.conftest import random_model

TOLERANCE = 1e-10  # float64


def error(got, expected):
    """Max absolute difference, relative to the expected values' scale where it exceeds 1
    (a model without LayerNorm has logits in the thousands)."""
    got, expected = got.detach(), expected.detach()
    return float((got - expected).abs().max() / max(1.0, float(expected.abs().max())))


def source_value(cache, name):
    """A source's output, read straight from a transformer_lens cache by its name."""
    if name == "Resid Start":
        return cache["blocks.0.hook_resid_pre"]
    if name.startswith("MLP"):
        return cache[f"blocks.{name.split()[1]}.hook_mlp_out"]
    layer, head = map(int, name[1:].split("."))
    return cache[f"blocks.{layer}.attn.hook_result"][:, :, head]


def destination_hook(name, n_layers):
    """(hook name, head index or None) of a destination, parsed from its name."""
    if name == "Resid End":
        return f"blocks.{n_layers - 1}.hook_resid_post", None
    if name.startswith("MLP"):
        return f"blocks.{name.split()[1]}.hook_mlp_in", None
    parts = name[1:].split(".")
    layer, head = int(parts[0]), int(parts[1])
    if len(parts) == 2:
        return f"blocks.{layer}.hook_attn_in", head
    return f"blocks.{layer}.hook_{parts[2].lower()}_input", head


def reference_patched(model, tokens, patch_values, edges, weights=None):
    """Plain transformer_lens hooks: each edge's destination gets w·(patch − live source)."""
    live = {}
    hooks = []
    source_hooks = {"blocks.0.hook_resid_pre"} | {
        f"blocks.{layer}.{h}"
        for layer in range(model.cfg.n_layers)
        for h in ("attn.hook_result", "hook_mlp_out")
    }

    def remember(tensor, hook):
        live[hook.name] = tensor

    hooks += [(name, remember) for name in source_hooks]
    by_dest = {}
    for i, edge in enumerate(edges):
        src, dest = edge.split("->")
        by_dest.setdefault(dest, []).append((src, 1.0 if weights is None else weights[i]))
    for dest, sources in by_dest.items():
        hook_name, head = destination_hook(dest, model.cfg.n_layers)

        def patch(tensor, hook, sources=sources, head=head):
            cache = {k: v for k, v in live.items()}
            delta = sum(w * (patch_values[s] - source_value(cache, s)) for s, w in sources)
            tensor = tensor.clone()
            if head is None:
                tensor += delta
            else:
                tensor[:, :, head] += delta
            return tensor

        hooks.append((hook_name, patch))
    return model.run_with_hooks(tokens, fwd_hooks=hooks)


def prepared(model, separate_qkv=True):
    reference = copy.deepcopy(model)
    reference.set_use_attn_result(True)
    if not model.cfg.attn_only:
        reference.set_use_hook_mlp_in(True)
    if separate_qkv:
        reference.set_use_split_qkv_input(True)
    else:
        reference.set_use_attn_in(True)
    return PatchableModel.wrap(model, separate_qkv=separate_qkv), reference


def source_values_of(reference, tokens, names):
    _, cache = reference.run_with_cache(tokens)
    return {n: source_value(cache, n) for n in names}


def test_no_patched_edges_is_the_unpatched_model(any_model, token_pair):
    clean, corrupt = token_pair
    before_wrapping = any_model(clean)
    patchable = PatchableModel.wrap(any_model)
    got = patchable.run_patched(clean, corrupt, [])
    assert (got - any_model(clean)).abs().max() == 0  # bit for bit, same hook flags
    # per-head results summed in another order than the fused einsum: rounding only
    assert error(got, before_wrapping) < TOLERANCE


def test_all_edges_patched_is_the_corrupt_run(any_model, token_pair):
    clean, corrupt = token_pair
    expected = any_model(corrupt)
    patchable = PatchableModel.wrap(any_model)
    got = patchable.run_patched(clean, corrupt, patchable.graph.edge_names)
    assert error(got, expected) < TOLERANCE


@pytest.mark.parametrize("separate_qkv", [True, False])
def test_one_edge_equals_plain_hooks(any_model, token_pair, separate_qkv):
    clean, corrupt = token_pair
    if not separate_qkv and any_model.cfg.n_key_value_heads is not None:
        with pytest.raises(ValueError, match="grouped-query attention .* use separate_qkv=True"):
            PatchableModel.wrap(any_model, separate_qkv=False)
        return
    patchable, reference = prepared(any_model, separate_qkv)
    sources = [s.name for s in patchable.graph.sources]
    patch_values = source_values_of(reference, corrupt, sources)
    unpatched = reference(clean)
    for edge in (
        "A0.1->A2.1.V" if separate_qkv else "A0.1->A2.3",
        "Resid Start->Resid End",
        "A1.2->Resid End",
    ):
        expected = reference_patched(reference, clean, patch_values, [edge])
        got = patchable.run_patched(clean, corrupt, [edge])
        assert (expected - unpatched).abs().max() > 1e-4, "the edge must matter"
        assert error(got, expected) < TOLERANCE


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_edge_set_equals_plain_hooks(any_model, token_pair, seed):
    clean, corrupt = token_pair
    patchable, reference = prepared(any_model)
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(patchable.n_edges, generator=generator)[: patchable.n_edges // 5]
    edges = [patchable.graph.edge_names[i] for i in chosen.tolist()]
    patch_values = source_values_of(reference, corrupt, [s.name for s in patchable.graph.sources])
    expected = reference_patched(reference, clean, patch_values, edges)
    got = patchable.run_patched(clean, corrupt, edges)
    assert error(got, expected) < TOLERANCE


def test_fractional_per_example_weights_equal_plain_hooks(model, token_pair):
    clean, corrupt = token_pair
    patchable, reference = prepared(model)
    edges = ["Resid Start->A1.0.K", "A0.2->MLP 1", "MLP 1->Resid End", "A2.3->Resid End"]
    patch = patchable.source_activations(corrupt)
    patch_values = source_values_of(reference, corrupt, [s.name for s in patchable.graph.sources])
    weights = torch.zeros(clean.shape[0], patchable.n_edges, dtype=torch.float64)
    per_example = torch.rand(clean.shape[0], len(edges), dtype=torch.float64)
    weights[:, patchable.graph.edge_indices(edges)] = per_example
    got = patchable.forward_patched(clean, patch, weights)
    for b in range(clean.shape[0]):
        single = {k: v[b : b + 1] for k, v in patch_values.items()}
        expected = reference_patched(
            reference, clean[b : b + 1], single, edges, per_example[b].tolist()
        )
        assert error(got[b : b + 1], expected) < TOLERANCE


@pytest.mark.parametrize("ablation", ["mean", "zero"])
def test_mean_and_zero_sources_equal_plain_hooks(model, token_pair, ablation):
    clean, corrupt = token_pair
    patchable, reference = prepared(model)
    batch = PromptBatch.create("b", clean, corrupt, answers=torch.zeros(4, dtype=torch.long))
    patch = ablation_activations(patchable, [batch], ablation)["b"]
    corrupt_values = source_values_of(reference, corrupt, [s.name for s in patchable.graph.sources])
    patch_values = {
        name: value.mean(0, keepdim=True) if ablation == "mean" else torch.zeros_like(value[:1])
        for name, value in corrupt_values.items()
    }
    edges = ["Resid Start->A0.0.Q", "A0.3->A2.1.V", "MLP 0->MLP 2", "A1.1->Resid End"]
    expected = reference_patched(reference, clean, patch_values, edges)
    got = patchable.forward_patched(clean, patch, patchable.edge_weights(edges))
    assert error(got, expected) < TOLERANCE


def test_patching_every_edge_out_of_a_head_equals_replacing_its_output(model, token_pair):
    """A check with no edge arithmetic at all: ablate a head's whole output."""
    clean, corrupt = token_pair
    patchable, reference = prepared(model)
    _, cache = reference.run_with_cache(corrupt)

    def replace(tensor, hook):
        tensor = tensor.clone()
        tensor[:, :, 2] = cache[hook.name][:, :, 2]
        return tensor

    expected = reference.run_with_hooks(clean, fwd_hooks=[("blocks.1.attn.hook_result", replace)])
    edges = [e.name for e in patchable.edges if e.src.name == "A1.2"]
    got = patchable.run_patched(clean, corrupt, edges)
    assert error(got, expected) < TOLERANCE


@pytest.mark.slow  # 93 s on 2 busy cores; make test-slow and CI run it
def test_gradients_match_finite_differences(token_pair):
    clean, corrupt = token_pair
    patchable = PatchableModel.wrap(random_model(n_layers=2, n_heads=2, d_model=16, d_head=8))
    patch = patchable.source_activations(corrupt)
    for n_masks in (1, clean.shape[0]):
        weights = torch.rand(n_masks, patchable.n_edges, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(
            lambda w: patchable.forward_patched(clean, patch, w), (weights,), eps=1e-6, atol=1e-6
        )


def test_resid_start_override_replaces_the_embedding(model, token_pair):
    clean, corrupt = token_pair
    patchable = PatchableModel.wrap(model)
    patch = patchable.source_activations(clean)
    resid = patchable.source_activations(corrupt)[:, 0]
    got = patchable.forward_patched(
        clean, patch, torch.zeros(patchable.n_edges, dtype=torch.float64), resid_start=resid
    )
    assert (got - model(corrupt)).abs().max() < TOLERANCE


def test_hooks_are_inert_outside_patched_runs(model, token_pair):
    clean, _ = token_pair
    before = model(clean)
    patchable = PatchableModel.wrap(model)
    assert (model(clean) - before).abs().max() < TOLERANCE
    patchable.unwrap()
    assert not hasattr(model, "_harness_patchable")


def test_wrapping_twice_keeps_one_set_of_hooks(model, token_pair):
    clean, corrupt = token_pair
    first = PatchableModel.wrap(model)
    second = PatchableModel.wrap(model)
    assert first._handles == [] and second._handles
    everything = second.run_patched(clean, corrupt, second.graph.edge_names)
    assert (everything - model(corrupt)).abs().max() < TOLERANCE


def test_rejects_models_that_are_not_hooked_transformers():
    with pytest.raises(ValueError, match="HookedTransformer, got Linear"):
        PatchableModel.wrap(torch.nn.Linear(2, 2))


def test_rejects_bad_weight_shapes(model, token_pair):
    clean, corrupt = token_pair
    patchable = PatchableModel.wrap(model)
    with pytest.raises(ValueError, match="weights must be"):
        patchable.forward_patched(clean, patchable.source_activations(corrupt), torch.zeros(3))


def _edge_and_parameter_grads(model, forward, edges, weights, parameter_names):
    """Gradients of one scalar of ``forward(weights)`` w.r.t. the edge weights and the
    named model parameters."""
    parameters = dict(model.named_parameters())
    chosen = [parameters[n] for n in parameter_names]
    for p in chosen:
        p.requires_grad_(True)
    out = forward(weights)
    loss = (out[:, -1].log_softmax(-1)[:, 3] + out.square().mean(-1).sum(-1)).sum()
    grads = torch.autograd.grad(loss, [weights, *chosen])
    return grads[0], dict(zip(parameter_names, grads[1:], strict=True))


def test_gradients_through_sources_and_weights_equal_plain_hooks(any_model, token_pair):
    """Gradients reach the edge weights *and* the model's own parameters (through the
    live source values every patched destination subtracts) exactly as through plain
    hooks."""
    clean, corrupt = token_pair
    patchable, reference = prepared(any_model)
    generator = torch.Generator().manual_seed(3)
    chosen = torch.randperm(patchable.n_edges, generator=generator)[: patchable.n_edges // 3]
    edges = [patchable.graph.edge_names[i] for i in chosen.tolist()]
    values = torch.rand(len(edges), dtype=torch.float64, generator=generator)
    patch = patchable.source_activations(corrupt)
    with torch.no_grad():
        patch_values = source_values_of(
            reference, corrupt, [s.name for s in patchable.graph.sources]
        )
    candidates = ["blocks.0.attn.W_O", "blocks.1.attn.W_Q", "blocks.0.ln1.w", "embed.W_E"]
    candidates += ["blocks.0.attn._W_K", "blocks.0.mlp.W_in", "blocks.1.mlp.W_gate"]
    names = [n for n in candidates if n in dict(any_model.named_parameters())]

    def ours(w):
        full = torch.zeros(1, patchable.n_edges, dtype=torch.float64)
        full = full.index_put((torch.zeros_like(chosen), chosen), w)
        return patchable.forward_patched(clean, patch, full)

    def theirs(w):
        return reference_patched(reference, clean, patch_values, edges, list(w.unbind()))

    got_w, got_p = _edge_and_parameter_grads(
        any_model, ours, edges, values.clone().requires_grad_(), names
    )
    want_w, want_p = _edge_and_parameter_grads(
        reference, theirs, edges, values.clone().requires_grad_(), names
    )
    assert error(got_w, want_w) < TOLERANCE
    for name in names:
        assert want_p[name].abs().max() > 1e-6, name
        assert error(got_p[name], want_p[name]) < TOLERANCE, name


def test_gradients_to_parameters_without_weight_gradients(model, token_pair):
    clean, corrupt = token_pair
    patchable, reference = prepared(model)
    patch = patchable.source_activations(corrupt)
    edges = ["A0.1->A2.3.V", "MLP 0->Resid End", "Resid Start->A1.0.Q"]
    with torch.no_grad():
        patch_values = source_values_of(
            reference, corrupt, [s.name for s in patchable.graph.sources]
        )
    weights = patchable.edge_weights(edges)  # no grad
    ours = patchable.forward_patched(clean, patch, weights)[:, -1, 2].sum()
    theirs = reference_patched(reference, clean, patch_values, edges)[:, -1, 2].sum()
    (got,) = torch.autograd.grad(ours, [model.blocks[0].attn.W_O])
    (want,) = torch.autograd.grad(theirs, [reference.blocks[0].attn.W_O])
    assert want.abs().max() > 1e-6
    assert error(got, want) < TOLERANCE


def test_backward_twice_with_retained_graph_gives_the_same_gradients(model, token_pair):
    clean, corrupt = token_pair
    patchable = PatchableModel.wrap(model)
    patch = patchable.source_activations(corrupt)
    weights = torch.rand(clean.shape[0], patchable.n_edges, dtype=torch.float64)
    weights.requires_grad_(True)
    loss = patchable.forward_patched(clean, patch, weights)[:, -1].logsumexp(-1).sum()
    (first,) = torch.autograd.grad(loss, [weights], retain_graph=True)
    (second,) = torch.autograd.grad(loss, [weights])
    assert first.abs().max() > 0
    assert torch.equal(first, second)


def test_a_patch_tiles_a_repeated_batch(model, token_pair):
    clean, corrupt = token_pair
    patchable = PatchableModel.wrap(model)
    patch = patchable.source_activations(corrupt)  # [4, ...]
    resid = patchable.source_activations(clean)[:, 0]
    weights = torch.rand(3 * clean.shape[0], patchable.n_edges, dtype=torch.float64)
    tiled = patchable.forward_patched(clean.repeat(3, 1), patch, weights, resid)
    for r in range(3):
        rows = slice(r * clean.shape[0], (r + 1) * clean.shape[0])
        alone = patchable.forward_patched(clean, patch, weights[rows], resid)
        assert error(tiled[rows], alone) < TOLERANCE
    with pytest.raises(ValueError, match="patch has 4 examples, which do not tile a batch of 6"):
        patchable.forward_patched(clean.repeat(2, 1)[:6], patch, weights[:1])


def test_a_patched_pass_frees_its_buffers_once_its_graph_is_gone(model, token_pair):
    """The chain's autograd nodes refer to the pass's state; the state must not refer
    back to them, or every SP step would leak its buffers (a cycle through C++)."""
    import weakref

    clean, corrupt = token_pair
    patchable = PatchableModel.wrap(model)
    patch = patchable.source_activations(corrupt)
    seen = []
    handle = model.blocks[0].hook_resid_pre.register_forward_hook(
        lambda *_: seen.append(weakref.ref(patchable._state))
    )
    weights = torch.rand(clean.shape[0], patchable.n_edges, dtype=torch.float64)
    weights.requires_grad_(True)
    patchable.forward_patched(clean, patch, weights).sum().backward()
    handle.remove()
    assert len(seen) == 1 and seen[0]() is None


def test_two_passes_then_one_backward_add_up(model, token_pair):
    """Each pass keeps its own chain and buffers: one backward through two passes gives
    the sum of their gradients."""
    clean, corrupt = token_pair
    patchable = PatchableModel.wrap(model)
    patch = patchable.source_activations(corrupt)
    weights = torch.rand(1, patchable.n_edges, dtype=torch.float64, requires_grad=True)

    def loss(tokens):
        return patchable.forward_patched(tokens, patch, weights)[:, -1].logsumexp(-1).sum()

    (first,) = torch.autograd.grad(loss(clean), [weights])
    (second,) = torch.autograd.grad(loss(clean.flip(0)), [weights])
    (both,) = torch.autograd.grad(loss(clean) + loss(clean.flip(0)), [weights])
    assert error(both, first + second) < TOLERANCE
