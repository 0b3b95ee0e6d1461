"""IOI and Greater-Than on GPT-2 small, Docstring on attn-only-4l.

Each task needs pretrained weights: pass ``model_path`` (a directory the model was
downloaded to) or set ``$HARNESS_MODEL_DIR``; otherwise the hub is used when reachable.
``random_weights=True`` runs everything with random weights of the right shape.

Datasets follow the ACDC paper's recipes (see :mod:`harness.tasks.gpt2.prompts`): train
batches come from the first prompts, test batches from the paper's test range (prompts
100.. for IOI and Greater-Than, 50.. for Docstring) when the train set fits below it.
Ground truths: ``autocircuit`` (default) and ``acdc`` (see :mod:`harness.tasks.gpt2.circuits`).

Docstring's real tokenizer (NeelNanda/gpt-neox-tokenizer-digits) cannot be fetched offline:
it is taken from the weights directory; with random weights GPT-2's tokenizer is used
(the random model's vocabulary is sized to it) and prompts whose words are not single
GPT-2 tokens are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from harness.engine.device import resolve_device
from harness.engine.graph import EdgeGraph
from harness.tasks.base import Task, TaskSpec
from harness.tasks.gpt2.circuits import VARIANTS, official_circuits
from harness.tasks.gpt2.models import ATTN_ONLY_4L, GPT2_SMALL, ModelSpec, load_model
from harness.tasks.gpt2.prompts import (
    TextPrompt,
    docstring_prompts,
    greaterthan_prompts,
    ioi_prompts,
    to_batches,
)


def _build_task(
    slug: str,
    spec: ModelSpec,
    make_prompts: Any,
    reference_split: int,
    *,
    n_train: int,
    n_test: int,
    batch_size: int | None,
    ground_truth: str,
    model_path: str | os.PathLike | None,
    random_weights: bool,
    device: str | torch.device,
    seed: int,
    prepend_bos: bool,
    info: dict[str, Any],
) -> Task:
    """Load the model, generate and tokenize the prompts, attach the official circuits."""
    if ground_truth not in VARIANTS:
        raise ValueError(f"ground truth must be one of {VARIANTS}, got {ground_truth!r}")
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be positive, got {n_train} and {n_test}")
    target = resolve_device(device)
    model, tokenizer, source = load_model(spec, model_path, random_weights, target, seed)
    split = max(n_train, reference_split)
    prompts: Sequence[TextPrompt] = make_prompts(split + n_test, tokenizer)
    size = batch_size or max(n_train, n_test)

    def batches(part: Sequence[TextPrompt], name: str) -> tuple:
        made = to_batches(part, tokenizer, f"{slug}-{name}", size, prepend_bos)
        return tuple(b.to(target) for b in made)

    circuits = official_circuits(slug)
    circuits = {ground_truth: circuits[ground_truth], **circuits}  # the default first
    return Task(
        slug=slug,
        model=model,
        train=batches(prompts[:n_train], "train"),
        test=batches(prompts[split : split + n_test], "test"),
        circuits=circuits,
        default_ground_truth=ground_truth,
        info={"model": spec.hub_name, "weights": source, "prepend_bos": prepend_bos, **info},
    )


def load_ioi(
    n_train: int = 100,
    n_test: int = 100,
    batch_size: int | None = None,
    seed: int = 0,
    template: int = 0,
    order: str = "ABBA",
    ground_truth: str = "autocircuit",
    model_path: str | os.PathLike | None = None,
    random_weights: bool = False,
    device: str | torch.device = "auto",
) -> Task:
    """Indirect object identification on GPT-2 small (Wang et al. 2023).

    Prompts as in the ACDC paper (no BOS; 15 tokens with template 0): the answer is the
    indirect object, the wrong answer the subject; corrupt prompts use three other names.

    Args:
        n_train: Train prompts (the first ones).
        n_test: Test prompts (from prompt ``max(n_train, 100)`` on).
        batch_size: Prompts per batch (default: one batch per split).
        seed: The dataset seed (ACDC's 0 by default) and the random weights' seed.
        template: Template index 0..14.
        order: ``"ABBA"`` (ACDC), ``"BABA"`` or ``"mixed"``.
        ground_truth: ``"autocircuit"`` (739 edges) or ``"acdc"`` (963 edges).
        model_path: Local directory with GPT-2 (else ``$HARNESS_MODEL_DIR``, else the hub).
        random_weights: GPT-2 small's shape with random weights, for offline tests.
        device: Where the model and batches go (``"auto"``: CUDA when present).

    Example:
        >>> task = load_ioi(n_train=2, n_test=2, random_weights=True, device="cpu")
        >>> tuple(task.train[0].clean.shape), len(task.official_edges())
        ((2, 15), 739)
    """
    return _build_task(
        "ioi", GPT2_SMALL,
        lambda n, tok: ioi_prompts(n, seed=seed, template=template, order=order),
        100, n_train=n_train, n_test=n_test, batch_size=batch_size, ground_truth=ground_truth,
        model_path=model_path, random_weights=random_weights, device=device, seed=seed,
        prepend_bos=False, info={"dataset": f"ACDC IOI, template {template} {order}, seed {seed}"},
    )  # fmt: skip


def load_greaterthan(
    n_train: int = 100,
    n_test: int = 100,
    batch_size: int | None = None,
    seed: int = 54,
    years: str = "acdc",
    ground_truth: str = "autocircuit",
    model_path: str | os.PathLike | None = None,
    random_weights: bool = False,
    device: str | torch.device = "auto",
) -> Task:
    """Greater-Than on GPT-2 small (Hanna et al. 2023).

    ``"The {noun} lasted from the year {XXYY} to {XX}"`` (no BOS, 10 tokens); answers
    are the two-digit tokens above YY, wrong answers those at or below (``-1`` pads the
    variable counts); the corrupt prompt starts in year XX01.

    Args:
        n_train: Train prompts (the first ones).
        n_test: Test prompts (from prompt ``max(n_train, 100)`` on).
        batch_size: Prompts per batch (default: one batch per split).
        seed: ``torch.manual_seed`` of the draws (the papers' 54) and of random weights.
        years: ``"acdc"`` (604 start years, 200-prompt pool) or ``"autocircuit"`` (373
            years with YY > 40, 1000-prompt pool).
        ground_truth: ``"autocircuit"`` or ``"acdc"`` (the same 235 edges).
        model_path: Local directory with GPT-2 (else ``$HARNESS_MODEL_DIR``, else the hub).
        random_weights: GPT-2 small's shape with random weights, for offline tests.
        device: Where the model and batches go.
    """
    return _build_task(
        "greaterthan", GPT2_SMALL,
        lambda n, tok: greaterthan_prompts(n, tok, recipe=years, seed=seed),
        100, n_train=n_train, n_test=n_test, batch_size=batch_size, ground_truth=ground_truth,
        model_path=model_path, random_weights=random_weights, device=device, seed=seed,
        prepend_bos=False, info={"dataset": f"Greater-Than, {years} years, seed {seed}"},
    )  # fmt: skip


def load_docstring(
    n_train: int = 50,
    n_test: int = 50,
    batch_size: int | None = None,
    seed: int = 0,
    ground_truth: str = "autocircuit",
    model_path: str | os.PathLike | None = None,
    random_weights: bool = False,
    device: str | torch.device = "auto",
) -> Task:
    """Docstring argument completion on attn-only-4l (Heimersheim & Janiak 2023).

    ACDC's prompts (BOS prepended; 41 tokens with the model's tokenizer) from seeds
    ``seed, seed + 1, ...``; the answer is the next documented argument C, wrong answers
    the other 13 names; corrupt prompts ('random_random') rename the arguments.

    Args:
        n_train: Train prompts (the first ones).
        n_test: Test prompts (from prompt ``max(n_train, 50)`` on).
        batch_size: Prompts per batch (default: one batch per split).
        seed: The first prompt seed (ACDC's 0) and the random weights' seed.
        ground_truth: ``"autocircuit"`` or ``"acdc"`` (the same 24 edges).
        model_path: Local directory with attn-only-4l (``config.json``, ``*final.pth``
            and the gpt-neox-tokenizer-digits tokenizer files), else ``$HARNESS_MODEL_DIR``.
        random_weights: attn-only-4l's shape with random weights and GPT-2's tokenizer.
        device: Where the model and batches go.
    """
    return _build_task(
        "docstring", ATTN_ONLY_4L,
        lambda n, tok: docstring_prompts(n, tok, first_seed=seed),
        50, n_train=n_train, n_test=n_test, batch_size=batch_size, ground_truth=ground_truth,
        model_path=model_path, random_weights=random_weights, device=device, seed=seed,
        prepend_bos=True, info={"dataset": f"ACDC docstring (rest, 3 args), seeds from {seed}"},
    )  # fmt: skip


def _summary(task: str, layers: int, heads: int, attn_only: bool = False) -> dict:
    """Layers, heads, edges and circuit sizes for ``harness ls tasks``, without weights.

    Example:
        >>> _summary("docstring", 4, 8, attn_only=True)["edges"]
        1281
    """
    from transformer_lens import HookedTransformerConfig

    cfg = HookedTransformerConfig(
        n_layers=layers, n_heads=heads, d_model=heads, d_head=1, n_ctx=2, d_vocab=2,
        attn_only=attn_only, act_fn="relu",
    )  # fmt: skip
    circuits = {name: len(edges) for name, edges in official_circuits(task).items()}
    return {
        "layers": layers, "heads": heads, "edges": EdgeGraph.from_config(cfg).n_edges,
        "circuits": circuits,
    }  # fmt: skip


# The GPT-2 tasks, in the order :mod:`harness.tasks.catalog` registers them.
TASK_SPECS: tuple[TaskSpec, ...] = (
    TaskSpec(
        slug="ioi",
        summary=lambda: _summary("ioi", 12, 12, attn_only=False),
        label="IOI",
        loader=load_ioi,
        ground_truths=VARIANTS,
        needs_weights=True,
        description="indirect object identification, GPT-2 small (Wang et al. 2023)",
    ),
    TaskSpec(
        slug="greaterthan",
        summary=lambda: _summary("greaterthan", 12, 12, attn_only=False),
        label="Greater-Than",
        loader=load_greaterthan,
        ground_truths=VARIANTS,
        needs_weights=True,
        description="year comparison, GPT-2 small (Hanna et al. 2023)",
    ),
    TaskSpec(
        slug="docstring",
        summary=lambda: _summary("docstring", 4, 8, attn_only=True),
        label="Docstring",
        loader=load_docstring,
        ground_truths=VARIANTS,
        needs_weights=True,
        description="docstring argument completion, attn-only-4l (Heimersheim & Janiak 2023)",
    ),
)
