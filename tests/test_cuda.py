"""Checks that need a CUDA device (run by bench/gpu_check.sh on a lent GPU machine)."""

from __future__ import annotations

import warnings

import pytest
import torch

from harness.algorithms import subnetwork_probing_prune_scores as sp
from harness.algorithms.sp_batched import subnetwork_probing_batched
from harness.engine.patching import PatchableModel
from harness.testing.planted import planted_circuit
from tests.conftest import random_model
from tests.test_patching import TOLERANCE, prepared, reference_patched, source_values_of

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_patching_on_cuda_equals_plain_hooks_in_float64():
    model = random_model().to("cuda")
    patchable, reference = prepared(model)
    generator = torch.Generator().manual_seed(0)
    clean, corrupt = (torch.randint(0, 20, (4, 6), generator=generator).cuda() for _ in range(2))
    edges = [patchable.graph.edge_names[i] for i in range(0, patchable.n_edges, 5)]
    values = source_values_of(reference, corrupt, [s.name for s in patchable.graph.sources])
    expected = reference_patched(reference, clean, values, edges)
    assert (patchable.run_patched(clean, corrupt, edges) - expected).abs().max() < TOLERANCE


def test_cuda_matches_cpu():
    cpu = PatchableModel.wrap(random_model())
    gpu = PatchableModel.wrap(random_model().to("cuda"))
    generator = torch.Generator().manual_seed(1)
    clean, corrupt = (torch.randint(0, 20, (4, 6), generator=generator) for _ in range(2))
    edges = cpu.graph.edge_names[::3]
    on_cpu = cpu.run_patched(clean, corrupt, edges)
    on_gpu = gpu.run_patched(clean.cuda(), corrupt.cuda(), edges).cpu()
    assert (on_cpu - on_gpu).abs().max() < 1e-9


def _syncs(run) -> int:
    """How many times ``run()`` made the host wait for the device (sync debug mode)."""
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message).lower() for w in caught)


def test_sp_on_cuda_finds_the_planted_circuit_without_per_step_syncs():
    planted = planted_circuit(device="cuda")
    batches = planted.batches * 4  # 4 steps per epoch: a per-step sync would show
    epochs, found = 20, []

    def run():
        found.append(
            sp(planted.patchable, batches, tree_optimisation=True, epochs=epochs, progress=False)
        )

    syncs = _syncs(run)
    assert set(found[0].top(len(planted.edges))) == set(planted.edges)
    # the history's three transfers per epoch, and set-up; never one per step (>= 4/epoch)
    assert syncs <= 3 * epochs + 20, syncs


def test_batched_sp_on_cuda_without_per_step_syncs():
    planted = planted_circuit(device="cuda")
    batches = planted.batches * 4
    epochs = 10
    trials = [{"seed": 0, "epochs": epochs}, {"seed": 1, "epochs": epochs // 2}]
    syncs = _syncs(
        lambda: subnetwork_probing_batched(
            planted.patchable, batches, trials, tree_optimisation=True
        )
    )
    assert syncs <= 2 * epochs + 20, syncs


def test_batched_equals_sequential_on_cuda():
    planted = planted_circuit(device="cuda", dtype=torch.float64)
    trials = [{"seed": 0, "epochs": 3}, {"seed": 1, "learning_rate": 0.03, "epochs": 4}]
    together = subnetwork_probing_batched(
        planted.patchable, planted.batches, trials, tree_optimisation=True
    )
    for trial, result in zip(trials, together, strict=True):
        alone = sp(
            planted.patchable, planted.batches, tree_optimisation=True, progress=False, **trial
        )
        assert torch.allclose(result.scores, alone.scores, atol=1e-8, rtol=0)
