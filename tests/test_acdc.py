"""ACDC: the planted circuit, a plain reference implementation, tracr circuits, bad input."""

import pytest
import torch

from harness.algorithms import acdc_prune_scores as acdc
from harness.algorithms import get_algorithm
from harness.algorithms.acdc import circuit_metric, default_thresholds
from harness.evaluation.faithfulness_curve import circuit_faithfulness


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one thread is faster, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tracr():
    from harness.tasks import load

    return {name: load(f"tracr-{name}", device="cpu") for name in ("reverse", "proportion")}


def reference_acdc(patchable, batches, tau, ablation="resample", metric="kl_div"):
    """ACDC as the paper states it: every edge evaluated, no skipping, no sharing."""
    from harness.engine.ablation import ablation_activations

    patches = ablation_activations(patchable, batches, ablation)
    full = [b.output_logits(patchable.model(b.clean)) for b in batches]
    n = sum(b.size for b in batches)

    @torch.no_grad()
    def value(removed):
        weights = removed.to(patchable.dtype)[None]  # [1, n_edges]
        total = 0.0
        for batch, reference in zip(batches, full, strict=True):
            logits = patchable.forward_patched(batch.clean, patches[batch.key], weights)
            out = batch.output_logits(logits)
            total += float(circuit_metric(metric, out, reference, batch).sum())
        return total / n

    graph = patchable.graph
    removed = torch.zeros(graph.n_edges, dtype=torch.bool)
    current = value(removed)
    for dest in reversed(graph.destinations):
        incoming = [e.index for e in graph.edges if e.dest.name == dest.name]
        for index in reversed(incoming):
            removed[index] = True
            trial = value(removed)
            if trial - current < tau:
                current = trial
            else:
                removed[index] = False
    return frozenset(graph.edge_names[i] for i in torch.nonzero(~removed).flatten().tolist())


def test_planted_circuit_found_exactly(planted):
    scores = acdc(planted.patchable, planted.batches, thresholds=[1e-3])
    assert scores.circuit == set(planted.edges)
    assert scores.sweep == ((1e-3, scores.circuit),)
    # edges into nodes without surviving outputs are removed without a forward pass
    assert scores.history["evaluations"][0] < planted.patchable.n_edges


def test_planted_sweep_sizes_do_not_grow_and_scores_follow_the_sweep(planted):
    scores = acdc(planted.patchable, planted.batches)
    taus = [tau for tau, _ in scores.sweep]
    sizes = [len(circuit) for _, circuit in scores.sweep]
    assert taus == sorted(taus) and len(taus) == 21
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == 8, sizes
    assert scores.circuit == scores.sweep[0][1]
    values = scores.as_dict()
    for name, score in values.items():
        kept_at = [tau for tau, circuit in scores.sweep if name in circuit]
        assert score == (max(kept_at) if kept_at else 0.0)
    assert set(scores.top(8)) == set(planted.edges)


def test_sweep_equals_separate_runs_and_the_reference(tracr):
    """Shared work across thresholds and skipped dead nodes change no decision."""
    task = tracr["reverse"]
    taus = [1e-4, 0.1, 0.5]
    sweep = acdc(task.patchable, task.train, thresholds=taus, ablation="zero").sweep
    for tau, circuit in sweep:
        alone = acdc(task.patchable, task.train, thresholds=[tau], ablation="zero")
        assert alone.circuit == circuit
        assert reference_acdc(task.patchable, task.train, tau, "zero") == circuit


def test_planted_matches_the_reference_with_logit_diff(planted):
    batches = planted.batches[:1]
    scores = acdc(planted.patchable, batches, thresholds=[1e-2], metric="logit_diff")
    reference = reference_acdc(planted.patchable, batches, 1e-2, metric="logit_diff")
    assert scores.circuit == reference
    assert scores.circuit <= set(planted.edges)


def test_tracr_reverse_resample_finds_the_resample_ground_truth(tracr):
    task = tracr["reverse"]
    scores = acdc(task.patchable, task.train, thresholds=[1e-3])
    assert scores.circuit == task.official_edges("resample")


def test_tracr_proportion_resample_mse_finds_the_resample_ground_truth(tracr):
    task = tracr["proportion"]
    scores = acdc(task.patchable, task.train, thresholds=[1e-3], metric="mse")
    assert scores.circuit == task.official_edges("resample")


def test_tracr_zero_ablation_circuits(tracr):
    """Proportion: exactly the ACDC paper's 5 edges. Reverse: the paper's 10 edges but the
    path through A0.0 (the length head): every prompt has the full length, and zeroing
    that head's input reads as the maximum length, so the two edges change nothing."""
    proportion = tracr["proportion"]
    scores = acdc(
        proportion.patchable, proportion.train, thresholds=[1e-3], ablation="zero", metric="mse"
    )
    assert scores.circuit == proportion.official_edges("acdc-zero")

    reverse = tracr["reverse"]
    scores = acdc(reverse.patchable, reverse.train, thresholds=[1e-3], ablation="zero")
    paper = reverse.official_edges("acdc-zero")
    assert paper - scores.circuit == {"Resid Start->A0.0.V", "A0.0->MLP 0"}
    assert scores.circuit < paper
    ours = circuit_faithfulness(reverse.patchable, reverse.train, scores.circuit, "zero")
    theirs = circuit_faithfulness(reverse.patchable, reverse.train, paper, "zero")
    assert ours == pytest.approx(theirs, abs=1e-9)


def test_accepts_a_plain_hooked_transformer_and_is_registered():
    from harness.testing.planted import planted_circuit

    fresh = planted_circuit(n_batches=1, batch_size=8)
    scores = acdc(fresh.model, fresh.batches, thresholds=[1e-3], ablation="mean", seed=5)
    assert len(scores) == 262 and scores.circuit == set(fresh.edges)
    assert get_algorithm("acdc").label == "ACDC"
    assert get_algorithm("acdc").function is acdc


def test_default_thresholds():
    taus = torch.tensor(default_thresholds(), dtype=torch.float64)
    assert torch.allclose(taus, 10 ** torch.linspace(-5, 0, 21, dtype=torch.float64), rtol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"thresholds": []}, "thresholds is empty"),
        ({"thresholds": [1e-3, 0.0]}, "finite positive numbers, got 0.0"),
        ({"thresholds": [-1]}, "got -1"),
        ({"thresholds": [float("nan")]}, "got nan"),
        ({"thresholds": ["0.1"]}, "got '0.1'"),
        ({"metric": "l2"}, "metric 'l2' is not one of auto, kl_div, mse, logit_diff"),
        ({"ablation": "noise"}, "ablation 'noise' is not one of resample, mean, zero"),
    ],
)
def test_bad_input(planted, kwargs, message):
    with pytest.raises(ValueError, match=message):
        acdc(planted.patchable, planted.batches, **kwargs)


def test_bad_data(planted, tracr):
    with pytest.raises(ValueError, match="dataloader is empty"):
        acdc(planted.patchable, [])
    task = tracr["proportion"]
    with pytest.raises(ValueError, match="'logit_diff' needs wrong answers"):
        acdc(task.patchable, task.train, metric="logit_diff")
    with pytest.raises(ValueError, match="'kl_div' is always 0 on the numerical output"):
        acdc(task.patchable, task.train, metric="kl_div")


def test_auto_metric_is_kl_for_tokens_and_mse_for_a_number():
    """The default picks the metric the output can give; the scores equal the named one's."""
    from harness.tasks import load

    for task_name, metric in (("tracr-reverse", "kl_div"), ("tracr-proportion", "mse")):
        task = load(task_name, device="cpu", n_examples=16)
        auto = acdc(task.patchable, task.train, thresholds=[1e-3, 1e-1])
        named = acdc(task.patchable, task.train, thresholds=[1e-3, 1e-1], metric=metric)
        assert torch.equal(auto.scores, named.scores)
        assert auto.history["metric"] == named.history["metric"]
