"""Strict Interchange Intervention Training (SIIT) of a transformer to implement a
compiled tracr program's circuit.

Three losses on every step, summed into one backward pass (each skips BOS and reads only
the program's output positions; cross-entropy for categorical outputs, MSE for numerical):

- **behaviour**: the trained model's output on base prompts against the program's;
- **IIT**: one circuit node, chosen at random, takes its activation from source prompts in
  both models; the trained model's output must match the tracr model's (the high-level
  model's counterfactual);
- **strict**: a random subset of the nodes outside the circuit (1 to all of them; or one,
  as InterpBench does, or all: ``strict_nodes``) take their activation from source prompts
  in the trained model; the output must stay the program's output on the base prompts.

The trained model's source activations come from the source prompts riding in the same
forward pass, gradient included
(:func:`harness.tasks.siit.interchange.run_row_resampled`): a loss on the patched prompts
also trains the resampled node itself. Read beforehand and detached, as InterpBench reads
them, the strict loss reaches only the nodes downstream, which behaviour and IIT train to
use the node: measured on shift-2 with every outside node resampled, the strict loss rose
from 8 to 1,013 in 2,000 steps and joint accuracy stayed at chance (0.26); with the gradient,
every metric was at least 0.99 by step 1,000.

With ``separate_steps`` each loss takes its own optimiser step (IIT, behaviour, strict, in
InterpBench's order) on its own forward pass.

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
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from harness.tasks.siit.alignment import Alignment, node_hook, node_order
from harness.tasks.siit.data import SiitData, siit_data
from harness.tasks.siit.interchange import node_activations, run_patched, run_row_resampled
from harness.tasks.siit.metrics import siit_metrics
from harness.tasks.siit.sizing import trained_config
from harness.tasks.tracr.compiled import CompiledTracr

CHECKPOINT_FORMAT = 1
STRICT_NODES = ("one", "subset", "all")


@dataclass(frozen=True)
class SiitSettings:
    """How a model is trained.

    Attributes:
        steps: Optimiser steps at most.
        batch_size: Base/source pairs a step.
        learning_rate: Adam's learning rate.
        betas: Adam's betas (InterpBench's (0.9, 0.9)).
        grad_clip: Largest gradient norm.
        weight_decay: AdamW's decoupled weight decay (0: Adam).
        cosine: The learning rate falls along a half cosine from ``learning_rate`` at the
            first step to 0 after ``steps`` (otherwise it stays constant).
        behaviour_weight, iit_weight, strict_weight: The losses' weights in their sum.
        strict_nodes: Which nodes outside the circuit a step's strict loss resamples:
            ``"one"`` chosen at random (InterpBench's), ``"subset"`` (a size drawn uniformly
            from 1 to all, then the nodes), ``"all"``.
        separate_steps: One optimiser step per loss (InterpBench's) instead of one step on
            their weighted sum.
        silent_outside: The nodes outside the circuit start with zero output weights (a
            head's ``W_O`` slice, an MLP's ``W_out`` and ``b_out``): they start unused, and
            grow only as far as the strict loss lets them.
        seed: Seeds the model's initialisation, the data split and every draw.
        eval_every: Steps between measurements (and checkpoints).
        stop_at: Stop once accuracy, every IIA, every strict accuracy and the joint
            accuracy reach it (``None``: train every step).
        train_fraction: The share of the inputs trained on.
    """

    steps: int = 6_000
    batch_size: int = 256
    learning_rate: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.9)
    grad_clip: float = 0.1
    weight_decay: float = 0.0
    cosine: bool = False
    behaviour_weight: float = 1.0
    iit_weight: float = 1.0
    strict_weight: float = 1.0
    strict_nodes: str = "subset"
    separate_steps: bool = False
    silent_outside: bool = False
    seed: int = 0
    eval_every: int = 250
    stop_at: float | None = 0.995
    train_fraction: float = 0.8

    def __post_init__(self) -> None:
        if self.strict_nodes not in STRICT_NODES:
            raise ValueError(
                f"strict_nodes must be one of {STRICT_NODES}, got {self.strict_nodes!r}"
            )

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


@dataclass(frozen=True)
class StepDraw:
    """One step's prompts and nodes: base and source prompts, the circuit node of the IIT
    loss and the outside nodes the strict loss resamples."""

    base: Tensor  # [batch, pos]
    labels: Tensor  # [batch, n_out]
    high: Tensor  # [batch, pos, d_vocab_out] tracr logits with ``node`` from the source
    node: str
    resampled: list[str]
    source: Tensor  # [batch, pos]


def draw_step(
    data: SiitData, alignment: Alignment, generator: torch.Generator, batch: int, which: str
) -> StepDraw:
    """Draw a step's prompts (``batch`` base and source prompts from the training inputs),
    its IIT node and its strict nodes (``which``: ``"one"``, ``"subset"``, ``"all"``).

    Example:
        >>> from harness.tasks.tracr.compile import load_compiled
        >>> from harness.tasks.siit.data import siit_data
        >>> data = siit_data(load_compiled("hist"))
        >>> drawn = draw_step(data, data.alignment(2, 4), torch.Generator(), 8, "all")
        >>> tuple(drawn.base.shape), len(drawn.resampled)
        ((8, 6), 8)
    """
    n = data.train_tokens.shape[0]
    base_i = torch.randint(n, (batch,), generator=generator)
    source_i = torch.randint(n, (batch,), generator=generator)
    base, source = data.train_tokens[base_i], data.train_tokens[source_i]  # [batch, pos]
    node = alignment.circuit[int(torch.randint(len(alignment.circuit), (1,), generator=generator))]
    outside = alignment.outside
    if which == "all":
        resampled = list(outside)
    else:
        size = (
            1
            if which == "one"
            else int(torch.randint(1, len(outside) + 1, (1,), generator=generator))
        )
        order = torch.randperm(len(outside), generator=generator)[:size].sort().values
        resampled = [outside[i] for i in order.tolist()]
    with torch.no_grad():
        high = run_patched(data.tracr, base, node_activations(data.tracr, source, [node]))
    return StepDraw(base, data.train_labels[base_i], high, node, resampled, source)


def _summed_losses(model: Any, data: SiitData, draw: StepDraw) -> tuple[Tensor, Tensor, Tensor]:
    """The three losses from one pass of four blocks of prompts: the base prompts as they
    are, the base prompts with the circuit node from the source (IIT), the base prompts with
    the chosen outside nodes from the source (strict), and the source prompts themselves
    (whose activations are taken, gradient included)."""
    batch = draw.base.shape[0]
    four = torch.cat([draw.base, draw.base, draw.base, draw.source])  # [4 * batch, pos]
    rows = [slice(i * batch, (i + 1) * batch) for i in range(4)]
    patches = {n: (rows[2], rows[3]) for n in draw.resampled}
    patches[draw.node] = (rows[1], rows[3])
    logits = run_row_resampled(model, four, patches)  # [4 * batch, pos, d_vocab_out]
    behaviour = _loss(data, logits[rows[0]], draw.labels)
    iit = _loss(data, logits[rows[1]], high_level_target(data, draw.high))
    strict = _loss(data, logits[rows[2]], draw.labels)
    return behaviour, iit, strict


def _separate_steps(
    model: Any, data: SiitData, draw: StepDraw, optimiser: Any, settings: SiitSettings
) -> Tensor:
    """InterpBench's step: IIT, behaviour and strict loss each take an optimiser step on
    their own forward pass; returns the three losses ``[3]`` (behaviour, IIT, strict)."""
    batch = draw.base.shape[0]
    base_rows, source_rows = slice(0, batch), slice(batch, 2 * batch)
    two = torch.cat([draw.base, draw.source])  # [2 * batch, pos]

    def resampled(nodes: list[str]) -> Tensor:
        patches = {n: (base_rows, source_rows) for n in nodes}
        return run_row_resampled(model, two, patches)[base_rows]  # [batch, pos, d_vocab_out]

    target, labels = high_level_target(data, draw.high), draw.labels
    steps = (
        ("iit", settings.iit_weight, lambda: _loss(data, resampled([draw.node]), target)),
        ("behaviour", settings.behaviour_weight, lambda: _loss(data, model(draw.base), labels)),
        ("strict", settings.strict_weight, lambda: _loss(data, resampled(draw.resampled), labels)),
    )  # fmt: skip
    losses = {}
    for name, weight, loss_of in steps:
        loss = loss_of()
        _optimise(model, optimiser, weight * loss, settings.grad_clip)
        losses[name] = loss.detach()
    return torch.stack([losses["behaviour"], losses["iit"], losses["strict"]])


def _silence(model: Any, nodes: tuple[str, ...]) -> None:
    """Zero the output weights of ``nodes``."""
    with torch.no_grad():
        for node in nodes:
            block = model.blocks[node_order(node)[0]]
            head = node_hook(node)[1]
            if head is None:
                block.mlp.W_out.zero_()
                block.mlp.b_out.zero_()
            else:
                block.attn.W_O[head].zero_()  # [d_head, d_model]


def _optimise(model: Any, optimiser: Any, loss: Tensor, grad_clip: float) -> None:
    optimiser.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimiser.step()


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
    if settings.silent_outside:
        _silence(model, alignment.outside)
    optimiser = torch.optim.AdamW(
        model.parameters(),
        lr=settings.learning_rate,
        betas=settings.betas,
        weight_decay=settings.weight_decay,
    )
    generator = torch.Generator().manual_seed(settings.seed)
    digest = settings_digest(compiled, settings)
    path = Path(checkpoint) if checkpoint is not None else None
    step, seconds, history = _resume(path, digest, model, optimiser, generator)
    metrics = history[-1]["metrics"] if history else {}
    bar = _progress_bar(settings.steps, step, compiled.program, progress)
    start = time.perf_counter() - seconds
    sums = torch.zeros(3)
    since = 0
    while step < settings.steps and not _done(metrics, settings.stop_at):
        sums += _train_step(model, data, alignment, generator, optimiser, settings, step)
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


def _train_step(
    model: Any,
    data: SiitData,
    alignment: Alignment,
    generator: torch.Generator,
    optimiser: Any,
    settings: SiitSettings,
    step: int,
) -> Tensor:
    """One training step (the learning rate of ``step`` set first); its losses ``[3]``
    (behaviour, IIT, strict)."""
    model.train()
    if settings.cosine:
        for group in optimiser.param_groups:
            group["lr"] = (
                settings.learning_rate * 0.5 * (1 + math.cos(math.pi * step / settings.steps))
            )
    draw = draw_step(data, alignment, generator, settings.batch_size, settings.strict_nodes)
    if settings.separate_steps:
        return _separate_steps(model, data, draw, optimiser, settings)
    behaviour, iit, strict = _summed_losses(model, data, draw)
    loss = (
        settings.behaviour_weight * behaviour
        + settings.iit_weight * iit
        + settings.strict_weight * strict
    )
    _optimise(model, optimiser, loss, settings.grad_clip)
    return torch.stack([behaviour, iit, strict]).detach()


def _resume(
    path: Path | None, digest: str, model: Any, optimiser: Any, generator: torch.Generator
) -> tuple[int, float, list[dict[str, Any]]]:
    """Load a checkpoint of this program and settings into the model, optimiser and
    generator; the step, seconds and history it reached (0, 0.0, [] without one)."""
    if path is None or not path.is_file():
        return 0, 0.0, []
    state = torch.load(path, weights_only=True)
    if state.get("format") != CHECKPOINT_FORMAT or state.get("digest") != digest:
        return 0, 0.0, []
    model.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    generator.set_state(state["generator"])
    return int(state["step"]), float(state["seconds"]), json.loads(state["history"])


def _done(metrics: dict[str, Any], stop_at: float | None) -> bool:
    if stop_at is None or not metrics:
        return False
    return all(metrics[k] >= stop_at for k in ("accuracy", "iia", "strict", "joint"))


def _progress_bar(total: int, done: int, program: str, show: bool) -> Any:
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc=f"siit {program}", leave=False)
