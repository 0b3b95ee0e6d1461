"""The tracr tasks: compiled RASP programs with exact ground truth.

- ``tracr-reverse``: reverse a sequence over ``{1, 2, 3}`` (categorical output, 4 layers
  x 1 head, 77 edges).
- ``tracr-proportion``: at each position, the fraction of ``"x"`` so far over
  ``{w, x, y, z}`` (one numerical output, 2 layers x 1 head, 23 edges).

Models are compiled with tracr at first use and then loaded from the cache (see
:mod:`harness.tasks.tracr_compile`). Prompts are ``BOS`` plus 5 tokens (every prompt has
the model's full length, so clean and corrupt always have the same length); the task reads
every position after ``BOS``. Each task has two ground truths, derived from the
compiled model and the task's data by :mod:`harness.tasks.derive` (nothing typed in):

- ``resample`` (default): for resample ablation with same-length pairs (reverse 2 edges,
  proportion 3: auto-circuit's official sets). Length and positions are the same in both
  prompts of a pair, so only the token-carrying path is needed.
- ``acdc-zero``: for zero ablation, the program's information flow (10 and 5 edges: the
  ACDC paper's official sets). ``zero`` is another name of it (the name the derivation
  gives it on every compiled program); records and reports keep ``acdc-zero``.

Example:
    >>> import tempfile
    >>> from harness.tasks import load
    >>> with tempfile.TemporaryDirectory() as cache:
    ...     task = load("tracr-reverse", device="cpu", cache_dir=cache)
    >>> task.patchable.n_edges, sorted(task.official_edges())
    (77, ['A3.0->Resid End', 'Resid Start->A3.0.V'])
"""

from __future__ import annotations

import hashlib
import itertools
import os
from typing import Any

import torch
from torch import Tensor

from harness.data import PromptBatch
from harness.device import resolve_device
from harness.patching import PatchableModel
from harness.tasks.base import Task, TaskSpec, register
from harness.tasks.derive import (
    DerivationData,
    DerivedCircuits,
    derive_circuits,
    float64_model,
    necessary_alone,
    one_thread,
)
from harness.tasks.tracr_compile import BOS, PROGRAMS, CompiledTracr, cache_path, load_compiled

_AUTO_CIRCUIT = "UFO-101/auto-circuit@98db58c auto_circuit/metrics/official_circuits/circuits/tracr"
_ACDC = "ArthurConmy/Automatic-Circuit-Discovery@a9a7857 (big-rerun) acdc/tracr_task/utils.py"

# ground truth -> the ablation it is for; every one is derived (harness.tasks.derive)
GROUND_TRUTH_ABLATIONS = {"resample": "resample", "acdc-zero": "zero"}
ALIASES = {"zero": "acdc-zero"}  # the derivation's name; records keep the official one
# The official circuits the derivation reproduces (tests check the sets are equal).
OFFICIAL_SOURCES: dict[str, dict[str, str]] = {
    "reverse": {
        "resample": f"{_AUTO_CIRCUIT}/reverse_official.py::tracr_reverse_true_edges",
        "acdc-zero": f"{_ACDC}::get_tracr_reverse_edges (ACDC run, zero ablation, commit e612e50)",
    },
    "proportion": {
        "resample": f"{_AUTO_CIRCUIT}/xproportion_official.py::tracr_xproportion_official_edges",
        "acdc-zero": (
            f"{_ACDC}::get_tracr_proportion_edges (ACDC run, zero ablation, commit e612e50)"
        ),
    },
}
DERIVATION_SEED = 0  # the derivation runs on the default train + test prompts of this seed

_DEFAULT_EXAMPLES = {"reverse": 121, "proportion": 512}  # per split, as auto-circuit


def all_inputs(compiled: CompiledTracr) -> Tensor:
    """Every well-formed full-length prompt, ``[n_inputs, 1 + max_seq_len]`` token ids.

    Example:
        >>> from harness.tasks.tracr_compile import compile_program
        >>> tuple(all_inputs(compile_program("reverse")).shape)
        (243, 6)
    """
    program = PROGRAMS[compiled.program]
    rows = itertools.product(program.vocab, repeat=program.max_seq_len)
    return torch.tensor([compiled.encode(list(row)) for row in rows])  # [n_inputs, pos]


def expected_outputs(compiled: CompiledTracr, tokens: Tensor) -> Tensor:
    """What the program computes at every position after BOS.

    Reverse: output class ids, ``[batch, pos - 1]`` long. Proportion: the fraction of
    ``"x"`` up to each position, ``[batch, pos - 1]`` float.

    Example:
        >>> from harness.tasks.tracr_compile import compile_program
        >>> compiled = compile_program("proportion")
        >>> tokens = torch.tensor([compiled.encode(["x", "w", "w", "x"])])
        >>> expected_outputs(compiled, tokens)
        tensor([[1.0000, 0.5000, 0.3333, 0.5000]])
    """
    body = tokens[:, 1:]  # [batch, n_out]
    if compiled.program == "proportion":
        is_x = (body == compiled.input_encoding["x"]).float()
        steps = torch.arange(1, body.shape[1] + 1, dtype=torch.float32)
        return is_x.cumsum(1) / steps
    decode = {token: value for value, token in compiled.input_encoding.items()}
    assert compiled.output_encoding is not None
    classes = [[compiled.output_encoding[decode[int(t)]] for t in row] for row in body.flip(1)]
    return torch.tensor(classes, dtype=torch.long)


def make_batches(
    compiled: CompiledTracr,
    seed: int = 0,
    n_examples: int | None = None,
    batch_size: int | None = None,
) -> tuple[tuple[PromptBatch, ...], tuple[PromptBatch, ...]]:
    """Seeded train and test batches of clean/corrupt pairs.

    The clean prompts of the two splits are disjoint draws from :func:`all_inputs`; each
    corrupt prompt is a uniformly drawn *different* input of the same length. Categorical
    tasks get ``answers`` ``[batch, n_out, 1]`` (the class the program outputs) and
    ``wrong_answers`` ``[batch, n_out, n_classes - 1]`` (every other class); the numerical
    task gets float ``answers`` ``[batch, n_out]``.

    Args:
        compiled: The program's converted model.
        seed: Seeds the split and the corrupt draws.
        n_examples: Prompts per split (default 121 for reverse, 512 for proportion).
        batch_size: Prompts per batch (default: one batch per split).

    Example:
        >>> from harness.tasks.tracr_compile import compile_program
        >>> train, test = make_batches(compile_program("reverse"), n_examples=10, batch_size=4)
        >>> [b.size for b in train], tuple(train[0].wrong_answers.shape)
        ([4, 4, 2], (4, 5, 2))
    """
    inputs = all_inputs(compiled)  # [n_inputs, pos]
    n_inputs = inputs.shape[0]
    n = _DEFAULT_EXAMPLES[compiled.program] if n_examples is None else int(n_examples)
    if not 0 < 2 * n <= n_inputs:
        raise ValueError(
            f"n_examples must be in 1..{n_inputs // 2} for tracr-{compiled.program} "
            f"(train and test split {n_inputs} distinct inputs), got {n}"
        )
    size = n if batch_size is None else int(batch_size)
    if size < 1:
        raise ValueError(f"batch_size must be positive, got {size}")
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(n_inputs, generator=generator)
    offsets = torch.randint(1, n_inputs, (2 * n,), generator=generator)
    corrupt_index = (order[: 2 * n] + offsets) % n_inputs  # never the clean input itself
    positions = tuple(range(1, inputs.shape[1]))
    splits = []
    for split, part in (("train", slice(0, n)), ("test", slice(n, 2 * n))):
        batches = []
        for i, start in enumerate(range(part.start, part.stop, size)):
            index = slice(start, min(start + size, part.stop))
            clean = inputs[order[index]]  # [batch, pos]
            corrupt = inputs[corrupt_index[index]]  # [batch, pos]
            answers = expected_outputs(compiled, clean)  # [batch, n_out]
            wrong = None if answers.is_floating_point() else _other_classes(answers, compiled)
            key = f"tracr-{compiled.program}/seed{seed}/{split}/{i}"
            batches.append(PromptBatch.create(key, clean, corrupt, answers, wrong, positions))
        splits.append(tuple(batches))
    return splits[0], splits[1]


def _other_classes(answers: Tensor, compiled: CompiledTracr) -> Tensor:
    """``[batch, n_out] -> [batch, n_out, n_classes - 1]``: every class but the answer."""
    n_classes = len(compiled.output_labels)
    classes = torch.arange(n_classes).expand(*answers.shape, n_classes)  # [batch, n_out, cls]
    keep = classes != answers[..., None]
    return classes[keep].reshape(*answers.shape, n_classes - 1)


_DERIVED: dict[tuple[str, str, str], DerivedCircuits] = {}


def _fingerprint(compiled: CompiledTracr) -> str:
    """A hash of the weights (a few KB): the memo never serves other weights' circuits."""
    digest = hashlib.sha256()
    for name in sorted(compiled.state_dict):
        digest.update(name.encode())
        digest.update(compiled.state_dict[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def derived_circuits(compiled: CompiledTracr) -> DerivedCircuits:
    """The ground truths of a compiled program, derived from its weights and data.

    Runs :func:`harness.tasks.derive.derive_circuits` on every clean/corrupt pair of the
    default train and test splits of seed :data:`DERIVATION_SEED`, so the circuits do not
    depend on the seed or sizes a user loads the task with. Memoised per process.

    Example:
        >>> from harness.tasks.tracr_compile import load_compiled
        >>> derived = derived_circuits(load_compiled("proportion"))
        >>> len(derived.structural), len(derived.zero), len(derived.resample)
        (5, 5, 3)
    """
    key = (compiled.program, compiled.tracr_version, _fingerprint(compiled))
    if key not in _DERIVED:
        train, test = make_batches(compiled, DERIVATION_SEED)
        _DERIVED[key] = derive_circuits(
            compiled.to_model("cpu"),
            DerivationData.from_batches(train + test),
            compiled.residual_labels,
        )
    return _DERIVED[key]


def ground_truth_circuits(derived: DerivedCircuits) -> dict[str, frozenset[str]]:
    """Ground-truth name -> edges, aliases included (default first).

    Example:
        >>> from harness.tasks.tracr_compile import load_compiled
        >>> truths = ground_truth_circuits(derived_circuits(load_compiled("proportion")))
        >>> {name: len(edges) for name, edges in truths.items()}
        {'resample': 3, 'acdc-zero': 5}
    """
    return {"resample": derived.resample, "acdc-zero": derived.zero}


def necessary_alone_counts(
    compiled: CompiledTracr, batches: tuple[PromptBatch, ...] | None = None
) -> dict[str, int]:
    """Per ground truth, how many of its edges change the output when ablated alone
    (with the ground truth's ablation, float64) on ``batches`` (default: the data the
    circuits are derived on).

    Example:
        >>> from harness.tasks.tracr_compile import load_compiled
        >>> necessary_alone_counts(load_compiled("proportion"))
        {'resample': 3, 'zero': 5}
    """
    derived = derived_circuits(compiled)
    if batches is None:
        train, test = make_batches(compiled, DERIVATION_SEED)
        batches = train + test
    data = DerivationData.from_batches(batches)
    patchable = PatchableModel.wrap(float64_model(compiled.to_model("cpu")))
    counts = {}
    with one_thread():
        for name, circuit in (("resample", derived.resample), ("zero", derived.zero)):
            changes = necessary_alone(patchable, circuit, data, name, derived.tol)
            counts[name] = sum(change > derived.tol for change in changes.values())
    return counts


def _official(program: str, ground_truth: str) -> str | None:
    return OFFICIAL_SOURCES.get(program, {}).get(ground_truth)


def load_tracr_task(
    program: str,
    seed: int = 0,
    n_examples: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    cache_dir: str | os.PathLike | None = None,
) -> Task:
    """A tracr task: the converted model, seeded batches and both ground truths.

    Args:
        program: ``"reverse"`` or ``"proportion"``.
        seed: Seeds the train/test split and the corrupt prompts.
        n_examples: Prompts per split (default 121 for reverse, 512 for proportion).
        batch_size: Prompts per batch (default: one batch per split).
        device: Where the model and batches live (``"auto"``: CUDA when present).
        cache_dir: Cache of converted weights (default ``$HARNESS_CACHE_DIR`` or
            ``~/.cache/circuit-harness``).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as cache:
        ...     task = load_tracr_task("proportion", n_examples=8, device="cpu", cache_dir=cache)
        >>> task.faithfulness_target, tuple(task.train[0].answers.shape)
        ('mse', (8, 5))
    """
    compiled = load_compiled(program, cache_dir)
    target = resolve_device(device)
    model = compiled.to_model(target)
    train, test = make_batches(compiled, seed, n_examples, batch_size)
    derived = derived_circuits(compiled)
    circuits = ground_truth_circuits(derived)
    info: dict[str, Any] = {
        "program": list(PROGRAMS[program].source),
        "vocab": list(PROGRAMS[program].vocab),
        "max_seq_len": PROGRAMS[program].max_seq_len,
        "compiler_bos": BOS,
        "tracr": f"tracr-pypi {compiled.tracr_version}",
        "weights_cache": str(cache_path(program, cache_dir)),
        "output_labels": list(compiled.output_labels),
        "output_positions": list(train[0].output_positions),
        "dataset": (
            f"clean: distinct full-length inputs, disjoint train/test draws (seed {seed}); "
            "corrupt: a uniformly drawn different input of the same length"
        ),
        "ground_truths": {
            name: {
                "ablation": GROUND_TRUTH_ABLATIONS[name],
                "n_edges": len(edges),
                "source": (
                    f"derived by harness.tasks.derive (tol {derived.tol:g}, seed "
                    f"{DERIVATION_SEED} default splits)"
                    + (f"; official: {official}" if (official := _official(program, name)) else "")
                ),
            }
            for name, edges in circuits.items()
        },
        "derivation": {
            "structural_edges": len(derived.structural),
            "tol": derived.tol,
            "resample_start": derived.resample_start,
            "data": f"seed {DERIVATION_SEED}, default train + test splits",
        },
    }
    return Task(
        slug=f"tracr-{program}",
        model=model,
        train=tuple(b.to(target) for b in train),
        test=tuple(b.to(target) for b in test),
        circuits=circuits,
        default_ground_truth="resample",
        faithfulness_target="mse" if PROGRAMS[program].numerical else "kl_div",
        info=info,
        aliases=dict(ALIASES),
    )


def load_reverse(
    seed: int = 0,
    n_examples: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    cache_dir: str | os.PathLike | None = None,
) -> Task:
    """``tracr-reverse``; options as :func:`load_tracr_task` (named, so that configs'
    ``task_options`` can be checked against them)."""
    return load_tracr_task("reverse", seed, n_examples, batch_size, device, cache_dir)


def load_proportion(
    seed: int = 0,
    n_examples: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    cache_dir: str | os.PathLike | None = None,
) -> Task:
    """``tracr-proportion``; options as :func:`load_tracr_task`."""
    return load_tracr_task("proportion", seed, n_examples, batch_size, device, cache_dir)


register(
    TaskSpec(
        slug="tracr-reverse",
        label="tracr reverse",
        loader=load_reverse,
        ground_truths=tuple(GROUND_TRUTH_ABLATIONS),
        ground_truth_aliases=tuple(ALIASES),
        needs_weights=False,
        description="tracr-compiled sequence reversal over {1,2,3} (77 edges; categorical)",
    )
)
register(
    TaskSpec(
        slug="tracr-proportion",
        label="tracr proportion",
        loader=load_proportion,
        ground_truths=tuple(GROUND_TRUTH_ABLATIONS),
        ground_truth_aliases=tuple(ALIASES),
        needs_weights=False,
        description="tracr-compiled fraction of 'x' so far over {w,x,y,z} (23 edges; numerical)",
        numerical_output=True,
    )
)
