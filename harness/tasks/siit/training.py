"""Strict Interchange Intervention Training (SIIT) of a transformer to implement a
compiled tracr program's circuit.

Three losses on every step, summed into one backward pass (each skips BOS and reads only
the program's output positions; cross-entropy for categorical outputs, MSE for numerical):

- **behaviour**: the trained model's output on base prompts against the program's;
- **IIT**: one circuit node, chosen at random, takes its activation from source prompts in
  both models; the trained model's output must match the tracr model's (the high-level
  model's counterfactual);
- **strict**: one node outside the circuit, or a random subset of them (``strict_share``),
  takes its activation from source prompts in the trained model; the output
  must stay the program's output on the base prompts.

Base and source prompts are drawn, with a seeded generator, from a fixed 80 % of the
program's inputs; the metrics of :mod:`harness.tasks.siit.metrics` are measured on the other
20 %. A checkpoint (model, optimiser, generator, step, history) is written atomically every
``eval_every`` steps: a training started again with the same program and settings resumes
from it, and ends where an uninterrupted one would (bit for bit on CPU).

Example:
    >>> from harness.tasks.tracr.compile import load_compiled
    >>> run = train_siit(load_compiled("hist"), SiitSettings(steps=4, batch_size=8,
    ...                  eval_every=2))
    >>> run.steps, [entry["step"] for entry in run.history], run.alignment.circuit
    (4, [2, 4], ('A0.0', 'MLP 0'))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from harness.tasks.siit.alignment import Alignment
from harness.tasks.siit.data import SiitData, siit_data
from harness.tasks.siit.interchange import node_activations, run_patched, run_row_patched
from harness.tasks.siit.metrics import siit_metrics
from harness.tasks.siit.sizing import trained_config
from harness.tasks.tracr.compiled import CompiledTracr

CHECKPOINT_FORMAT = 1


@dataclass(frozen=True)
class SiitSettings:
    """How a model is trained.

    Attributes:
        steps: Optimiser steps at most.
        batch_size: Base/source pairs a step.
        learning_rate: Adam's learning rate.
        betas: Adam's betas (InterpBench's (0.9, 0.9)).
        grad_clip: Largest gradient norm.
        behaviour_weight, iit_weight, strict_weight: The losses' weights in their sum.
        strict_share: The chance of each node outside the circuit to be resampled in a
            step's strict loss (at least one is); 0: exactly one, chosen at random
            (InterpBench's default).
        seed: Seeds the model's initialisation, the data split and every draw.
        eval_every: Steps between measurements (and checkpoints).
        stop_at: Stop once accuracy, every IIA, every strict accuracy and the joint
            accuracy reach it (``None``: train every step).
        train_fraction: The share of the inputs trained on.
    """

    steps: int = 20_000
    batch_size: int = 256
    learning_rate: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.9)
    grad_clip: float = 0.1
    behaviour_weight: float = 1.0
    iit_weight: float = 1.0
    strict_weight: float = 0.4
    strict_share: float = 0.0
    seed: int = 0
    eval_every: int = 250
    stop_at: float | None = 0.995
    train_fraction: float = 0.8

    def as_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["betas"] = list(self.betas)
        return values


@dataclass
class SiitRun:
    """A finished (or stopped) training.

    Attributes:
        config: The trained model's ``HookedTransformerConfig`` keyword arguments.
        state_dict: Its parameters (CPU).
        alignment: The circuit's nodes and the nodes outside it.
        steps: Steps trained.
        seconds: Wall time of the training (all sessions of a resumed one).
        metrics: The last measurement (see :func:`siit_metrics`).
        history: Every measurement, with its step and the mean losses since the last.
    """

    config: dict[str, Any]
    state_dict: dict[str, Tensor]
    alignment: Alignment
    steps: int
    seconds: float
    metrics: dict[str, Any]
    history: list[dict[str, Any]]


def _loss(data: SiitData, logits: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy (categorical) or MSE (numerical) at the output positions."""
    out = logits[:, data.positions]  # [batch, n_out, d_vocab_out]
    if data.numerical:
        return torch.nn.functional.mse_loss(out[..., 0], target)
    return torch.nn.functional.cross_entropy(out.flatten(0, 1), target.flatten())


def high_level_target(data: SiitData, logits: Tensor) -> Tensor:
    """The tracr model's answer from its logits: class ids ``[batch, n_out]`` or values."""
    out = logits[:, data.positions]  # [batch, n_out, d_vocab_out]
    return out[..., 0] if data.numerical else out.argmax(-1)


def _step_losses(
    model: Any,
    data: SiitData,
    alignment: Alignment,
    generator: torch.Generator,
    batch: int,
    share: float,
) -> tuple[Tensor, Tensor, Tensor]:
    n = data.train_tokens.shape[0]
    base_i = torch.randint(n, (batch,), generator=generator)
    source_i = torch.randint(n, (batch,), generator=generator)
    base, source = data.train_tokens[base_i], data.train_tokens[source_i]  # [batch, pos]
    labels = data.train_labels[base_i]  # [batch, n_out]
    node = alignment.circuit[int(torch.randint(len(alignment.circuit), (1,), generator=generator))]
    outside = alignment.outside
    chosen = torch.rand(len(outside), generator=generator) < share  # [n_outside]
    if not bool(chosen.any()):
        chosen[int(torch.randint(len(outside), (1,), generator=generator))] = True
    resampled = [n for n, take in zip(outside, chosen.tolist(), strict=True) if take]
    with torch.no_grad():
        high = run_patched(data.tracr, base, node_activations(data.tracr, source, [node]))
        taken = node_activations(model, source, [node, *resampled])
    # one pass of three copies of the base prompts: as they are, the circuit node from the
    # source (IIT), the chosen outside nodes from the source (strict)
    three = torch.cat([base, base, base])  # [3 * batch, pos]
    iit_rows, strict_rows = slice(batch, 2 * batch), slice(2 * batch, 3 * batch)
    patches = {node: (taken[node], iit_rows), **{n: (taken[n], strict_rows) for n in resampled}}
    logits = run_row_patched(model, three, patches)  # [3 * batch, pos, d_vocab_out]
    behaviour = _loss(data, logits[:batch], labels)
    iit = _loss(data, logits[iit_rows], high_level_target(data, high))
    strict = _loss(data, logits[strict_rows], labels)
    return behaviour, iit, strict


def settings_digest(compiled: CompiledTracr, settings: SiitSettings) -> str:
    """What a checkpoint must match to be resumed: the program's weights and the settings."""
    digest = hashlib.sha256(json.dumps(settings.as_dict(), sort_keys=True).encode())
    digest.update(compiled.program.encode())
    for name in sorted(compiled.state_dict):
        digest.update(name.encode())
        digest.update(compiled.state_dict[name].numpy().tobytes())
    return digest.hexdigest()[:16]


def _new_model(config: dict[str, Any], seed: int) -> Any:
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return HookedTransformer(HookedTransformerConfig(**config))


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".partial-{os.getpid()}")
    torch.save(state, partial)
    os.replace(partial, path)


def train_siit(
    compiled: CompiledTracr,
    settings: SiitSettings = SiitSettings(),
    checkpoint: str | os.PathLike | None = None,
    progress: bool = False,
    on_measure: Callable[[int, dict[str, Any]], None] | None = None,
    data: SiitData | None = None,
) -> SiitRun:
    """Train a model to implement ``compiled``'s circuit with SIIT (on CPU, one thread
    deterministic); resumes from ``checkpoint`` when it holds this program and settings."""
    if data is None:
        data = siit_data(compiled, settings.seed, settings.train_fraction)
    config = trained_config(compiled.config, settings.seed)
    alignment = data.alignment(config["n_layers"], config["n_heads"])
    model = _new_model(config, settings.seed)
    optimiser = torch.optim.Adam(
        model.parameters(), lr=settings.learning_rate, betas=settings.betas
    )
    generator = torch.Generator().manual_seed(settings.seed)
    step, seconds, history = 0, 0.0, []
    digest = settings_digest(compiled, settings)
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.is_file():
        state = torch.load(path, weights_only=True)
        if state.get("format") == CHECKPOINT_FORMAT and state.get("digest") == digest:
            model.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimiser"])
            generator.set_state(state["generator"])
            step, seconds = int(state["step"]), float(state["seconds"])
            history = json.loads(state["history"])
    metrics = history[-1]["metrics"] if history else {}
    bar = _progress_bar(settings.steps, step, compiled.program, progress)
    start = time.perf_counter() - seconds
    sums = torch.zeros(3)
    since = 0
    while step < settings.steps and not _done(metrics, settings.stop_at):
        model.train()
        behaviour, iit, strict = _step_losses(
            model, data, alignment, generator, settings.batch_size, settings.strict_share
        )
        loss = (
            settings.behaviour_weight * behaviour
            + settings.iit_weight * iit
            + settings.strict_weight * strict
        )
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        optimiser.step()
        sums += torch.stack([behaviour, iit, strict]).detach()
        since += 1
        step += 1
        if bar is not None:
            bar.update(1)
        if step % settings.eval_every == 0 or step == settings.steps:
            model.eval()
            metrics = siit_metrics(model, data, alignment)
            losses = (sums / since).tolist()
            history.append(
                {
                    "step": step,
                    "seconds": round(time.perf_counter() - start, 3),
                    "losses": dict(zip(("behaviour", "iit", "strict"), losses, strict=True)),
                    "metrics": metrics,
                }
            )
            sums.zero_()
            since = 0
            if bar is not None:
                bar.set_postfix(acc=metrics["accuracy"], iia=metrics["iia"], joint=metrics["joint"])
            if on_measure is not None:
                on_measure(step, metrics)
            if path is not None:
                _save_checkpoint(
                    path,
                    {
                        "format": CHECKPOINT_FORMAT,
                        "digest": digest,
                        "model": model.state_dict(),
                        "optimiser": optimiser.state_dict(),
                        "generator": generator.get_state(),
                        "step": step,
                        "seconds": time.perf_counter() - start,
                        "history": json.dumps(history),
                    },
                )
    if bar is not None:
        bar.close()
    model.eval()
    if not history or history[-1]["step"] != step:
        metrics = siit_metrics(model, data, alignment)
    return SiitRun(
        config=config,
        state_dict={k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        alignment=alignment,
        steps=step,
        seconds=time.perf_counter() - start,
        metrics=metrics,
        history=history,
    )


def _done(metrics: dict[str, Any], stop_at: float | None) -> bool:
    if stop_at is None or not metrics:
        return False
    return all(metrics[k] >= stop_at for k in ("accuracy", "iia", "strict", "joint"))


def _progress_bar(total: int, done: int, program: str, show: bool) -> Any:
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc=f"siit {program}", leave=False)
