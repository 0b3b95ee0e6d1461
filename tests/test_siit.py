"""SIIT-trained tracr models: interchange is exact, the alignment and ground truths are
what the training enforces, training is deterministic and resumes after a kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from harness.engine.graph import EdgeGraph
from harness.tasks.siit.alignment import Alignment, all_nodes
from harness.tasks.siit.build import trained_model
from harness.tasks.siit.data import siit_data
from harness.tasks.siit.ground_truth import ablation_accuracy, node_induced_edges
from harness.tasks.siit.interchange import node_activations, run_patched
from harness.tasks.siit.metrics import siit_metrics
from harness.tasks.siit.sizing import parameter_count, trained_config
from harness.tasks.siit.training import STRICT_NODES, SiitSettings, draw_step, train_siit
from harness.tasks.siit.weight_files import read_siit
from harness.tasks.tracr.compile import load_compiled
from tests.conftest import random_model

ROOT = Path(__file__).resolve().parents[1]


def test_patching_one_head_moves_the_logits_by_its_output_difference():
    """In a one-layer attention-only model the logits are linear in each head's z:
    patching head j from the source adds exactly (z_src - z_base) W_O[j] W_U (float64)."""
    model = random_model(n_layers=1, attn_only=True, normalization_type=None)
    generator = torch.Generator().manual_seed(3)
    base = torch.randint(0, 20, (3, 6), generator=generator)  # [batch, pos]
    source = torch.randint(0, 20, (3, 6), generator=generator)
    _, base_cache = model.run_with_cache(base)
    _, source_cache = model.run_with_cache(source)
    for head in range(model.cfg.n_heads):
        z_base = base_cache["blocks.0.attn.hook_z"][:, :, head]  # [batch, pos, d_head]
        z_source = source_cache["blocks.0.attn.hook_z"][:, :, head]
        expected = model(base) + (z_source - z_base) @ model.W_O[0, head] @ model.W_U
        patched = run_patched(model, base, node_activations(model, source, [f"A0.{head}"]))
        torch.testing.assert_close(patched, expected, rtol=0, atol=1e-12)


def test_patching_an_mlp_replaces_its_output():
    model = random_model(normalization_type=None)
    base, source = torch.arange(6)[None], torch.arange(6, 12)[None]  # [1, pos]
    taken = node_activations(model, source, ["MLP 1"])
    seen = {}
    model.run_with_hooks(
        base,
        fwd_hooks=[("blocks.1.hook_mlp_out", lambda a, hook: seen.setdefault("x", a))],
    )
    _, cache = model.run_with_cache(source)
    torch.testing.assert_close(taken["MLP 1"], cache["blocks.1.hook_mlp_out"])
    out = run_patched(model, base, taken)

    def replace(activation, hook):
        return cache["blocks.1.hook_mlp_out"]

    torch.testing.assert_close(
        out, model.run_with_hooks(base, fwd_hooks=[("blocks.1.hook_mlp_out", replace)])
    )


def test_sizing_and_alignment_of_hist():
    compiled = load_compiled("hist")
    config = trained_config(compiled.config)
    model = trained_model(config, _new_state(config))
    assert parameter_count(model) == 1822  # 2 layers x 4 heads, d_model 8 (InterpBench's sizing)
    assert config["attention_dir"] == "bidirectional" and config["normalization_type"] is None
    alignment = siit_data(compiled).alignment(config["n_layers"], config["n_heads"])
    assert alignment.circuit == ("A0.0", "MLP 0")
    assert set(alignment.outside) | set(alignment.circuit) == set(all_nodes(2, 4))
    graph = EdgeGraph.from_config(model.cfg)
    edges = node_induced_edges(graph, alignment.circuit)
    assert len(edges) == 8 and "Resid Start->A0.0.V" in edges and "A1.0->Resid End" not in edges


def _new_state(config):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    return HookedTransformer(HookedTransformerConfig(**config)).state_dict()


def test_alignment_refuses_nodes_the_model_lacks():
    with pytest.raises(ValueError, match="do not exist"):
        Alignment.from_edges(["A3.0->Resid End"], n_layers=2, n_heads=4)


def test_metrics_of_the_tracr_model_itself_are_perfect():
    """The tracr model implements its own circuit: accuracy and IIA 1, and its idle nodes
    are unused (strict and joint 1)."""
    compiled = load_compiled("sort")
    data = siit_data(compiled)
    n_layers, n_heads = compiled.config["n_layers"], compiled.config["n_heads"]
    metrics = siit_metrics(data.tracr, data, data.alignment(n_layers, n_heads))
    assert (metrics["accuracy"], metrics["iia"], metrics["strict"], metrics["joint"]) == (
        1,
        1,
        1,
        1,
    )
    assert ablation_accuracy(data.tracr, data, data.tracr_circuits["resample"]) == 1.0
    assert ablation_accuracy(data.tracr, data, []) < 0.9  # ablating everything breaks it


def test_training_is_deterministic_and_learns(tmp_path):
    compiled = load_compiled("hist")
    settings = SiitSettings(steps=40, batch_size=32, eval_every=20, stop_at=None)
    first = train_siit(compiled, settings)
    second = train_siit(compiled, settings)
    for name, value in first.state_dict.items():
        assert torch.equal(value, second.state_dict[name]), name
    losses = [entry["losses"]["behaviour"] for entry in first.history]
    assert losses[-1] < losses[0]


def test_strict_draws_one_a_subset_or_every_outside_node():
    data = siit_data(load_compiled("hist"))
    alignment = data.alignment(2, 4)
    generator = torch.Generator().manual_seed(0)
    sizes = {
        which: {len(draw_step(data, alignment, generator, 4, which).resampled) for _ in range(60)}
        for which in STRICT_NODES
    }
    assert sizes["one"] == {1}
    assert sizes["all"] == {len(alignment.outside)}
    assert min(sizes["subset"]) == 1 and max(sizes["subset"]) == len(alignment.outside)
    picked = draw_step(data, alignment, generator, 4, "subset").resampled
    assert set(picked) <= set(alignment.outside) and picked == sorted(picked, key=picked.index)
    with pytest.raises(ValueError, match="strict_nodes must be one of"):
        SiitSettings(strict_nodes="some")


def test_silent_outside_nodes_start_with_zero_output_weights():
    compiled = load_compiled("hist")
    settings = SiitSettings(steps=1, batch_size=4, silent_outside=True, learning_rate=1e-9)
    run = train_siit(compiled, settings)
    model = trained_model(run.config, run.state_dict)
    # after one step of a tiny learning rate the silenced weights are (almost) zero
    for node in run.alignment.outside:
        layer = int(node.split(".")[0][1:]) if node.startswith("A") else int(node.split()[1])
        if node.startswith("A"):
            weights = model.blocks[layer].attn.W_O[int(node.split(".")[1])]
        else:
            weights = model.blocks[layer].mlp.W_out
        assert float(weights.detach().abs().max()) < 1e-6, node
    # the circuit's own output weights are untouched
    assert float(model.blocks[0].attn.W_O[0].detach().abs().max()) > 1e-2
    assert float(model.blocks[0].mlp.W_out.detach().abs().max()) > 1e-2


@pytest.mark.parametrize(
    "options",
    [
        {"separate_steps": True},
        {"strict_nodes": "all", "cosine": True, "weight_decay": 0.1, "train_fraction": 1.0},
    ],
)
def test_training_variants_are_deterministic_and_learn(options):
    compiled = load_compiled("hist")
    settings = SiitSettings(steps=40, batch_size=32, eval_every=20, stop_at=None, **options)
    first, second = train_siit(compiled, settings), train_siit(compiled, settings)
    for name, value in first.state_dict.items():
        assert torch.equal(value, second.state_dict[name]), name
    losses = [entry["losses"]["behaviour"] for entry in first.history]
    assert losses[-1] < losses[0]


def test_a_whole_training_set_is_measured_on_every_input():
    data = siit_data(load_compiled("hist"), train_fraction=1.0)
    assert data.train_tokens.shape[0] == data.test_tokens.shape[0] == 3**5
    assert torch.equal(data.train_tokens, data.test_tokens)
    with pytest.raises(ValueError, match=r"train_fraction must be in \(0, 1\]"):
        siit_data(load_compiled("hist"), train_fraction=1.5)


def _train_command(out: Path, checkpoints: Path, steps: int) -> list[str]:
    return [
        sys.executable, "-m", "harness.cli", "--threads", "1", "tasks", "train", "hist",
        "--steps", str(steps), "--batch-size", "32", "--eval-every", "10",
        "--dir", str(out), "--checkpoint-dir", str(checkpoints), "--no-progress",
    ]  # fmt: skip


@pytest.mark.slow  # 27 s: trains hist three times
def test_a_training_killed_with_sigkill_resumes_to_the_same_model(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    whole, resumed, checkpoints = tmp_path / "whole", tmp_path / "resumed", tmp_path / "ckpt"
    steps = 60
    done = subprocess.run(
        _train_command(whole, tmp_path / "ckpt-whole", steps), env=env, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    child = subprocess.Popen(_train_command(resumed, checkpoints, steps), env=env)
    checkpoint = checkpoints / "siit-hist.ckpt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert checkpoint.exists() and not (resumed / "siit-hist.pt.gz").exists()
    step_at_kill = torch.load(checkpoint, weights_only=True)["step"]
    assert 0 < step_at_kill < steps
    again = subprocess.run(
        _train_command(resumed, checkpoints, steps), env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    a, b = read_siit(whole / "siit-hist.pt.gz"), read_siit(resumed / "siit-hist.pt.gz")
    assert a["steps"] == b["steps"] == steps
    for name, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][name]), name
    assert a["history"][-1]["metrics"] == b["history"][-1]["metrics"]
    assert sorted(a["ground_truths"]) == ["siit", "tracr-resample"]
    assert a["ground_truths"]["siit"] == b["ground_truths"]["siit"]
    assert len(a["ground_truths"]["siit"]) == 8


@pytest.mark.parametrize(
    "args, message",
    [
        (["tasks", "train", "histt"], "unknown tracr program 'histt'"),
        (["tasks", "train", "hist", "--steps", "0"], "--steps must be at least 1"),
        (["tasks", "train", "hist", "--lr", "-1"], "--lr must be positive"),
    ],
)
def test_bad_training_input_is_one_line_exit_2(args, message):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_row_patches_equal_separate_runs_and_keep_gradients():
    """Three interventions as slices of one batch give each one's own logits, and the
    unpatched slice's gradient reaches every parameter of the nodes."""
    from harness.tasks.siit.interchange import run_row_patched

    model = random_model(normalization_type=None)
    base, source = torch.arange(6).repeat(2, 1), torch.arange(6, 12).repeat(2, 1)  # [2, pos]
    taken = node_activations(model, source, ["A0.1", "MLP 2"])
    three = torch.cat([base, base, base])
    logits = run_row_patched(
        model, three, {"A0.1": (taken["A0.1"], slice(2, 4)), "MLP 2": (taken["MLP 2"], slice(4, 6))}
    )
    torch.testing.assert_close(logits[:2], model(base), rtol=0, atol=1e-12)
    torch.testing.assert_close(
        logits[2:4], run_patched(model, base, {"A0.1": taken["A0.1"]}), rtol=0, atol=1e-12
    )
    torch.testing.assert_close(
        logits[4:], run_patched(model, base, {"MLP 2": taken["MLP 2"]}), rtol=0, atol=1e-12
    )
    logits[:2].sum().backward()
    assert float(model.blocks[2].mlp.W_out.grad.abs().sum()) > 0


def test_resampling_inside_one_pass_equals_plain_hooks_gradients_included():
    """Source prompts riding in the batch give the patched rows exactly what a plain hook
    run with the source's (undetached) activations gives, and the same gradients: the
    resampled node's own weights learn from the loss on the patched rows."""
    from harness.tasks.siit.interchange import run_row_resampled

    model = random_model(normalization_type=None).double()
    base, source = torch.arange(6).repeat(2, 1), torch.arange(6, 12).repeat(2, 1)  # [2, pos]
    nodes = {"A0.1": ("blocks.0.attn.hook_z", 1), "MLP 2": ("blocks.2.hook_mlp_out", None)}

    logits = run_row_resampled(
        model, torch.cat([base, source]), {n: (slice(0, 2), slice(2, 4)) for n in nodes}
    )  # [4, pos, d_vocab]
    logits[:2].pow(2).mean().backward()
    ours = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()

    stored = {}

    def keep(activation, hook):
        stored[hook.name] = activation  # not detached: gradient flows through the source
        return activation

    def put(activation, hook):
        activation = activation.clone()
        for hook_name, head in nodes.values():
            if hook_name == hook.name:
                if head is None:
                    activation = stored[hook_name].clone()
                else:
                    activation[:, :, head] = stored[hook_name][:, :, head]
        return activation

    hooks = sorted({hook for hook, _ in nodes.values()})
    clean_source = model.run_with_hooks(source, fwd_hooks=[(h, keep) for h in hooks])
    plain = model.run_with_hooks(base, fwd_hooks=[(h, put) for h in hooks])
    torch.testing.assert_close(logits[:2], plain, rtol=0, atol=1e-12)
    torch.testing.assert_close(logits[2:], clean_source, rtol=0, atol=1e-12)
    plain.pow(2).mean().backward()
    for name, param in model.named_parameters():
        # b_K moves every score of a query alike: its gradient is rounding (~1e-17)
        torch.testing.assert_close(ours[name], param.grad, rtol=1e-9, atol=1e-10, msg=name)
    # the patched MLP's own input weights get a gradient only through the source prompts
    assert float(ours["blocks.2.mlp.W_in"].abs().sum()) > 0


def test_interpbench_layout_round_trip_and_loads_as_a_task(tmp_path):
    """A trained model exported in InterpBench's layout reads back as the same model and
    edges, and loads as a task (what a user with a downloaded case does)."""
    from harness.tasks import load
    from harness.tasks.siit.build import train_files
    from harness.tasks.siit.interpbench import read_interpbench
    from harness.tasks.siit.tasks import export_siit_interpbench

    weights = tmp_path / "weights"
    train_files(["hist"], SiitSettings(steps=2, batch_size=8, eval_every=2), weights)
    stored = read_siit(weights / "siit-hist.pt.gz")
    case = export_siit_interpbench("hist", tmp_path / "case", weights)
    assert sorted(p.name for p in case.iterdir()) == [
        "edges.pkl", "ll_model.pth", "ll_model_cfg.pkl", "meta.json"
    ]  # fmt: skip
    back = read_interpbench(case)
    assert back["edges"] == stored["ground_truths"]["siit"]
    for name, value in stored["state_dict"].items():
        assert torch.equal(back["state_dict"][name], value), name
    task = load("interpbench", path=str(case), device="cpu")
    assert task.official_edges() == frozenset(stored["ground_truths"]["siit"])
    tokens = task.test[0].clean
    expected = trained_model(stored["config"], stored["state_dict"])(tokens)
    torch.testing.assert_close(task.model(tokens), expected, rtol=0, atol=0)


def test_an_interpbench_pickle_that_would_run_code_is_refused(tmp_path):
    """A config pickle that names a callable is refused in one line and runs nothing."""
    import pickle

    from harness.tasks.siit.interpbench import read_interpbench

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    case = tmp_path / "case"
    case.mkdir()
    torch.save({}, case / "ll_model.pth")
    (case / "ll_model_cfg.pkl").write_bytes(pickle.dumps(Payload()))
    (case / "edges.pkl").write_bytes(pickle.dumps([]))
    with pytest.raises(ValueError, match=r"asks for (posix|os)\.system, which is not plain data"):
        read_interpbench(case)
    assert not marker.exists()


def test_interpbench_edges_in_unknown_hooks_are_one_line():
    from harness.tasks.siit.interpbench import interpbench_edge_names

    with pytest.raises(ValueError, match="'blocks.0.hook_nonsense' is no source"):
        interpbench_edge_names([("blocks.0.hook_nonsense", "blocks.1.hook_resid_post")], 2)
